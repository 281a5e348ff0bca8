#!/usr/bin/env python3
"""Exercise 03's check: a load test ran, its latency and its bottleneck can be read off the
signals, and the lab caught up afterwards."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import API_SERVICE, Lab, NotYet, Step, main  # noqa: E402

SLO_P95_S = 0.5


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
]

if __name__ == "__main__":
    main("Exercise 03: load testing", STEPS)
