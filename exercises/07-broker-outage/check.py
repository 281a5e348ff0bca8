#!/usr/bin/env python3
"""Exercise 07's check: the broker went down, checkouts were still accepted, none was lost."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import Lab, Step, main  # noqa: E402


def broker_was_down(lab: Lab) -> str:
    return lab.was_down('up{job="rabbitmq"}', "RabbitMQ")


def accepted_while_down(lab: Lab) -> str:
    return lab.at_least(
        f'sum(increase(recordstore_order_publish_failures_total{{job="api"}}{lab.window}))', 1,
        "orders accepted while the broker was unreachable (kept in the outbox)")


def fired_and_delivered(lab: Lab) -> str:
    return f"{lab.alert_fired('BrokerDown')}; {lab.delivered('BrokerDown')}"


def broker_back(lab: Lab) -> str:
    return lab.api_healthy() + "; " + lab.is_up('up{job="rabbitmq"}', "RabbitMQ")


def relayed(lab: Lab) -> str:
    return lab.at_least(
        f'sum(increase(recordstore_outbox_relayed_orders_total{{job="api",result="published"}}'
        f'{lab.window}))', 1, "orders the outbox relay published once the broker was back")


STEPS = [
    Step("The broker went down", broker_was_down,
         "stop it: ./lab stop rabbitmq (compose: docker compose stop rabbitmq)"),
    Step("Checkouts were still accepted", accepted_while_down,
         "buy a record while it is down: python3 scripts/trace_purchase_journey.py"),
    Step("BrokerDown fired and Alertmanager delivered it", fired_and_delivered,
         "keep the broker down for about 20 s; watch ./lab alerts"),
    Step("The broker is back", broker_back,
         "start it: ./lab start rabbitmq (compose: docker compose start rabbitmq)"),
    Step("The outbox relay published the orders it held", relayed,
         "the API's relay retries every few seconds: check again shortly"),
    Step("No order was lost: every one accepted is final", lambda lab: lab.orders_final(),
         "give the worker a few seconds after the relay"),
]

if __name__ == "__main__":
    main("Exercise 07: broker outage, no order lost", STEPS)
