#!/usr/bin/env python3
"""Exercise 04's check: what the learner found while the worker was stuck, then stopped (the
alert that fired first and when, how many orders waited at the peak); then whether it is back, the
backlog drained, every order final and the fault off."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.questions import Truth, clock_time, firing_starts, first_alert, number  # noqa: E402

QUEUE = 'rabbitmq_queue_messages_ready{job="rabbitmq",queue="orders"}'
BACKLOG = 5


def ready_peak(lab: Lab) -> Truth:
    """The most orders that waited, ready, in the orders queue: within ± 10 % (2 at least)."""
    peak = lab.peak(QUEUE) or 0
    if peak < BACKLOG:
        raise NotYet(f"fewer than {BACKLOG} orders waited in the queue since {lab.since_text}")
    return number(peak, 2, relative=0.1)


def first_fired_at(lab: Lab) -> Truth:
    """When the first alert of the window started firing (Prometheus's ALERTS), within 30 s."""
    started = firing_starts(lab)
    if not started:
        raise NotYet("no alert started firing in the window yet")
    return clock_time(min(started.values()), 30)


def worker_was_down(lab: Lab) -> str:
    return lab.was_down('up{job="worker"}', "the worker")


def fired_and_delivered(lab: Lab) -> str:
    return f"{lab.alert_fired('WorkerDown')}; {lab.delivered('WorkerDown')}"


def worker_back(lab: Lab) -> str:
    return lab.is_up('up{job="worker"}', "the worker")


QUESTIONS = [
    Question("first_alert", "Which alert started firing first?", first_alert,
             "make the worker stuck (./lab chaos set payment_gateway_hang=1) and keep buying "
             "for about three minutes; then list what fired and when: ./lab alerts, or "
             "Prometheus's Alerts page"),
    Question("first_fired_at", "At what time (UTC, HH:MM:SS) did it start firing?",
             first_fired_at,
             "when each notification came: ./lab alerts; when each alert went firing: "
             'ALERTS{alertstate="firing"} graphed in Prometheus'),
    Question("ready_peak", "How many orders waited, ready, in the orders queue at its peak?",
             ready_peak,
             'graph rabbitmq_queue_messages_ready{queue="orders"} in Prometheus over the '
             "exercise (or RabbitMQ's management UI) and read its highest point"),
]

STEPS = [
    Step("The worker stopped", worker_was_down,
         "stop it: ./lab stop worker (compose: docker compose stop worker)"),
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
    Step("QueueBacklogGrowing fired, reached the receiver, and resolved",
         lambda lab: lab.alert_came_and_went("QueueBacklogGrowing"),
         "keep buying for about three minutes while the worker is stuck; it resolves once "
         "the backlog drains"),
    Step("WorkerDown resolved", lambda lab: lab.alert_came_and_went("WorkerDown"),
         "start the worker again; WorkerDown resolves about 30 s later"),
]

if __name__ == "__main__":
    main("Exercise 04: stuck worker and queue backlog", STEPS, QUESTIONS)
