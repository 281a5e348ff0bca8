"""labkit builds the same span tree from real Jaeger output (Jaeger's own fixture, with a
duplicate span id and a cross-trace reference) and from the trace stand-in's answer for a
lab-shaped trace exported by the real OpenTelemetry SDK."""

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from labctl.config import ROOT
from labkit import jaeger, waterfall
from tracestore.server import Running, serve

FIXTURE = ROOT / "tests" / "fixtures" / "jaeger_ui_trace_01.json"
API, WORKER = "kodekloud-record-store-api", "kodekloud-record-store-worker"
CID = "tree-test-cid-1"
MS = 1_000_000  # nanoseconds


def assert_well_formed(tree: jaeger.SpanTree, raw: dict[str, Any]) -> None:
    """The invariants any tree must keep, whatever the source."""
    assert len(tree.spans) == len(raw["spans"]), "no span may be lost"
    walked = [span.key for _, span in tree.walk()]
    assert sorted(walked) == sorted(s.key for s in tree.spans), "each span exactly once"
    assert len(set(walked)) == len(walked), "keys are unique"
    for span in tree.spans:
        if span.parent is None:
            assert span in tree.roots
            continue
        ref = next(r for r in span.references if r.ref_type == "CHILD_OF"
                   and r.trace_id.zfill(32) == tree.trace_id.zfill(32))
        assert span.parent.span_id == ref.span_id
        assert span in span.parent.children
        assert ref not in span.links
    for depth, span in tree.walk():
        assert depth == (0 if span.parent is None else 1 + _depth(span.parent))


def _depth(span: jaeger.Span) -> int:
    return 0 if span.parent is None else 1 + _depth(span.parent)


# ---------------------------------------------------------------- Jaeger's own fixture


@pytest.fixture(scope="module")
def jaeger_fixture() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def test_the_jaeger_fixture_builds_a_well_formed_tree(jaeger_fixture):
    tree = jaeger.build_tree(jaeger_fixture)
    assert_well_formed(tree, jaeger_fixture)
    assert tree.trace_id == "00000000000000000000000000000001"
    assert tree.services == {"service-x", "service-y"}
    assert tree.warnings == ["some trace warning"]
    assert tree.orphans == []


def test_a_duplicate_span_id_keeps_both_spans_and_the_first_takes_the_children(jaeger_fixture):
    tree = jaeger.build_tree(jaeger_fixture)
    twins = [s for s in tree.spans if s.span_id == "0000000000000002"]
    assert [s.key for s in twins] == ["0000000000000002", "0000000000000002#2"]
    first, second = twins
    assert (first.operation, second.operation) == ("test-general-conversion", "some-operation")
    assert [c.span_id for c in first.children] == ["0000000000000003", "0000000000000004"]
    assert second.children == []
    assert any("duplicate span id" in w for w in second.warnings)
    assert tree.roots == [first, second]


def test_a_reference_to_another_trace_is_a_link_never_the_parent(jaeger_fixture):
    tree = jaeger.build_tree(jaeger_fixture)
    [span] = tree.find("reference-test")
    assert span.parent is not None and span.parent.span_id == "0000000000000002"
    assert span.missing_parent is None
    assert {(r.ref_type, r.trace_id[-2:]) for r in span.links} == {
        ("CHILD_OF", "ff"), ("FOLLOWS_FROM", "01")}
    [grandchild] = tree.find("preserveParentID-test")
    assert grandchild.parent is span


def test_typed_tags_are_decoded(jaeger_fixture):
    tree = jaeger.build_tree(jaeger_fixture)
    tagged = tree.spans[1]
    assert tagged.tags["javascript_limit"] == 9223372036854775222  # int64 sent as a string
    assert tagged.tags["peer.ipv4"] == 23456
    assert tagged.tags["blob"] == b"\x00\x0009"
    assert tagged.error and not tree.spans[0].error


def test_the_waterfall_shows_every_span_the_error_and_the_links(jaeger_fixture):
    tree = jaeger.build_tree(jaeger_fixture)
    lines = waterfall.render(tree)
    assert len(lines) == 1 + len(tree.spans)
    assert "`-preserveParentID-test" in lines[4]  # depth 2: nested under reference-test
    assert "ERROR" in lines[5] and "duplicate span id" in lines[5]
    assert "links to trace 000000000000000000000000000000ff" in lines[3]


# ---------------------------------------------------------------- edge cases of real data


def _span(span_id: str, parent: str | None = None, start: int = 0) -> dict[str, Any]:
    refs = [{"refType": "CHILD_OF", "traceID": "ab", "spanID": parent}] if parent else []
    return {"traceID": "ab", "spanID": span_id, "operationName": f"op-{span_id}",
            "references": refs, "startTime": start, "duration": 10, "tags": [],
            "processID": "p1"}


def test_a_parent_not_yet_arrived_makes_an_orphan_root():
    raw = {"traceID": "ab", "spans": [_span("c", parent="missing", start=5), _span("r")],
           "processes": {"p1": {"serviceName": "svc"}}}
    tree = jaeger.build_tree(raw)
    assert_well_formed(tree, raw)
    assert [s.key for s in tree.roots] == ["r", "c"]
    assert [s.missing_parent for s in tree.orphans] == ["missing"]


def test_a_reference_cycle_is_cut_not_followed():
    raw = {"traceID": "ab", "spans": [_span("a", parent="b"), _span("b", parent="a")],
           "processes": {"p1": {"serviceName": "svc"}}}
    tree = jaeger.build_tree(raw)
    assert_well_formed(tree, raw)
    assert len(tree.roots) == 1 and tree.warnings


# ---------------------------------------------------------------- the stand-in's answer


@pytest.fixture(scope="module")
def standin() -> Iterator[Running]:
    server = serve("127.0.0.1", 0, 0, max_traces=100)
    yield server
    server.close()


def _tracer(service: str, port: int) -> tuple[TracerProvider, trace.Tracer]:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # stored before end() returns
    return provider, provider.get_tracer("tests.journey")


@pytest.fixture(scope="module")
def lab_trace(standin: Running) -> str:
    """A purchase shaped like the lab's, with explicit times: the API answers in 60 ms, the
    worker's payment fails after 2.4 s, its email takes 2 s, a relay links to another trace."""
    api_provider, api = _tracer(API, standin.otlp_port)
    worker_provider, worker = _tracer(WORKER, standin.otlp_port)
    # The whole purchase (4.7 s) in the past: a search ending "now" must find its worker spans
    # even when it runs within milliseconds of the export.
    t0 = time.time_ns() - 10_000 * MS
    other = SpanContext(0xFF, 0xEE, is_remote=True, trace_flags=TraceFlags(1))

    def span(tracer, name, parent, start_ms, end_ms, kind=SpanKind.INTERNAL, **attrs):
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        s = tracer.start_span(name, context=ctx, kind=kind, start_time=t0 + start_ms * MS,
                              attributes={jaeger.CORRELATION_ID: CID, **attrs})
        return s, end_ms

    def end(pair):
        s, end_ms = pair
        s.end(end_time=t0 + end_ms * MS)
        return s

    root = span(api, "POST /checkout", None, 0, 60, SpanKind.SERVER)
    checkout = span(api, "checkout_order", root[0], 2, 55)
    end(span(api, "SELECT recordstore", checkout[0], 4, 6, SpanKind.CLIENT,
             **{"db.system.name": "postgresql", "db.query.text": "SELECT id FROM products"}))
    publish = end(span(api, "apply_async/process_order", checkout[0], 20, 21, SpanKind.PRODUCER))
    end(checkout)
    end(root)
    consumer = span(worker, "run/process_order", publish, 30, 4700, SpanKind.CONSUMER)
    process = span(worker, "process_order", consumer[0], 31, 4690)
    payment = span(worker, "authorize_payment", process[0], 40, 2440)
    payment[0].set_status(Status(StatusCode.ERROR, "card declined"))
    end(payment)
    end(span(worker, "send_email", process[0], 2450, 4450))
    relay = worker.start_span("outbox_relay", context=trace.set_span_in_context(process[0]),
                              start_time=t0 + 4460 * MS, links=[Link(other)])
    relay.end(end_time=t0 + 4470 * MS)
    end(process)
    end(consumer)
    api_provider.shutdown()
    worker_provider.shutdown()
    return format(root[0].get_span_context().trace_id, "032x")


def test_the_standin_answer_builds_the_lab_tree(standin, lab_trace):
    query = jaeger.JaegerQuery(f"http://127.0.0.1:{standin.query_port}")
    raw = query.trace(lab_trace)
    tree = jaeger.build_tree(raw)
    assert_well_formed(tree, raw)
    assert tree.services == {API, WORKER}
    [root] = tree.roots
    assert (root.operation, root.service, root.kind) == ("POST /checkout", API, "server")
    chain = [span.operation for _, span in tree.walk()]
    assert chain.index("apply_async/process_order") < chain.index("run/process_order")
    [consumer] = tree.find("run/process_order", WORKER)
    assert consumer.parent.operation == "apply_async/process_order"
    assert consumer.parent.service == API  # the worker hangs beneath the API's publish
    [payment] = tree.find("authorize_payment")
    assert payment.error and payment.error_message == "card declined"
    [relay] = tree.find("outbox_relay")
    assert relay.parent.operation == "process_order"
    assert [r.trace_id for r in relay.links] == [format(0xFF, "032x")]
    assert {waterfall.component(s) for s in tree.spans} == {"api", "worker", "database", "queue"}


def test_the_breakdown_separates_user_facing_from_end_to_end(standin, lab_trace):
    tree = jaeger.build_tree(jaeger.JaegerQuery(f"http://127.0.0.1:{standin.query_port}")
                             .trace(lab_trace))
    b = waterfall.breakdown(tree, ["authorize_payment", "send_email"])
    assert b.user_facing_us == 60_000
    assert b.end_to_end_us == 4_700_000
    assert b.steps == [("queue wait before process_order", 9_000),
                       ("authorize_payment", 2_400_000), ("send_email", 2_000_000)]
    text = "\n".join(waterfall.render(tree))
    assert "SELECT recordstore (products)" in text and "ERROR: card declined" in text


def test_search_by_correlation_id_and_waiting_for_a_complete_tree(standin, lab_trace):
    query = jaeger.JaegerQuery(f"http://127.0.0.1:{standin.query_port}")
    found = query.find_traces(WORKER, {jaeger.CORRELATION_ID: CID})
    assert [t["traceID"] for t in found] == [lab_trace]
    assert query.find_traces(WORKER, {jaeger.CORRELATION_ID: "nobody"}) == []
    tree, ready = query.wait_for_tree(lab_trace, lambda t: bool(t.find("send_email")), 5)
    assert ready and tree is not None
    tree, ready = query.wait_for_tree(lab_trace, lambda t: False, 0.3, interval_s=0.1)
    assert not ready and tree is not None
    assert query.trace("0" * 31 + "9") is None


def test_urls_for_the_ui_and_the_query_api():
    assert jaeger.trace_url("http://j:16686/", "abc") == "http://j:16686/trace/abc"
    assert jaeger.search_url("http://j:16686", API, {jaeger.CORRELATION_ID: "abc-123-def"}) == (
        "http://j:16686/search?service=kodekloud-record-store-api"
        "&tags=%7B%22recordstore.correlation_id%22%3A%22abc-123-def%22%7D")
    assert jaeger.search_api_url("http://j:16686", API, {jaeger.CORRELATION_ID: "x"}).startswith(
        "http://j:16686/api/traces?service=")
