"""Exercise 12 on the native stack, as its README says: trace_context_drop on, two purchases
made with curl (the API's trace id from X-Trace-ID), each one's worker half found in Jaeger by
its correlation id, the fault off; the check answered right (it passes: the two halves of one
purchase) and wrong (the halves of two purchases, another hop: hints that never say the
answer). Stack time: about 15 s."""

import uuid

import pytest

from labkit.jaeger import CORRELATION_ID, JaegerQuery
from labkit.links import API_SERVICE, WORKER_SERVICE
from tests.exercise_steps import (
    assert_passes,
    assert_wrong_answers_get_hints,
    before,
    jaeger_trace,
    jaeger_traces,
)
from tests.helpers import lab_command, wait_for, wait_for_order

pytestmark = [pytest.mark.stack, pytest.mark.disruptive]


def split_purchase(lab, gateway, since: float) -> tuple[str, str, str]:
    """(correlation id, the API's trace id, the worker's trace id) of a confirmed purchase
    whose worker half is a trace of its own, rooted in its consumer span (all its spans in)."""
    cid = f"split12-{uuid.uuid4().hex[:10]}"
    resp = gateway.post("/checkout", json={"product_id": 4, "quantity": 1},
                        headers={"X-Correlation-ID": cid})
    assert resp.status_code == 202, resp.text
    api = resp.headers["X-Trace-ID"]
    assert wait_for_order(gateway, resp.json()["order_id"])["status"] == "confirmed"
    found = wait_for(lambda: [t["traceID"] for t in jaeger_traces(
        lab, since, service=WORKER_SERVICE, tags=f'{{"{CORRELATION_ID}":"{cid}"}}')], 15,
        "the purchase's worker spans")
    if found == [api]:
        return cid, api, ""  # an API process had not read the fault yet: one whole trace
    worker = next(t for t in found if t != api)
    _, whole = JaegerQuery(lab.url("JAEGER_UI_PORT")).wait_for_tree(
        worker, lambda t: any(r.kind == "consumer" and not r.references for r in t.roots), 15)
    assert whole, "the worker's half has its consumer root"
    return cid, api, worker


@pytest.mark.timeout(300)
def test_12_a_broken_trace(lab, gateway, chaos):
    since, _ = before(lab, "12")
    chaos("trace_context_drop=1")
    # Each API process reads the faults at most once a second: buy until two are split.
    bought = [split_purchase(lab, gateway, since) for _ in range(2)]
    while sum(1 for *_, worker in bought if worker) < 2 and len(bought) < 8:
        bought.append(split_purchase(lab, gateway, since))
    halves = [purchase for purchase in bought if purchase[2]]
    (cid, api, worker), (other_cid, _, other_worker) = halves
    # The hop, read off the API's half: its last span is the publish, and no worker span follows.
    trace = jaeger_trace(lab, api)
    services = {p["serviceName"] for p in trace["processes"].values()}
    publish = [s["operationName"] for s in trace["spans"]
               if any(t["key"] == "span.kind" and t["value"] == "producer" for t in s["tags"])]
    assert services == {API_SERVICE} and publish, trace
    lab_command(lab, "chaos", "reset")

    answers = {"hop": publish[0], "api_trace_id": api, "worker_trace_id": worker,
               "correlation_id": cid}
    assert_wrong_answers_get_hints(lab, "12", since, {"api_trace_id": api}, {
        "hop": "gateway→api", "worker_trace_id": other_worker, "correlation_id": other_cid})
    assert_passes(lab, "12", since, wait_s=30, answers=answers)
    assert_passes(lab, "12", since, answers={**answers, "hop": "api -> worker"})
