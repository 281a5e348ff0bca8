"""The order page's trace model (nginx/html/assets/trace-view.js), run in Node on a real Jaeger
API answer (Jaeger's own fixture, tests/fixtures/jaeger_ui_trace_01.json) and on the trace
stand-in's: the same tree as scripts/labkit/jaeger.py builds, by the same rules."""

import json
import shutil
import subprocess

import pytest

from labctl.config import ROOT
from scripts.labkit.jaeger import build_tree
from scripts.labkit.prometheus import slowest_exemplar

MODULE = ROOT / "nginx" / "html" / "assets" / "trace-view.js"
FIXTURE = ROOT / "tests" / "fixtures" / "jaeger_ui_trace_01.json"


def run_js(function: str, argument) -> dict:
    node = shutil.which("node")
    if not node:
        pytest.fail("node is needed: ./lab test installs Debian's npm (and node with it)")
    script = (f"import {{ {function} }} from {json.dumps(MODULE.as_uri())};\n"
              "let input = '';\n"
              "process.stdin.on('data', (c) => { input += c; });\n"
              f"process.stdin.on('end', () => console.log(JSON.stringify({function}("
              "JSON.parse(input)))));\n")
    r = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(argument),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def jaeger_trace() -> dict:
    return json.loads(FIXTURE.read_text())


def test_jaegers_own_trace_gives_labkits_tree(jaeger_trace):
    model = run_js("buildTrace", jaeger_trace)
    tree = build_tree(jaeger_trace)
    expected = [(span.key, span.parent.key if span.parent else None, depth)
                for depth, span in tree.walk()]
    assert [(r["key"], r["parentKey"], r["depth"]) for r in model["rows"]] == expected
    assert len(model["rows"]) == len(jaeger_trace["spans"]), "no span is dropped"


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
