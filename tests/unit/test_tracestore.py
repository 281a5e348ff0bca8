"""The trace stand-in, end to end: the real OpenTelemetry SDK in, Jaeger's query API out."""

import gzip
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from labkit import http as labkit_http
from tracestore.server import Running, serve

REPO_ROOT = Path(__file__).resolve().parents[2]
CORRELATION_ID = "c0ffee-purchase-1"
JSON = "application/json"
PROTOBUF = "application/x-protobuf"


@pytest.fixture
def running() -> Iterator[Running]:
    server = serve("127.0.0.1", 0, 0, max_traces=100)
    yield server
    server.close()


def _provider(service: str, port: int, **exporter_options: Any) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=10, **exporter_options
    )
    # Simple (not batch) export: each span is stored before end() returns, so no waiting.
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _get(port: int, path: str, **params: str) -> tuple[int, Any]:
    query = f"?{urlencode(params)}" if params else ""
    resp = labkit_http.get(f"http://127.0.0.1:{port}{path}{query}")
    return resp.status, resp.json()


def _post(
    port: int, body: bytes, content_type: str, encoding: str | None = None
) -> tuple[int, str, bytes]:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/traces", data=body, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers.get_content_type(), error.read()


def _otlp_json(trace_id: str, span_id: str, name: str, service: str = "json-svc") -> bytes:
    now = time.time_ns()
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": "",
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": now + 2_500_000,
        "attributes": [
            {"key": "http.status_code", "value": {"intValue": "503"}},
            {"key": "retry", "value": {"boolValue": True}},
            {"key": "ratio", "value": {"doubleValue": 0.25}},
            {"key": "hosts", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
        ],
        "status": {"code": "STATUS_CODE_OK"},
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    scope_spans = [{"scope": {"name": "hand-built"}, "spans": [span]}]
    document = {"resourceSpans": [{"resource": resource, "scopeSpans": scope_spans}]}
    return json.dumps(document).encode()


def _tags(tags: list[dict[str, Any]]) -> dict[str, tuple[str, Any]]:
    return {tag["key"]: (tag["type"], tag["value"]) for tag in tags}


def _trace_ids(body: dict[str, Any]) -> list[str]:
    return [found["traceID"] for found in body["data"]]


def test_health_on_both_ports(running: Running) -> None:
    for port in (running.otlp_port, running.query_port):
        for path in ("/", "/health"):
            assert _get(port, path) == (200, {"status": "ok"})


def test_two_services_export_one_trace_from_the_sdk(running: Running) -> None:
    api = _provider("checkout-api", running.otlp_port)
    worker = _provider("order-worker", running.otlp_port)
    api_tracer = api.get_tracer("tests.api", "1.2.3")
    with api_tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("correlation_id", CORRELATION_ID)
        parent.add_event("order.accepted", {"order.id": 42})
        with api_tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT) as child:
            try:
                raise RuntimeError("card declined")
            except RuntimeError as exc:
                child.record_exception(exc)
                child.set_status(Status(StatusCode.ERROR, "card declined"))
        # The worker exports separately, as the real worker does seconds later.
        worker.get_tracer("tests.worker").start_span(
            "process order", context=trace.set_span_in_context(parent), kind=SpanKind.CONSUMER
        ).end()
    api.shutdown()
    worker.shutdown()
    trace_id = format(parent.get_span_context().trace_id, "032x")
    parent_id = format(parent.get_span_context().span_id, "016x")
    port = running.query_port

    assert _get(port, "/api/services") == (
        200,
        {
            "data": ["checkout-api", "order-worker"],
            "total": 2,
            "limit": 0,
            "offset": 0,
            "errors": None,
        },
    )
    status, body = _get(port, "/api/services/checkout-api/operations")
    assert (status, body["data"]) == (200, ["POST /orders", "charge card"])

    status, body = _get(port, f"/api/traces/{trace_id.upper()}")
    assert status == 200
    assert body["errors"] is None
    [found] = body["data"]
    assert found["traceID"] == trace_id
    assert found["warnings"] is None
    spans = {span["operationName"]: span for span in found["spans"]}
    assert set(spans) == {"POST /orders", "charge card", "process order"}
    services = {pid: process["serviceName"] for pid, process in found["processes"].items()}
    assert sorted(services) == ["p1", "p2"]
    assert sorted(services.values()) == ["checkout-api", "order-worker"]
    api_process = found["processes"][spans["POST /orders"]["processID"]]
    assert {"key": "telemetry.sdk.language", "type": "string", "value": "python"} in api_process[
        "tags"
    ]
    assert services[spans["process order"]["processID"]] == "order-worker"
    for span in spans.values():
        assert span["traceID"] == trace_id
        assert len(span["spanID"]) == 16
        assert isinstance(span["startTime"], int)
        assert isinstance(span["duration"], int)
        assert (span["flags"], span["warnings"]) == (1, None)

    root = spans["POST /orders"]
    assert root["spanID"] == parent_id
    assert root["references"] == []
    child_of_root = [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent_id}]
    assert spans["charge card"]["references"] == child_of_root
    assert spans["process order"]["references"] == child_of_root

    root_tags = _tags(root["tags"])
    assert root_tags["correlation_id"] == ("string", CORRELATION_ID)
    assert root_tags["span.kind"] == ("string", "server")
    assert root_tags["otel.scope.name"] == ("string", "tests.api")
    assert root_tags["otel.scope.version"] == ("string", "1.2.3")
    assert "error" not in root_tags
    assert "otel.status_code" not in root_tags
    [accepted] = root["logs"]
    assert accepted["fields"] == [
        {"key": "event", "type": "string", "value": "order.accepted"},
        {"key": "order.id", "type": "int64", "value": 42},
    ]

    failed_tags = _tags(spans["charge card"]["tags"])
    assert failed_tags["error"] == ("bool", True)
    assert failed_tags["span.kind"] == ("string", "client")
    assert failed_tags["otel.status_code"] == ("string", "ERROR")
    assert failed_tags["otel.status_description"] == ("string", "card declined")
    [exception] = spans["charge card"]["logs"]
    assert isinstance(exception["timestamp"], int)
    fields = _tags(exception["fields"])
    assert fields["event"] == ("string", "exception")
    assert fields["exception.type"] == ("string", "RuntimeError")
    assert fields["exception.message"] == ("string", "card declined")
    assert _tags(spans["process order"]["tags"])["span.kind"] == ("string", "consumer")

    def search(**params: str) -> list[str]:
        status, body = _get(port, "/api/traces", **params)
        assert status == 200, body
        return _trace_ids(body)

    correlation = json.dumps({"correlation_id": CORRELATION_ID})
    assert search(service="checkout-api", tags=correlation) == [trace_id]
    assert search(service="checkout-api", operation="POST /orders", tags=correlation) == [
        trace_id
    ]
    assert search(service="checkout-api", tag=f"correlation_id:{CORRELATION_ID}") == [trace_id]
    # Resource (process) tags and the derived error tag are searchable too.
    assert search(service="checkout-api", tags='{"telemetry.sdk.language": "python"}') == [
        trace_id
    ]
    assert search(service="checkout-api", tags='{"error": "true"}') == [trace_id]
    # All tags must sit on ONE span of the service.
    assert search(service="checkout-api", tags='{"correlation_id": "other"}') == []
    assert search(service="checkout-api", operation="charge card", tags=correlation) == []
    assert search(service="order-worker", tags=correlation) == []
    assert search(service="order-worker", lookback="1h", minDuration="0us") == [trace_id]
    assert search(service="checkout-api", minDuration="1h") == []
    assert search(service="checkout-api", minDuration="0.5us", maxDuration="1h") == [trace_id]
    assert search(service="checkout-api", end="1") == []


def test_search_limit_lists_newest_first(running: Running) -> None:
    provider = _provider("limit-svc", running.otlp_port)
    tracer = provider.get_tracer("tests")
    trace_ids = []
    for number in range(3):
        with tracer.start_as_current_span(f"job {number}") as span:
            trace_ids.append(format(span.get_span_context().trace_id, "032x"))
    provider.shutdown()

    status, body = _get(running.query_port, "/api/traces", service="limit-svc", limit="2")
    assert status == 200
    assert _trace_ids(body) == [trace_ids[2], trace_ids[1]]
    _, body = _get(running.query_port, "/api/traces", service="limit-svc")
    assert _trace_ids(body) == trace_ids[::-1]


def test_query_errors_have_jaegers_shape(running: Running) -> None:
    port = running.query_port
    assert _get(port, f"/api/traces/{'ab' * 16}") == (
        404,
        {
            "data": None,
            "total": 0,
            "limit": 0,
            "offset": 0,
            "errors": [{"code": 404, "msg": "trace not found"}],
        },
    )
    status, body = _get(port, "/api/traces", operation="x")
    assert status == 400
    assert body["data"] is None
    assert body["errors"] == [{"code": 400, "msg": "parameter 'service' is required"}]
    bad_params = (
        {"tags": "{not json"},
        {"tags": '{"retries": 3}'},
        {"tag": "no-colon"},
        {"limit": "many"},
        {"minDuration": "soon"},
        {"minDuration": "2s", "maxDuration": "1s"},
    )
    for bad in bad_params:
        status, body = _get(port, "/api/traces", service="s", **bad)
        assert (status, body["errors"][0]["code"]) == (400, 400), bad
    assert _get(port, "/api/traces/not-hex")[0] == 400
    assert _get(port, "/api/nothing")[0] == 404


def test_otlp_json_merges_requests_and_accepts_gzip(running: Running) -> None:
    trace_id = "00000000000000008448eb211c80319c"
    status, content_type, reply = _post(
        running.otlp_port,
        _otlp_json(trace_id.upper(), "b7ad6b7169203331", "first"),
        JSON,
    )
    assert (status, content_type, reply) == (200, JSON, b"{}")
    second = gzip.compress(_otlp_json(trace_id, "00f067aa0ba902b7", "second"))
    assert _post(running.otlp_port, second, JSON, "gzip")[0] == 200
    # The same span id again replaces the stored span.
    again = _otlp_json(trace_id, "b7ad6b7169203331", "renamed")
    assert _post(running.otlp_port, again, JSON)[0] == 200

    # Like Jaeger, an id without its leading zeros finds the trace too.
    status, body = _get(running.query_port, "/api/traces/8448EB211C80319C")
    assert status == 200
    [found] = body["data"]
    assert [span["operationName"] for span in found["spans"]] == ["renamed", "second"]
    assert list(found["processes"]) == ["p1"]
    span = found["spans"][0]
    assert span["spanID"] == "b7ad6b7169203331"
    assert span["duration"] == 2500
    tags = _tags(span["tags"])
    assert tags["http.status_code"] == ("int64", 503)
    assert tags["retry"] == ("bool", True)
    assert tags["ratio"] == ("float64", 0.25)
    assert tags["hosts"] == ("string", '["a"]')
    assert tags["otel.status_code"] == ("string", "OK")
    assert tags["otel.scope.name"] == ("string", "hand-built")
    assert "error" not in tags
    status, body = _get(running.query_port, "/api/services/json-svc/operations")
    assert body["data"] == ["renamed", "second"]
    _, body = _get(
        running.query_port, "/api/traces", service="json-svc", tag="http.status_code:503"
    )
    assert _trace_ids(body) == [trace_id]


def test_sdk_gzip_export(running: Running) -> None:
    provider = _provider("gzip-svc", running.otlp_port, compression=Compression.Gzip)
    with provider.get_tracer("tests").start_as_current_span("zipped") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    status, body = _get(running.query_port, f"/api/traces/{trace_id}")
    assert status == 200
    assert body["data"][0]["spans"][0]["operationName"] == "zipped"


def test_eviction_drops_the_least_recently_written_trace() -> None:
    server = serve("127.0.0.1", 0, 0, max_traces=2)
    try:
        ids = [f"{number:032x}" for number in (1, 2, 3)]
        for trace_id, span_id in ((ids[0], "01" * 8), (ids[1], "02" * 8), (ids[0], "03" * 8)):
            assert _post(server.otlp_port, _otlp_json(trace_id, span_id, "op"), JSON)[0] == 200
        assert _post(server.otlp_port, _otlp_json(ids[2], "04" * 8, "op"), JSON)[0] == 200
        statuses = [_get(server.query_port, f"/api/traces/{trace_id}")[0] for trace_id in ids]
        assert statuses == [200, 404, 200]
        _, body = _get(server.query_port, "/api/traces", service="json-svc")
        assert sorted(_trace_ids(body)) == [ids[0], ids[2]]
    finally:
        server.close()


def test_bad_bodies_are_rejected_and_the_server_keeps_answering(running: Running) -> None:
    port = running.otlp_port
    status, content_type, reply = _post(port, b"not a protobuf", PROTOBUF)
    assert (status, content_type) == (400, JSON)
    assert "error" in json.loads(reply)
    assert _post(port, b"{not json", JSON)[0] == 400
    assert _post(port, json.dumps({"resourceSpans": 3}).encode(), JSON)[0] == 400
    assert _post(port, b"\x1f\x8b garbage", JSON, "gzip")[0] == 400
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024 + 1))
    assert _post(port, bomb, PROTOBUF, "gzip")[0] == 413
    assert _post(port, b"{}", "text/plain")[0] == 415

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", "/v1/traces")
    connection.putheader("Content-Type", JSON)
    connection.putheader("Content-Length", str(9 * 1024 * 1024))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()

    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/logs", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as not_found:
        urllib.request.urlopen(request, timeout=10)
    assert not_found.value.code == 404
    not_found.value.close()

    assert _get(port, "/health") == (200, {"status": "ok"})
    trace_id = "1" * 32
    assert _post(port, _otlp_json(trace_id, "2" * 16, "after"), JSON)[0] == 200
    assert _get(running.query_port, f"/api/traces/{trace_id}")[0] == 200


def test_command_line_serves_until_sigterm() -> None:
    env = {**os.environ, "TRACESTORE_MAX_TRACES": "7"}
    command = [sys.executable, "-m", "tracestore", "--otlp-port", "0", "--query-port", "0"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        assert started["event"] == "tracestore.started"
        assert started["max_traces"] == 7
        assert _get(started["query_port"], "/health") == (200, {"status": "ok"})
        assert _get(started["otlp_port"], "/health") == (200, {"status": "ok"})
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert json.loads(process.stdout.readline())["event"] == "tracestore.stopped"
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()

