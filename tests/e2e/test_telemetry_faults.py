"""Faults of the telemetry itself (issue 26): the application keeps working while a signal
breaks, truthfully. A purchase whose order message lost its trace context is two traces joined
only by the correlation id; a worker that stopped logging the correlation id still logs the
order id and its trace id; a metric labelled by correlation id makes a series per journey,
which go stale once the fault is off."""

import json
import uuid

import httpx
import pytest

from labkit.jaeger import CORRELATION_ID, JaegerQuery
from labkit.links import API_SERVICE, WORKER_SERVICE
from tests.helpers import get_json, lab_command, wait_for, wait_for_order

pytestmark = [pytest.mark.stack, pytest.mark.disruptive]


def purchase(gateway) -> tuple[str, str, int]:
    """(correlation id, the API's trace id, order id) of a confirmed purchase."""
    cid = f"telfault-{uuid.uuid4().hex[:10]}"
    resp = gateway.post("/checkout", json={"product_id": 2, "quantity": 1},
                        headers={"X-Correlation-ID": cid})
    assert resp.status_code == 202, resp.text
    order_id = resp.json()["order_id"]
    assert wait_for_order(gateway, order_id)["status"] == "confirmed"
    return cid, resp.headers["x-trace-id"], order_id


def traces_of(lab, service: str, cid: str) -> list[dict]:
    return JaegerQuery(lab.url("JAEGER_UI_PORT")).find_traces(service, {CORRELATION_ID: cid},
                                                             lookback="1h")


def worker_lines(lab, order_id: int) -> list[dict]:
    lines = (lab.logs / "worker.log").read_text(errors="replace").splitlines()
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    return [line for line in parsed if line.get("order_id") == order_id]


def test_a_dropped_trace_context_splits_a_purchase_in_two_joined_by_correlation_id(lab, gateway,
                                                                                   chaos):
    chaos("trace_context_drop=1")

    def split():
        # Each API process reads the faults at most once a second: buy until one is split.
        cid, api_trace, _ = purchase(gateway)
        worker = [t for t in traces_of(lab, WORKER_SERVICE, cid) if t["traceID"] != api_trace]
        return (cid, api_trace, worker) if worker else None

    cid, api_trace, worker = wait_for(split, 60, "a purchase whose worker half is a trace apart")
    # The worker's half: a trace of its own, rooted in its consumer span, with the correlation id
    # (spans arrive in batches: wait for the root, which ends last).
    jaeger = JaegerQuery(lab.url("JAEGER_UI_PORT"))
    tree, whole = jaeger.wait_for_tree(
        worker[0]["traceID"], lambda t: any(r.missing_parent is None for r in t.roots), 15)
    assert whole, "the worker's trace has its root"
    roots = [r for r in tree.roots if r.missing_parent is None]
    assert len(roots) == 1 and roots[0].kind == "consumer", [r.operation for r in tree.roots]
    assert roots[0].tags[CORRELATION_ID] == cid
    # The API's half ends at the publish: no worker span in it.
    api = wait_for(lambda: get_json(lab.url("JAEGER_UI_PORT", f"/api/traces/{api_trace}")),
                   15, "the API's trace")["data"][0]
    services = {api["processes"][s["processID"]]["serviceName"] for s in api["spans"]}
    assert services == {API_SERVICE}
    assert any(s["operationName"].endswith("process_order") for s in api["spans"])



def test_the_worker_loses_the_correlation_id_in_its_logs_only(lab, gateway, chaos):
    chaos("log_correlation_drop=1")

    def stripped():
        cid, trace_id, order_id = purchase(gateway)
        lines = wait_for(lambda: [ln for ln in worker_lines(lab, order_id)
                                  if ln.get("event") == "order_confirmation"], 15,
                         "the worker's lines of the order")
        return (cid, trace_id, order_id) if "correlation_id" not in lines[0] else None

    cid, trace_id, order_id = wait_for(stripped, 60, "a worker log line without correlation_id")
    lines = worker_lines(lab, order_id)
    assert lines and all("correlation_id" not in line for line in lines), lines
    # What the learner joins it by instead: the order id and the trace id are still there.
    assert all(line["trace_id"] == trace_id for line in lines)
    # The API's lines and the worker's spans keep it.
    api = [json.loads(ln) for ln in (lab.logs / "api.log").read_text().splitlines() if cid in ln]
    assert any(line.get("correlation_id") == cid for line in api)
    assert wait_for(lambda: traces_of(lab, WORKER_SERVICE, cid), 15, "the worker's spans")


def journeys_series(lab) -> dict[str, float]:
    """recordstore_checkout_journeys_total's series in Prometheus now, by correlation id."""
    query = "recordstore_checkout_journeys_total"
    result = get_json(lab.url("PROMETHEUS_PORT", f"/api/v1/query?query={query}"))
    return {r["metric"]["correlation_id"]: float(r["value"][1]) for r in result["data"]["result"]}


def test_a_cardinality_bomb_makes_a_series_per_journey_that_go_stale_when_off(lab, gateway,
                                                                                chaos):
    chaos("cardinality_bomb=1")
    sent: list[str] = []

    def bombed():
        # A new journey each time: each API process reads the faults at most once a second.
        cid = f"bomb-{uuid.uuid4().hex[:10]}"
        resp = gateway.post("/checkout", json={"product_id": 3, "quantity": 1},
                            headers={"X-Correlation-ID": cid})
        assert resp.status_code == 202, resp.text
        sent.append(cid)
        counted = journeys_series(lab)
        return counted if len(set(counted) & set(sent)) >= 3 else None

    counted = wait_for(bombed, 60, "three journeys' series in Prometheus")
    assert all(v == 1 for cid, v in counted.items() if cid in sent)
    lab_command(lab, "chaos", "set", "cardinality_bomb=0")
    # Off: the family leaves the API's scrape, and Prometheus marks its series stale.
    wait_for(lambda: journeys_series(lab) == {}, 30, "the journeys' series to go stale")
    metrics = httpx.get(lab.url("API_PORT", "/metrics"), timeout=10).text
    assert "recordstore_checkout_journeys" not in metrics
