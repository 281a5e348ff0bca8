#!/usr/bin/env python3
"""Exercise 02's check: the database went down, every signal showed it, and the lab recovered."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import API_SERVICE, Lab, NotYet, Step, main  # noqa: E402


def database_was_down(lab: Lab) -> str:
    return lab.was_down('pg_up{job="postgres"}', "the database")


def checkouts_refused(lab: Lab) -> str:
    return lab.at_least(
        f'sum(increase(recordstore_checkouts_total{{outcome="database_unavailable"}}{lab.window}))',
        1, "checkouts refused with 503 database_unavailable")


def error_trace(lab: Lab) -> str:
    for tree in lab.trees(service=API_SERVICE, operation="checkout_order", tags={"error": "true"}):
        for span in tree.find("checkout_order"):
            if span.error:
                return (f"trace {span.trace_id}: checkout_order in error "
                        f"({(span.error_message or 'no message').splitlines()[0][:120]})")
    raise NotYet("no checkout_order span in error in Jaeger")


def fired_and_delivered(lab: Lab) -> str:
    return f"{lab.alert_fired('DatabaseDown')}; {lab.delivered('DatabaseDown')}"


def database_back(lab: Lab) -> str:
    return lab.api_healthy() + "; " + lab.is_up('pg_up{job="postgres"}', "the database")


def resolved(lab: Lab) -> str:
    return f"{lab.alert_not_firing('DatabaseDown')}; {lab.delivered('DatabaseDown', 'resolved')}"


def orders_completed(lab: Lab) -> str:
    return f"{lab.orders_final()}; {lab.purchase()}"


STEPS = [
    Step("The database went down", database_was_down,
         "stop it: ./lab stop db (compose: docker compose stop db)"),
    Step("Checkouts were refused with a 503, fast", checkouts_refused,
         "while it is down, buy a record: python3 scripts/trace_purchase_journey.py"),
    Step("A trace shows where the checkout broke", error_trace,
         "run the journey script while the database is down, then search Jaeger for "
         "service kodekloud-record-store-api with the tag error=true"),
    Step("DatabaseDown fired and Alertmanager delivered it", fired_and_delivered,
         "keep the database down for about 20 s; watch ./lab alerts"),
    Step("The database is back and the API sees it", database_back,
         "start it: ./lab start db (compose: docker compose start db)"),
    Step("DatabaseDown resolved, and the receiver was told", resolved,
         "wait about 30 s after starting the database; watch ./lab alerts"),
    Step("Every order accepted is final, and a new purchase completes", orders_completed,
         "give the worker a few seconds: orders accepted before the outage complete on their own"),
]

if __name__ == "__main__":
    main("Exercise 02: database failure", STEPS)
