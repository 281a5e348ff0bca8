#!/usr/bin/env python3
"""Exercise 06's check: declined payments, retried and dead-lettered e-mails, and the alerts
that spend the error budget, all seen; then the faults switched off again."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import WORKER_SERVICE, Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.jaeger import SpanTree  # noqa: E402
from labkit.questions import Truth, number, trace_where  # noqa: E402

DEAD_LETTERS = 'rabbitmq_queue_messages_ready{job="rabbitmq",queue="dead_letter"}'


def declined(tree: SpanTree) -> bool:
    return any(s.error and "payment_declined" in s.error_message
               for s in tree.find("process_order"))


def declined_trace(lab: Lab) -> Truth:
    return trace_where(lab, declined, service=WORKER_SERVICE, operation="process_order",
                       tags={"error": "true"}, limit=20)


def dead_letter_peak(lab: Lab) -> Truth:
    peak = lab.peak(DEAD_LETTERS) or 0
    if peak < 1:
        raise NotYet("no message reached the dead_letter queue (3 attempts, then dead-lettered)")
    return number(peak, 1)


def retried(lab: Lab) -> str:
    return lab.at_least(
        f'sum(increase(recordstore_celery_tasks_total{{job="worker",'
        f'task="send_order_confirmation",state="retried"}}{lab.window}))', 1,
        "confirmation e-mails retried")


QUESTIONS = [
    Question("declined_trace_id", "The trace id of an order whose payment was declined?",
             declined_trace,
             "switch the fault on (./lab chaos set payment_failure_rate=0.5) and buy; then "
             "search Jaeger: service kodekloud-record-store-worker, operation process_order, "
             "tag error=true, and read the span's error"),
    Question("dead_letter_peak", "How many messages did the dead_letter queue hold at its "
             "peak?", dead_letter_peak,
             "make the mail server refuse (./lab chaos set email_failure_rate=1) and buy; then "
             "graph rabbitmq_queue_messages_ready for the dead_letter queue in Prometheus (or "
             "RabbitMQ's management UI) and read its highest point"),
]

STEPS = [
    Step("Failed e-mails were retried", retried,
         "make the mail server refuse: ./lab chaos set email_failure_rate=1, then buy again"),
    Step("HighOrderFailureRate fired", lambda lab: lab.alert_fired("HighOrderFailureRate"),
         "keep the failures coming for about 2 minutes; watch ./lab alerts"),
    Step("The checkout error budget burned fast",
         lambda lab: lab.alert_fired("CheckoutErrorBudgetBurnFast"),
         "exhaust the API's database pool, ./lab chaos set db_pool_exhaustion=1, and keep "
         "buying for about 2 minutes"),
    Step("The faults are off and a purchase completes",
         lambda lab: f"{lab.faults_off()}; {lab.purchase()}", "switch them off: ./lab chaos reset"),
]

if __name__ == "__main__":
    main("Exercise 06: failing payments, retries, dead letters and the error budget", STEPS,
         QUESTIONS)
