#!/usr/bin/env python3
"""Exercise 02's check: the database went down, every signal showed it, and the lab recovered."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import API_SERVICE, Lab, Question, Step, main  # noqa: E402
from labkit.questions import Truth, fired_at, seconds_down, trace_where  # noqa: E402

UP = 'pg_up{job="postgres"}'


def failed_checkout(lab: Lab) -> Truth:
    """Any trace of the window whose checkout_order span is in error."""
    return trace_where(lab, lambda tree: any(s.error for s in tree.find("checkout_order")),
                       service=API_SERVICE, operation="checkout_order", tags={"error": "true"})


def database_back(lab: Lab) -> str:
    return lab.api_healthy() + "; " + lab.is_up(UP, "the database")


def resolved(lab: Lab) -> str:
    return f"{lab.alert_not_firing('DatabaseDown')}; {lab.delivered('DatabaseDown', 'resolved')}"


def orders_completed(lab: Lab) -> str:
    return f"{lab.orders_final()}; {lab.purchase()}"


QUESTIONS = [
    Question("failed_trace_id", "The trace id of a checkout that failed while the database "
             "was down?", failed_checkout,
             "buy a record while the database is down (python3 "
             "scripts/trace_purchase_journey.py prints the trace id; curl -i shows X-Trace-ID), "
             "or search Jaeger: service kodekloud-record-store-api, operation checkout_order, "
             "tag error=true"),
    Question("down_seconds", "For how many seconds was the database down, as Prometheus saw "
             "it (pg_up at 0)?", lambda lab: seconds_down(lab, UP, "the database"),
             "stop it with ./lab stop db (compose: docker compose stop db), start it again, "
             'then graph pg_up{job="postgres"} in Prometheus over the outage: 5 s a sample'),
    Question("fired_at", "At what time (UTC, HH:MM:SS) did DatabaseDown start firing?",
             lambda lab: fired_at(lab, "DatabaseDown"),
             'graph ALERTS{alertname="DatabaseDown"} in Prometheus, or read ./lab alerts (its '
             "notification reaches the receiver within seconds); the times there are UTC"),
]

STEPS = [
    Step("DatabaseDown fired and Alertmanager delivered it",
         lambda lab: f"{lab.alert_fired('DatabaseDown')}; {lab.delivered('DatabaseDown')}",
         "keep the database down for about 20 s; watch ./lab alerts"),
    Step("The database is back and the API sees it", database_back,
         "start it: ./lab start db (compose: docker compose start db)"),
    Step("DatabaseDown resolved, and the receiver was told", resolved,
         "wait about 30 s after starting the database; watch ./lab alerts"),
    Step("Every order accepted is final, and a new purchase completes", orders_completed,
         "give the worker a few seconds: orders accepted before the outage complete on their own"),
]

if __name__ == "__main__":
    main("Exercise 02: database failure", STEPS, QUESTIONS)
