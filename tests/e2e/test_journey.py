"""Acceptance: one purchase through the gateway, followed in logs, traces and metrics."""

import json
import re
import urllib.parse
import uuid

import pytest

from labkit import http
from tests.helpers import get_json, metric_sum, wait_for, wait_for_order

pytestmark = pytest.mark.stack
API, WORKER = "kodekloud-record-store-api", "kodekloud-record-store-worker"
BUSINESS_SPANS = {"checkout_order", "verify_product", "enqueue_order", "process_order",
                  "authorize_payment", "reserve_stock", "send_order_confirmation"}


def log_lines(lab, service: str, needle: str) -> list[dict]:
    path = lab.logs / f"{service}.log"
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if needle in line:
            found.append(json.loads(line))  # every line carrying the id is a JSON object
    return found


def complete_trace(lab, trace_id: str):
    def fetch():
        try:
            body = get_json(lab.url("JAEGER_UI_PORT", f"/api/traces/{trace_id}"))
        except http.Unreachable:
            return None
        if not body or not body.get("data"):
            return None  # 404 until the first span has arrived
        trace = body["data"][0]
        names = {s["operationName"] for s in trace["spans"]}
        return trace if names >= BUSINESS_SPANS else None

    return wait_for(fetch, 30, f"trace {trace_id} with API and worker spans")


def prometheus_value(lab, query: str) -> float:
    url = lab.url("PROMETHEUS_PORT", "/api/v1/query?" + urllib.parse.urlencode({"query": query}))
    result = get_json(url)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def journey(lab, gateway):
    cid = f"e2e-{uuid.uuid4().hex[:12]}"
    resp = gateway.post("/checkout", json={"product_id": 1, "quantity": 1},
                        headers={"X-Correlation-ID": cid})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    order = wait_for_order(gateway, body["order_id"], timeout_s=30)
    return {"cid": cid, "response": resp, "accepted": body, "order": order}


def test_checkout_is_accepted_and_the_order_is_confirmed(journey):
    resp, body, order = journey["response"], journey["accepted"], journey["order"]
    assert body["status"] == "pending" and body["correlation_id"] == journey["cid"]
    assert re.fullmatch(r"[0-9a-f]{32}", body["trace_id"])
    assert resp.headers["x-correlation-id"] == journey["cid"]
    assert resp.headers["x-trace-id"] == body["trace_id"]
    assert resp.headers["traceresponse"].startswith(f"00-{body['trace_id']}-")
    assert order["status"] == "confirmed", order
    assert order["correlation_id"] == journey["cid"] and order["trace_id"] == body["trace_id"]
    stamps = order["timestamps"]
    assert stamps["pending"] <= stamps["processing"] <= stamps["paid"] <= stamps["confirmed"]


def test_the_correlation_id_is_in_every_components_logs(lab, journey):
    cid, trace_id = journey["cid"], journey["accepted"]["trace_id"]
    gateway_lines = wait_for(lambda: log_lines(lab, "gateway", cid), 10, "gateway log line")
    assert any(line["uri"] == "/checkout" and line["status"] == 202 and
               line["trace_id"] == trace_id for line in gateway_lines)
    api_lines = log_lines(lab, "api", cid)
    assert {"order_accepted", "request_finished"} <= {line["event"] for line in api_lines}
    assert all(line["trace_id"] == trace_id for line in api_lines if line["event"] ==
               "order_accepted")
    worker_lines = wait_for(lambda: [ln for ln in log_lines(lab, "worker", cid)
                                     if ln["event"] == "order_confirmation"], 10, "worker lines")
    for line in log_lines(lab, "worker", cid):
        assert line["service"] == WORKER
        assert line["trace_id"] == trace_id, line
        assert {"timestamp", "level", "span_id", "order_id"} <= set(line)
    assert worker_lines


def test_api_and_worker_spans_form_one_trace(lab, journey):
    trace_id = journey["accepted"]["trace_id"]
    trace = complete_trace(lab, trace_id)
    services = {p["serviceName"] for p in trace["processes"].values()}
    assert {API, WORKER} <= services
    by_id = {s["spanID"]: s for s in trace["spans"]}
    service_of = {s["spanID"]: trace["processes"][s["processID"]]["serviceName"]
                  for s in trace["spans"]}

    def parent(span):
        refs = [r for r in span["references"]
                if r["refType"] == "CHILD_OF" and r["traceID"] == trace_id]
        return by_id.get(refs[0]["spanID"]) if refs else None

    roots = [s for s in trace["spans"] if parent(s) is None]
    assert len(roots) == 1, [r["operationName"] for r in roots]
    root = roots[0]
    assert service_of[root["spanID"]] == API
    assert {"key": "span.kind", "type": "string", "value": "server"} in root["tags"]

    def chain(span):
        names = []
        while span is not None:
            names.append(span["operationName"])
            span = parent(span)
        return names

    named = {s["operationName"]: s for s in trace["spans"]}
    assert service_of[named["process_order"]["spanID"]] == WORKER
    assert "checkout_order" in chain(named["process_order"])  # worker beneath the API's checkout
    assert "process_order" in chain(named["send_order_confirmation"])
    assert chain(named["authorize_payment"])[-1] == root["operationName"]
    assert any(t["key"] == "db.system.name" for s in trace["spans"] for t in s["tags"]), "SQL"
    tagged = [s for s in trace["spans"] if {"key": "recordstore.correlation_id",
                                            "type": "string", "value": journey["cid"]} in s["tags"]]
    assert {service_of[s["spanID"]] for s in tagged} == {API, WORKER}


def test_the_trace_is_found_by_its_correlation_id(lab, journey):
    complete_trace(lab, journey["accepted"]["trace_id"])
    tags = {"recordstore.correlation_id": journey["cid"]}
    query = urllib.parse.urlencode({"service": WORKER, "tags": json.dumps(tags)})
    found = get_json(lab.url("JAEGER_UI_PORT", f"/api/traces?{query}"))["data"]
    assert [t["traceID"] for t in found] == [journey["accepted"]["trace_id"]]


def test_prometheus_scraped_api_and_worker_with_the_order_counted(lab, journey):
    import httpx

    worker_now = metric_sum(httpx.get(lab.url("WORKER_METRICS_PORT", "/metrics")).text,
                              "recordstore_orders_completed_total", status="confirmed")
    api_now = metric_sum(httpx.get(lab.url("API_PORT", "/metrics")).text,
                           "recordstore_checkouts_total", outcome="accepted")
    assert worker_now >= 1 and api_now >= 1
    wait_for(lambda: prometheus_value(lab, 'min(up{job=~"api|worker"})') == 1, 20,
             "api and worker targets up")
    wait_for(lambda: prometheus_value(
        lab, 'sum(recordstore_orders_completed_total{job="worker",status="confirmed"})'
    ) >= worker_now, 20, "Prometheus to have scraped the worker's count of this order")
    wait_for(lambda: prometheus_value(
        lab, 'sum(recordstore_checkouts_total{job="api",outcome="accepted"})') >= api_now, 20,
        "Prometheus to have scraped the API's count of this order")
    assert prometheus_value(
        lab, 'sum(http_requests_total{job="api",handler="/checkout",status="202"})') >= 1


def test_every_metric_the_readme_names_is_exported(lab, journey):
    import httpx

    from tests.unit.test_docs import readme_metric_names

    exported = httpx.get(lab.url("API_PORT", "/metrics")).text + httpx.get(
        lab.url("WORKER_METRICS_PORT", "/metrics")).text
    wait_for(lambda: log_lines(lab, "worker", journey["cid"]), 10, "the journey's worker lines")
    for name in readme_metric_names():
        assert re.search(rf"^{name}(_bucket|_count|_sum)?[{{ ]", exported, re.M), name
