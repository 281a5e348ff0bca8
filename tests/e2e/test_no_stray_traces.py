"""Issue 24 part 3: background work makes no trace. With the lab idle for a minute and an order
page open (its polls of the order and of its log lines, the health checks the gateway and
Prometheus make), every new trace in the trace store starts where a learner's request or task
does: a server span of a route the learner calls, or a task's consumer span. The outbox relay's
poll, /health and the log reads made root SELECT traces before (SQLAlchemy's instrumentation
starts a root span when nothing is current)."""

import time
import uuid

import pytest

from tests.helpers import get_json, wait_for, wait_for_order

pytestmark = pytest.mark.stack

API = "kodekloud-record-store-api"
WORKER = "kodekloud-record-store-worker"
IDLE_S = 60
PAGE_POLL_S = 1.5  # the order page's FOLLOW_MS
# Requests nobody should find in a trace search: the lab looking at itself.
QUIET_ROUTES = ("/health", "/health/live", "/metrics", "/orders/{order_id}/logs")
ENTRY_KINDS = ("server", "consumer")


def _tags(span: dict) -> dict:
    return {t["key"]: t.get("value") for t in span.get("tags") or []}


def stray_roots(trace: dict) -> list[str]:
    """The spans that started a trace (no parent at all) that no request or task of the learner
    made. A span whose parent never arrived is no such start: its parent was lost on the way
    (a span processor's full queue under the suite's load, a process stopped before its last
    export); the refused-publish test holds the one case where the lab itself lost one."""
    service = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    stray = []
    for span in trace["spans"]:
        parents = [r["spanID"] for r in span.get("references") or []
                   if r.get("refType") == "CHILD_OF"]
        if parents or service[span["processID"]] not in (API, WORKER):
            continue
        tags = _tags(span)
        if tags.get("span.kind") not in ENTRY_KINDS or tags.get("http.route") in QUIET_ROUTES:
            stray.append(f"{service[span['processID']]}: {span['operationName']!r} "
                         f"({tags.get('span.kind')}) in trace {trace['traceID']}")
    return stray


def test_an_idle_lab_with_an_order_page_open_makes_no_stray_trace(lab, gateway):
    cid = f"idle-{uuid.uuid4().hex[:10]}"
    accepted = gateway.post("/checkout", json={"product_id": 2},
                            headers={"X-Correlation-ID": cid})
    assert accepted.status_code == 202, accepted.text
    order_id = accepted.json()["order_id"]
    assert wait_for_order(gateway, order_id)["status"] == "confirmed"

    since_us = time.time_ns() // 1000
    deadline = time.monotonic() + IDLE_S
    page_traces = set()
    while time.monotonic() < deadline:
        order = gateway.get(f"/orders/{order_id}")
        assert order.status_code == 200, order.text
        page_traces.add(order.headers["x-trace-id"])
        assert gateway.get(f"/orders/{order_id}/logs").status_code == 200
        assert gateway.get("/health").status_code == 200
        assert gateway.get("/health/live").status_code == 200
        time.sleep(PAGE_POLL_S)  # the page's pace, not a wait for a condition
    last = order.headers["x-trace-id"]
    wait_for(lambda: get_json(lab.url("JAEGER_UI_PORT", f"/api/traces/{last}")), 20,
             f"the last poll's trace {last} in the trace store")

    until_us = time.time_ns() // 1000
    found: dict[str, dict] = {}
    for service in (API, WORKER):
        query = f"service={service}&start={since_us}&end={until_us}&limit=100000"
        for trace in get_json(lab.url("JAEGER_UI_PORT", f"/api/traces?{query}"))["data"]:
            found[trace["traceID"]] = trace
    assert page_traces <= found.keys(), "the search sees the order page's own requests"
    stray = [root for trace in found.values() for root in stray_roots(trace)]
    assert not stray, f"{len(stray)} traces no learner caused, e.g. {stray[:5]}"
