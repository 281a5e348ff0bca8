"""The order page's trace model (nginx/html/assets/trace-view.js), run in Node on a real Jaeger
API answer (Jaeger's own fixture, tests/fixtures/jaeger_ui_trace_01.json) and on the trace
stand-in's: the same tree as labkit/jaeger.py builds, by the same rules."""

import json

import pytest

from labctl.config import ROOT
from labkit import waterfall
from labkit.jaeger import build_tree
from labkit.prometheus import slowest_exemplar
from tests import helpers

MODULE = ROOT / "nginx" / "html" / "assets" / "trace-view.js"
FIXTURE = ROOT / "tests" / "fixtures" / "jaeger_ui_trace_01.json"


def run_js(function: str, argument) -> dict:
    return helpers.run_js(MODULE, function, argument)


@pytest.fixture(scope="module")
def jaeger_trace() -> dict:
    return json.loads(FIXTURE.read_text())


def _span(span_id: str, parent: str | None, service: str = "p1", trace: str = "ab" * 16,
          tags: dict[str, str] | None = None) -> dict:
    refs = [{"refType": "CHILD_OF", "traceID": trace, "spanID": parent}] if parent else []
    return {"spanID": span_id, "operationName": f"op-{span_id}", "processID": service,
            "startTime": 1_000 + int(span_id, 16), "duration": 10, "references": refs,
            "tags": [{"key": k, "type": "string", "value": v} for k, v in (tags or {}).items()]}


def _trace(*spans: dict) -> dict:
    return {"traceID": "ab" * 16, "spans": list(spans),
            "processes": {"p1": {"serviceName": "kodekloud-record-store-api"},
                          "p2": {"serviceName": "other-service"}}}


# Each rule on both sides: a cycle, a self-reference, another trace's parent, every component
# and every way of being in error.
EDGE_CASES = {
    "cycle and self-reference": _trace(_span("a1", "a2"), _span("a2", "a1"), _span("a3", "a3"),
                                       _span("a4", "a9", trace="cd" * 16)),
    "components and errors": _trace(
        _span("b1", None, tags={"db.system.name": "postgresql", "error": "true"}),
        _span("b2", "b1", tags={"span.kind": "producer", "otel.status_code": "ERROR",
                                "error.message": "broker down"}),
        _span("b3", "b1", "p2", tags={"messaging.system": "rabbitmq",
                                      "exception.message": "boom"}),
        _span("b4", "b1", "p2", tags={"span.kind": "consumer", "otel.status_code": "OK"}),
        _span("b5", "b3", tags={"span.kind": "server", "error": "false"}),
        _span("b6", "b5", "p2")),
}


def test_the_edge_cases_reach_every_rule():
    rows = _labkit_rows(EDGE_CASES["components and errors"])
    assert {r[5] for r in rows} == {"database", "queue", "api", "other-service"}
    assert [r[6] for r in rows] == [True, True, False, False, False, False]
    assert {r[7] for r in rows} == {"", "broker down", "boom"}
    cut = _labkit_rows(EDGE_CASES["cycle and self-reference"])
    assert {w for r in cut for w in r[4]} == {"reference cycle cut here",
                                              "references itself as its parent"}
    assert [r[3] for r in cut if r[3]] == []  # another trace's parent is a link, not missing


def _labkit_rows(trace: dict) -> list[tuple]:
    return [(span.key, span.parent.key if span.parent else None, depth, span.missing_parent,
             span.warnings, waterfall.component(span), span.error, span.error_message)
            for depth, span in build_tree(trace).walk()]


@pytest.mark.parametrize("case", ["jaeger's own", *EDGE_CASES])
def test_the_page_and_labkit_build_the_same_tree_by_the_same_rules(case, jaeger_trace):
    trace = jaeger_trace if case == "jaeger's own" else EDGE_CASES[case]
    model = run_js("buildTrace", trace)
    assert [(r["key"], r["parentKey"], r["depth"], r["missingParent"], r["warnings"],
             r["component"], r["error"], r["errorMessage"]) for r in model["rows"]] == (
        _labkit_rows(trace))
    assert len(model["rows"]) == len(trace["spans"]), "no span is dropped"


def test_a_duplicate_span_id_and_a_reference_to_another_trace(jaeger_trace):
    rows = {r["key"]: r for r in run_js("buildTrace", jaeger_trace)["rows"]}
    duplicate = rows["0000000000000002#2"]
    assert duplicate["spanId"] == "0000000000000002"
    assert any("duplicate span id" in w for w in duplicate["warnings"])
    # Its first CHILD_OF names a span of another trace: the parent is the same-trace one.
    assert rows["0000000000000004"]["parentKey"] == "0000000000000002"
    assert rows["0000000000000004"]["warnings"] == ["some span warning"]


def test_tags_keep_their_types_and_error_is_read(jaeger_trace):
    rows = run_js("buildTrace", jaeger_trace)["rows"]
    tagged = next(r for r in rows if dict(r["attributes"]).get("peer.service") == "service-y")
    attributes = dict(tagged["attributes"])
    assert attributes["peer.ipv4"] == 23456 and attributes["temperature"] == 72.5
    assert attributes["javascript_limit"] == "9223372036854775222"  # beyond a double: kept
    assert tagged["error"] is True
    assert run_js("buildTrace", jaeger_trace)["errorCount"] == 1


def test_the_stand_ins_trace_components_and_offsets():
    trace = {
        "traceID": "ab" * 16,
        "processes": {"p1": {"serviceName": "kodekloud-record-store-api"},
                      "p2": {"serviceName": "kodekloud-record-store-worker"}},
        "spans": [
            {"spanID": "1" * 16, "operationName": "POST /checkout", "processID": "p1",
             "startTime": 1_000_000, "duration": 30_000, "references": [],
             "tags": [{"key": "span.kind", "type": "string", "value": "server"}]},
            {"spanID": "2" * 16, "operationName": "connect", "processID": "p1",
             "startTime": 1_002_000, "duration": 2_000,
             "references": [{"refType": "CHILD_OF", "traceID": "ab" * 16, "spanID": "1" * 16}],
             "tags": [{"key": "db.system.name", "type": "string", "value": "postgresql"},
                      {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                      {"key": "otel.status_description", "type": "string",
                       "value": "connection refused"}]},
            {"spanID": "3" * 16, "operationName": "send_email", "processID": "p2",
             "startTime": 1_500_000, "duration": 100_000,
             "references": [{"refType": "CHILD_OF", "traceID": "ab" * 16, "spanID": "9" * 16}],
             "tags": []},
        ],
    }
    model = run_js("buildTrace", trace)
    rows = {r["operation"]: r for r in model["rows"]}
    assert rows["connect"]["component"] == "database" and rows["connect"]["error"]
    assert rows["connect"]["errorMessage"] == "connection refused"
    assert rows["connect"]["offsetUs"] == 2_000 and rows["connect"]["depth"] == 1
    assert rows["send_email"]["missingParent"] == "9" * 16  # still arriving: a root for now
    assert rows["send_email"]["component"] == "worker"
    assert model["services"] == ["api", "worker"] and model["durationUs"] == 600_000


def test_the_slowest_exemplar_names_a_trace():
    answer = {"status": "success", "data": [
        {"seriesLabels": {"le": "0.1"}, "exemplars": [
            {"labels": {"trace_id": "a" * 32}, "value": "0.08", "timestamp": 1.5},
            {"labels": {}, "value": "9.0", "timestamp": 2.0}]},
        {"seriesLabels": {"le": "1"}, "exemplars": [
            {"labels": {"trace_id": "b" * 32}, "value": "0.61", "timestamp": 3.25}]}]}
    assert run_js("slowestExemplar", answer) == {"traceId": "b" * 32, "seconds": 0.61, "at": 3.25}
    assert run_js("slowestExemplar", {"status": "success", "data": []}) is None
    # The same choice as the exercises' checks make.
    flat = [e for series in answer["data"] for e in series["exemplars"]]
    assert slowest_exemplar(flat)["labels"]["trace_id"] == "b" * 32
