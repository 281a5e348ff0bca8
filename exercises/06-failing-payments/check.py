#!/usr/bin/env python3
"""Exercise 06's check: declined payments, retried and dead-lettered e-mails, and the alerts
that spend the error budget, all seen; then the faults switched off again."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import WORKER_SERVICE, Lab, NotYet, Step, main  # noqa: E402


def declined(lab: Lab) -> str:
    return lab.at_least(
        f'sum(increase(recordstore_orders_completed_total{{job="worker",status="failed",'
        f'reason="payment_declined"}}{lab.window}))', 1, "orders failed: payment declined")


def failed_trace(lab: Lab) -> str:
    for tree in lab.trees(service=WORKER_SERVICE, operation="process_order",
                          tags={"error": "true"}, limit=20):
        for span in tree.find("process_order"):
            if span.error and "payment_declined" in span.error_message:
                return f"trace {tree.trace_id}: process_order in error: {span.error_message}"
    raise NotYet("no process_order span in error with payment_declined in Jaeger")


def retried(lab: Lab) -> str:
    return lab.at_least(
        f'sum(increase(recordstore_celery_tasks_total{{job="worker",'
        f'task="send_order_confirmation",state="retried"}}{lab.window}))', 1,
        "confirmation e-mails retried")


def dead_lettered(lab: Lab) -> str:
    peak = lab.peak('rabbitmq_queue_messages_ready{job="rabbitmq",queue="dead_letter"}') or 0
    if peak < 1:
        raise NotYet("no message reached the dead_letter queue (3 attempts, then dead-lettered)")
    return f"the dead_letter queue held up to {peak:.0f} message(s)"


STEPS = [
    Step("Payments were declined", declined,
         "switch the fault on, ./lab chaos set payment_failure_rate=0.5, and buy: "
         "python3 scripts/trace_purchase_journey.py load-test --journeys 40 --users 20"),
    Step("A failed order's trace says why", failed_trace,
         "search Jaeger: service kodekloud-record-store-worker, operation process_order, "
         "tag error=true"),
    Step("Failed e-mails were retried", retried,
         "make the mail server refuse: ./lab chaos set email_failure_rate=1, then buy again"),
    Step("After 3 attempts an e-mail went to the dead-letter queue", dead_lettered,
         "keep email_failure_rate=1 for about 10 s after a purchase is paid"),
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
    main("Exercise 06: failing payments, retries, dead letters and the error budget", STEPS)
