#!/usr/bin/env python3
"""Exercise 01's check: one purchase, followed through the trace, the logs and the metrics."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import API_SERVICE, WORKER_SERVICE, Lab, NotYet, Step, main  # noqa: E402
from labkit.jaeger import CORRELATION_ID, ORDER_ID  # noqa: E402

BUSINESS_STEPS = ("checkout_order", "process_order", "authorize_payment", "reserve_stock",
                  "send_order_confirmation")


def purchase_confirmed(lab: Lab) -> str:
    """The newest checkout of the window whose order is confirmed; remembered for the rest."""
    shop = lab.shop()
    for tree in lab.trees(service=API_SERVICE, operation="checkout_order", limit=20):
        for span in tree.find("checkout_order"):
            order_id = span.tags.get(ORDER_ID)
            if order_id is None:
                continue
            step = shop.order(int(order_id))
            if step.ok and step.body.get("status") == "confirmed":
                lab.memo.update(order=step.body, trace_id=span.trace_id,
                                correlation_id=span.tags.get(CORRELATION_ID, ""))
                return (f"order {order_id} confirmed; correlation id "
                        f"{lab.memo['correlation_id']}, trace id {span.trace_id}")
    raise NotYet(f"no confirmed order from a checkout since {lab.since_text}")


def one_trace(lab: Lab) -> str:
    tree = lab.trace_tree(lab.found("trace_id", 1))
    missing = [op for op in BUSINESS_STEPS if not tree.find(op)]
    if missing or not {API_SERVICE, WORKER_SERVICE} <= tree.services:
        raise NotYet(f"the trace lacks {', '.join(missing) or 'the worker'}")
    return (f"{len(tree.spans)} spans of {', '.join(sorted(tree.services))} in one trace, "
            f"{', '.join(BUSINESS_STEPS)} among them")


def in_every_log(lab: Lab) -> str:
    cid = lab.found("correlation_id", 1)
    counts = {svc: len(lab.log_lines(svc, cid)) for svc in ("gateway", "api", "worker")}
    missing = [svc for svc, n in counts.items() if n == 0]
    if missing:
        raise NotYet(f"{cid} is not in the log of {', '.join(missing)}")
    return ", ".join(f"{svc}: {n} line(s)" for svc, n in counts.items()) + f" with {cid}"


def counted(lab: Lab) -> str:
    w = lab.window
    return "; ".join([
        lab.at_least(f'sum(increase(recordstore_checkouts_total{{job="api",'
                     f'outcome="accepted"}}{w}))', 1, "checkouts accepted (API)"),
        lab.at_least(f'sum(increase(recordstore_orders_completed_total{{job="worker",'
                     f'status="confirmed"}}{w}))', 1, "orders confirmed (worker)"),
    ])


STEPS = [
    Step("A purchase was confirmed", purchase_confirmed,
         "buy a record: python3 scripts/trace_purchase_journey.py (or in the store, "
         "http://localhost:8000)"),
    Step("Its trace runs from the API through the worker", one_trace,
         "wait a few seconds for the worker's spans, then run the check again"),
    Step("Its correlation id is in the gateway's, the API's and the worker's logs", in_every_log,
         "the logs are written as the purchase goes; check again in a few seconds"),
    Step("Prometheus counted it at the API and at the worker", counted,
         "Prometheus scrapes every 5 s: check again in a few seconds"),
]

if __name__ == "__main__":
    main("Exercise 01: follow a purchase journey", STEPS)
