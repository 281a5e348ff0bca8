#!/usr/bin/env python3
"""Exercise 07's check: the broker went down, checkouts were still accepted, none was lost."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.questions import Truth, fired_at, number, seconds_down  # noqa: E402

UP = 'up{job="rabbitmq"}'
HELD = 'sum(recordstore_order_publish_failures_total{job="api"})'


def held_orders(lab: Lab) -> Truth:
    """How far the API's count of orders it could not publish (and kept in its outbox) rose in
    the window: the highest reading less the lowest, at the scrape interval."""
    w = lab.window[:-1] + ":5s]"
    held = lab.value(f"max_over_time(({HELD}){w}) - min_over_time(({HELD}){w})") or 0
    if held < 1:
        raise NotYet("no checkout was accepted while the broker was unreachable")
    return number(held, 1)


def fired_and_delivered(lab: Lab) -> str:
    return f"{lab.alert_fired('BrokerDown')}; {lab.delivered('BrokerDown')}"


def broker_back(lab: Lab) -> str:
    return lab.api_healthy() + "; " + lab.is_up(UP, "RabbitMQ")


def resolved(lab: Lab) -> str:
    return f"{lab.alert_not_firing('BrokerDown')}; {lab.delivered('BrokerDown', 'resolved')}"


def relayed(lab: Lab) -> str:
    return lab.at_least(
        f'sum(increase(recordstore_outbox_relayed_orders_total{{job="api",result="published"}}'
        f'{lab.window}))', 1, "orders the outbox relay published once the broker was back")


QUESTIONS = [
    Question("held_orders", "How many orders did the API accept, and keep in its outbox, while "
             "the broker was unreachable?", held_orders,
             "buy while the broker is down; then graph "
             "recordstore_order_publish_failures_total in Prometheus and read how far it rose"),
    Question("down_seconds", "For how many seconds was RabbitMQ down, as Prometheus saw it?",
             lambda lab: seconds_down(lab, UP, "RabbitMQ"),
             "stop it with ./lab stop rabbitmq (compose: docker compose stop rabbitmq), start it "
             'again, then graph up{job="rabbitmq"} in Prometheus over the outage: 5 s a sample'),
    Question("fired_at", "At what time (UTC, HH:MM:SS) did BrokerDown start firing?",
             lambda lab: fired_at(lab, "BrokerDown"),
             'graph ALERTS{alertname="BrokerDown"} in Prometheus, or read ./lab alerts (its '
             "notification reaches the receiver within seconds); the times there are UTC"),
]

STEPS = [
    Step("BrokerDown fired and Alertmanager delivered it", fired_and_delivered,
         "keep the broker down for about 20 s; watch ./lab alerts"),
    Step("The broker is back", broker_back,
         "start it: ./lab start rabbitmq (compose: docker compose start rabbitmq)"),
    Step("BrokerDown resolved, and the receiver was told", resolved,
         "wait about 30 s after starting the broker; watch ./lab alerts"),
    Step("The outbox relay published the orders it held", relayed,
         "the API's relay retries every few seconds: check again shortly"),
    Step("No order was lost: every one accepted is final", lambda lab: lab.orders_final(),
         "give the worker a few seconds after the relay"),
]

if __name__ == "__main__":
    main("Exercise 07: broker outage, no order lost", STEPS, QUESTIONS)
