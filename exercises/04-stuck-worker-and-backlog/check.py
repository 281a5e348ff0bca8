#!/usr/bin/env python3
"""Exercise 04's check: the worker stuck, then stopped, the orders queued up and were seen, then
drained, and the fault that held it is off."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import Lab, NotYet, Step, main  # noqa: E402

QUEUE = 'rabbitmq_queue_messages_ready{job="rabbitmq",queue="orders"}'


def worker_was_down(lab: Lab) -> str:
    return lab.was_down('up{job="worker"}', "the worker")


def backlog_built(lab: Lab) -> str:
    peak = lab.peak(QUEUE) or 0
    if peak < 5:
        raise NotYet(f"the orders queue held at most {peak:.0f} message(s) (wanted 5 or more)")
    return f"the orders queue held up to {peak:.0f} messages"


def fired_and_delivered(lab: Lab) -> str:
    return f"{lab.alert_fired('WorkerDown')}; {lab.delivered('WorkerDown')}"


def worker_back(lab: Lab) -> str:
    return lab.is_up('up{job="worker"}', "the worker")


STEPS = [
    Step("The worker stopped", worker_was_down,
         "stop it: ./lab stop worker (compose: docker compose stop worker)"),
    Step("Orders queued up in RabbitMQ", backlog_built,
         "buy while it is stopped: for i in $(seq 10); do curl -s -X POST "
         "localhost:8000/checkout -H 'Content-Type: application/json' "
         "-d '{\"product_id\": 1}'; echo; done"),
    Step("WorkerDown fired and Alertmanager delivered it", fired_and_delivered,
         "keep the worker stopped for about 30 s; watch ./lab alerts"),
    Step("The worker is back", worker_back,
         "start it: ./lab start worker (compose: docker compose start worker)"),
    Step("The backlog drained", lambda lab: lab.orders_queue_empty(),
         "give the worker a few seconds to catch up"),
    Step("Every order accepted is final", lambda lab: lab.orders_final(),
         "the worker finishes the queued orders on its own: check again in a few seconds"),
    Step("No fault is switched on", lambda lab: lab.faults_off(),
         "switch the fault off: ./lab chaos reset"),
]

if __name__ == "__main__":
    main("Exercise 04: stuck worker and queue backlog", STEPS)
