"""OTLP/HTTP in: an export body decoded into spans, each kept as it arrived and converted to
Jaeger's model (store.py) on its first read."""

import base64
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
# What Jaeger names a process whose resource has no service.name.
NO_SERVICE = "OTLPResourceNoServiceName"

Tag = tuple[str, str, Any]  # (key, Jaeger value type, JSON-ready value)

_KINDS = {
    OtlpSpan.SPAN_KIND_INTERNAL: "internal",
    OtlpSpan.SPAN_KIND_SERVER: "server",
    OtlpSpan.SPAN_KIND_CLIENT: "client",
    OtlpSpan.SPAN_KIND_PRODUCER: "producer",
    OtlpSpan.SPAN_KIND_CONSUMER: "consumer",
}
_STATUS_CODES = {Status.STATUS_CODE_OK: "OK", Status.STATUS_CODE_ERROR: "ERROR"}
_SCALAR_TYPES = {
    "string_value": "string",
    "bool_value": "bool",
    "int_value": "int64",
    "double_value": "float64",
    "bytes_value": "binary",
}
_ID_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


@dataclass(frozen=True, slots=True)
class Process:
    service: str
    tags: tuple[Tag, ...]


@dataclass(frozen=True, slots=True)
class Span:
    span_id: str
    operation: str
    references: tuple[tuple[str, str, str], ...]  # (refType, traceID, spanID)
    start_us: int
    duration_us: int
    tags: tuple[Tag, ...]
    logs: tuple[tuple[int, tuple[Tag, ...]], ...]  # (timestamp in µs, fields)
    process: Process


@dataclass(slots=True)
class Received:
    """A span as it arrived: the protobuf message, converted to Jaeger's model on first read.
    Ingest does only what the index needs (ids, service, operation, start), so that what the
    lab's processes export costs the stand-in little CPU."""

    span_id: str
    operation: str
    start_us: int
    raw: OtlpSpan
    process: Process
    scope_tags: tuple[Tag, ...]
    size: int = 0  # its bytes as sent: what the store's byte cap counts
    _converted: Span | None = None

    @property
    def span(self) -> Span:
        if self._converted is None:
            self._converted = _span(self.raw, self.process, self.scope_tags)
            self.raw = None  # the converted span replaces it
        return self._converted


def decode_spans(body: bytes, content_type: str) -> list[tuple[str, Received]]:
    """Parse an OTLP/HTTP export body into (trace id, span) pairs; ValueError if it is malformed."""
    request = ExportTraceServiceRequest()
    try:
        if content_type == JSON:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise ValueError("expected a JSON object")
            _hex_ids_to_base64(document)
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
        else:
            request.ParseFromString(body)
    except (DecodeError, json_format.ParseError, RecursionError) as exc:
        raise ValueError(str(exc)) from exc
    spans = []
    for resource_spans in request.resource_spans:
        process = _process(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope_tags = tuple(_scope_tags(scope_spans.scope))
            spans.extend(_received(span, process, scope_tags) for span in scope_spans.spans)
    return spans


def _received(span: OtlpSpan, process: Process, scope_tags: tuple[Tag, ...]
              ) -> tuple[str, Received]:
    trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
    if (len(trace_id) != 16 or not any(trace_id) or len(span_id) != 8
            or len(parent_id) not in (0, 8)):
        raise ValueError("a span needs a 16-byte trace id and 8-byte span ids")
    return trace_id.hex(), Received(span_id.hex(), span.name, span.start_time_unix_nano // 1000,
                                    span, process, scope_tags, span.ByteSize())


def _hex_ids_to_base64(node: Any) -> None:
    # OTLP/JSON carries ids as hex, protobuf's JSON mapping expects base64.
    if isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = base64.b64encode(bytes.fromhex(value)).decode()
            else:
                _hex_ids_to_base64(value)


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _plain(item.value) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind) if kind else ""


def _tag(attribute: KeyValue) -> Tag:
    key = sys.intern(attribute.key)  # the same few keys repeat on every span
    kind = attribute.value.WhichOneof("value")
    if kind in _SCALAR_TYPES:
        return key, _SCALAR_TYPES[kind], _plain(attribute.value)
    if kind is None:
        return key, "string", ""
    return key, "string", json.dumps(_plain(attribute.value), separators=(",", ":"))


def _sorted(tags: Iterable[Tag]) -> tuple[Tag, ...]:
    # Jaeger's query adjusters sort tags by key.
    return tuple(sorted(tags, key=lambda tag: tag[0]))


def _process(attributes: Iterable[KeyValue]) -> Process:
    service, tags = NO_SERVICE, []
    for attribute in attributes:
        if attribute.key == "service.name":
            service = attribute.value.string_value or NO_SERVICE
        else:
            tags.append(_tag(attribute))
    return Process(service, _sorted(tags))


def _scope_tags(scope: InstrumentationScope) -> list[Tag]:
    tags = []
    if scope.name:
        tags.append(("otel.scope.name", "string", scope.name))
    if scope.version:
        tags.append(("otel.scope.version", "string", scope.version))
    return tags


def _span(span: OtlpSpan, process: Process, scope_tags: tuple[Tag, ...]) -> Span:
    trace_id = span.trace_id.hex()
    references = []
    if any(span.parent_span_id):
        references.append(("CHILD_OF", trace_id, span.parent_span_id.hex()))
    references.extend(
        ("FOLLOWS_FROM", link.trace_id.hex(), link.span_id.hex()) for link in span.links
    )
    tags = [_tag(attribute) for attribute in span.attributes]
    if span.kind in _KINDS:
        tags.append(("span.kind", "string", _KINDS[span.kind]))
    if span.status.code in _STATUS_CODES:
        tags.append(("otel.status_code", "string", _STATUS_CODES[span.status.code]))
    if span.status.code == Status.STATUS_CODE_ERROR:
        tags.append(("error", "bool", True))
    if span.status.message:
        tags.append(("otel.status_description", "string", span.status.message))
    tags.extend(scope_tags)
    logs = tuple((event.time_unix_nano // 1000, _log_fields(event)) for event in span.events)
    duration_ns = max(0, span.end_time_unix_nano - span.start_time_unix_nano)
    converted = Span(
        span_id=span.span_id.hex(),
        operation=span.name,
        references=tuple(references),
        start_us=span.start_time_unix_nano // 1000,
        duration_us=duration_ns // 1000,
        tags=_sorted(tags),
        logs=logs,
        process=process,
    )
    return converted


def _log_fields(event: OtlpSpan.Event) -> tuple[Tag, ...]:
    fields = [_tag(attribute) for attribute in event.attributes]
    if event.name and all(attribute.key != "event" for attribute in event.attributes):
        fields.append(("event", "string", event.name))
    # Jaeger's adjusters put the event name first and sort the other fields.
    return tuple(sorted(fields, key=lambda tag: (tag[0] != "event", tag[0])))
