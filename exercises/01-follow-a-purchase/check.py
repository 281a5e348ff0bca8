#!/usr/bin/env python3
"""Exercise 01's check: what the learner found following their own purchase through the trace,
then whether the logs and the metrics carry it too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import API_SERVICE, Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.jaeger import CORRELATION_ID, ORDER_ID  # noqa: E402
from labkit.questions import Truth, number, one_of  # noqa: E402
from labkit.shop import made_by_the_lab  # noqa: E402

BUY = ("buy a record yourself, in the store (http://localhost:8000: the order page shows its "
       "correlation id) or with python3 scripts/trace_purchase_journey.py (it prints it), and "
       "wait until the order is confirmed")


def own_purchases(lab: Lab) -> dict[str, str]:
    """{correlation id: trace id} of the window's confirmed orders that a person made (not the
    lab's own shoppers, shop.made_by_the_lab): the one answered, else the newest few."""
    if "own" in lab.memo:
        return lab.memo["own"]
    given = lab.answers.get("correlation_id", "")
    mine = given and not made_by_the_lab(given)
    search = {"tags": {CORRELATION_ID: given}} if mine else {"limit": 100}
    shop, found = lab.shop(), {}
    for tree in lab.trees(service=API_SERVICE, operation="checkout_order", **search):
        for span in tree.find("checkout_order"):
            cid, order_id = str(span.tags.get(CORRELATION_ID, "")), span.tags.get(ORDER_ID)
            if cid and order_id is not None and not made_by_the_lab(cid):
                step = shop.order(int(order_id))
                if step.ok and step.body.get("status") == "confirmed":
                    found[cid] = span.trace_id
    lab.memo["own"] = found
    return found


def purchase_trace(lab: Lab) -> str:
    """The trace id of the purchase the learner named (NotYet until they named theirs)."""
    trace_id = own_purchases(lab).get(lab.answers.get("correlation_id", ""))
    if trace_id is None:
        raise NotYet("answer correlation_id with your own purchase's first")
    return trace_id


def correlation_id(lab: Lab) -> Truth:
    return one_of(own_purchases(lab))


def not_yours(lab: Lab, answer: str) -> str | None:
    if made_by_the_lab(answer):
        return ("that id is one the lab's own shoppers made (load-…: a load test, or the "
                "background shoppers of ./lab traffic start; check-…: a check's test "
                "purchase): " + BUY)
    return None


def trace_id(lab: Lab) -> Truth:
    return one_of([purchase_trace(lab)])


def duration_ms(lab: Lab) -> Truth:
    """The purchase's trace, first span to last (Jaeger's trace duration), within ± 10 %."""
    tree = lab.trace_tree(purchase_trace(lab))
    return number(tree.duration_us / 1000, 20, " ms", relative=0.1)


def in_every_log(lab: Lab) -> str:
    cid = lab.answers.get("correlation_id", "")
    if cid not in own_purchases(lab):
        raise NotYet("answer correlation_id with your own purchase's first")
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


QUESTIONS = [
    Question("correlation_id", "The correlation id of your own purchase?", correlation_id, BUY,
             wrong=not_yours),
    Question("trace_id", "The trace id of that purchase (its one trace in Jaeger)?", trace_id,
             "search Jaeger: service kodekloud-record-store-api, tag "
             "recordstore.correlation_id=<your correlation id>; or read trace_id off any log "
             "line of your purchase"),
    Question("duration_ms", "How long did that purchase take end to end, first span to last, "
             "in ms?", duration_ms,
             "open your trace in Jaeger: the trace's duration is at its top (the journey script "
             "prints it under Where the time went)"),
]

STEPS = [
    Step("Its correlation id is in the gateway's, the API's and the worker's logs", in_every_log,
         "the logs are written as the purchase goes; check again in a few seconds"),
    Step("Prometheus counted it at the API and at the worker", counted,
         "Prometheus scrapes every 5 s: check again in a few seconds"),
]

if __name__ == "__main__":
    main("Exercise 01: follow a purchase journey", STEPS, QUESTIONS)
