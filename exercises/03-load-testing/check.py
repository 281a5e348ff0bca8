#!/usr/bin/env python3
"""Exercise 03's check: what the learner read off the signals of a load past capacity (the knee
where confirmed orders stop following accepted ones, the resource that ran full, when
OrderProcessingSlow fired); then whether the load test ran, its latency and its bottleneck can
be read, and the lab caught up afterwards."""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import API_SERVICE, Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.questions import Truth, fired_at, normal, number  # noqa: E402

SLO_P95_S = 0.5
CONFIRMED = ('sum(rate(recordstore_orders_completed_total{job="worker",status="confirmed"}'
             '[30s]))')
WAITING = 'sum(rabbitmq_queue_messages_ready{job="rabbitmq",queue="orders"})'
HELD = 'sum(rabbitmq_queue_messages_unacked{job="rabbitmq",queue=~"orders|emails"})'
BACKLOG = 5  # orders waiting, ready, at once: the worker is behind
WORKER_WORDS = ("worker", "thread", "celery", "consumer", "concurrency", "prefetch")
NOT_IT = ("cpu", "memory")


def behind(lab: Lab) -> dict[float, float]:
    """{moment: orders waiting} of the window's moments when orders waited for the worker;
    NotYet unless more than 5 waited at once."""
    if "behind" not in lab.memo:
        waiting = {t: v for t, v in lab.graph(WAITING).items() if v >= 1}
        if max(waiting.values(), default=0.0) <= BACKLOG:
            raise NotYet(f"no more than {BACKLOG} orders waited in the queue at once since "
                         f"{lab.since_text}")
        lab.memo["behind"] = waiting
    return lab.memo["behind"]


def knee(lab: Lab) -> Truth:
    """The rate of confirmed orders (over 30 s) when the most orders waited: the worker was at
    its capacity all the while the queue grew to that peak. Within ± 25 % (0.3 a second at
    least)."""
    waiting = behind(lab)
    rates = lab.graph(CONFIRMED)
    most = max(waiting.values())
    at_peak = [rates[t] for t, n in waiting.items() if n == most and t in rates]
    if not at_peak:
        raise NotYet("the worker confirmed no order while the most orders waited")
    return number(statistics.median(at_peak), 0.3, " orders/s", relative=0.25)


def saturated(lab: Lab) -> Truth:
    """The worker's threads, when the messages it held stayed level while orders waited
    (nearly always within one of their median: a sample may catch a thread between an order
    and its e-mail, RabbitMQ counting the two queues a moment apart)."""
    held = lab.graph(HELD)
    while_behind = [held[t] for t in behind(lab) if t in held]
    level = statistics.median(while_behind) if while_behind else 0.0
    steady = sum(1 for n in while_behind if abs(n - level) <= 1)
    if level < 1 or steady < 0.8 * len(while_behind):
        raise NotYet("the worker did not hold the same number of orders all the while others "
                     "waited")

    def accepts(answer: str) -> bool:
        said = normal(answer)
        return any(w in said for w in WORKER_WORDS) and not any(w in said for w in NOT_IT)
    return Truth(f"the worker's threads: {level:.0f} orders held at once, none free", accepts)


def not_the_cpu(lab: Lab, answer: str) -> str | None:
    if any(w in normal(answer) for w in NOT_IT):
        return ("the worker's CPU stays low while orders wait (top, or docker stats): not "
                "the CPU; compare what RabbitMQ says is being worked on (unacknowledged) with "
                "what waits (ready)")
    return None


def load_ran(lab: Lab) -> str:
    return lab.at_least(
        f'sum(increase(http_requests_total{{job="api",handler="/checkout"}}{lab.window}))', 20,
        "checkout requests at the API")


def checkout_p95(lab: Lab) -> str:
    p95 = lab.value("histogram_quantile(0.95, sum by (le) (increase("
                    f'http_request_duration_seconds_bucket{{job="api",handler="/checkout",'
                    f'status_class="2xx"}}'
                    f"{lab.window})))")
    if p95 is None or p95 != p95:  # NaN: no checkout in the window
        raise NotYet("no checkout latency recorded in the window")
    verdict = "within" if p95 < SLO_P95_S else "over"
    return f"checkout p95 {p95 * 1000:.0f} ms, {verdict} the 500 ms objective"


def bottleneck(lab: Lab) -> str:
    """The slowest purchase of the window, and the step that took most of its time."""
    trees = lab.trees(service=API_SERVICE, operation="checkout_order", limit=200)
    whole = [t for t in trees if t.find("send_order_confirmation")]
    if len(whole) < 5:
        raise NotYet(f"{len(whole)} complete purchase trace(s) in Jaeger (wanted 5 or more)")
    slowest = max(whole, key=lambda t: t.duration_us)
    worker_steps = [s for s in slowest.spans
                    if s.operation in ("authorize_payment", "reserve_stock", "send_email")]
    top = max(worker_steps, key=lambda s: s.duration_us)
    return (f"slowest of {len(whole)} purchases: trace {slowest.trace_id}, "
            f"{slowest.duration_us / 1e6:.1f} s end to end, most of it in {top.operation} "
            f"({top.duration_us / 1e6:.1f} s)")


def orders_processed(lab: Lab) -> str:
    return lab.at_least(
        f'sum(increase(recordstore_orders_completed_total{{job="worker"}}{lab.window}))', 5,
        "orders the worker completed")


QUESTIONS = [
    Question("knee_per_s", "At how many orders a second did confirmed orders stop following the "
             "orders accepted (the knee)?", knee,
             "graph orders accepted and orders confirmed together in Prometheus (the README's "
             "step 4) over the sale, and read the rate where confirmed stays flat while "
             "accepted climbs on"),
    Question("saturated", "Which resource ran full?", saturated,
             "compare, while the sale runs, what waits (rabbitmq_queue_messages_ready) with "
             "what is being worked on (rabbitmq_queue_messages_unacked) and what each "
             "component's CPU does (top, or docker stats)", wrong=not_the_cpu),
    Question("fired_at", "At what time (UTC, HH:MM:SS) did OrderProcessingSlow start firing?",
             lambda lab: fired_at(lab, "OrderProcessingSlow"),
             "run the flash sale with the slow gateway (./lab chaos set payment_latency_ms=5000)"
             " and watch ./lab alerts: it shows when the notification came"),
]

STEPS = [
    Step("A load test ran through the gateway", load_ran,
         "run one: python3 scripts/trace_purchase_journey.py load-test --pattern flash-sale "
         "--duration 60"),
    Step("Its checkout latency is measured", checkout_p95,
         "Prometheus needs a few scrapes (5 s each) of the load"),
    Step("Jaeger shows where a purchase spends its time", bottleneck,
         "wait for the load test's orders to be confirmed, then check again"),
    Step("The worker completed the orders", orders_processed,
         "give the worker time: each order takes a few seconds"),
    Step("The queue is empty again", lambda lab: lab.orders_queue_empty(),
         "wait for the worker to catch up"),
    Step("Every order accepted is final", lambda lab: lab.orders_final(),
         "wait for the worker to catch up"),
    Step("OrderProcessingSlow fired, reached the receiver, and resolved",
         lambda lab: lab.alert_came_and_went("OrderProcessingSlow"),
         "push the sale past the worker's capacity (the README's steps 2 and 3); once the "
         "queue is empty it resolves about 2 minutes after the last slow order"),
]

if __name__ == "__main__":
    main("Exercise 03: load testing", STEPS, QUESTIONS)
