"""Storage and conversion: OTLP spans in, Jaeger's JSON model out."""

import base64
import json
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class Query:
    service: str
    operation: str  # "" matches every operation
    tags: dict[str, str]
    start_us: int
    end_us: int
    min_duration_us: int
    max_duration_us: int | None  # None: no upper bound
    limit: int  # <= 0: no limit


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


def _as_string(value_type: str, value: Any) -> str:
    # The renderings Jaeger compares search tags against (model.KeyValue.AsString).
    if value_type == "bool":
        return "true" if value else "false"
    if value_type == "float64":
        return format(value, ".10g")
    if value_type == "binary":
        return base64.b64decode(value).hex()
    return str(value)


def _has_tag(span: Span, key: str, value: str) -> bool:
    return any(
        tag_key == key and _as_string(tag_type, tag_value) == value
        for tag_key, tag_type, tag_value in (*span.tags, *span.process.tags)
    )


def _matches(span: Span, query: Query) -> bool:
    return (
        span.process.service == query.service
        and (not query.operation or span.operation == query.operation)
        and query.start_us <= span.start_us <= query.end_us
        and span.duration_us >= query.min_duration_us
        and (query.max_duration_us is None or span.duration_us <= query.max_duration_us)
        and all(_has_tag(span, key, value) for key, value in query.tags.items())
    )


def _tags_json(tags: Iterable[Tag]) -> list[dict[str, Any]]:
    return [{"key": key, "type": value_type, "value": value} for key, value_type, value in tags]


def _trace_json(trace_id: str, spans: Iterable[Span]) -> dict[str, Any]:
    process_ids: dict[Process, str] = {}
    spans_json = []
    for span in spans:
        process_id = process_ids.setdefault(span.process, f"p{len(process_ids) + 1}")
        spans_json.append(
            {
                "traceID": trace_id,
                "spanID": span.span_id,
                "flags": 1,
                "operationName": span.operation,
                "references": [
                    {"refType": ref_type, "traceID": ref_trace, "spanID": ref_span}
                    for ref_type, ref_trace, ref_span in span.references
                ],
                "startTime": span.start_us,
                "duration": span.duration_us,
                "tags": _tags_json(span.tags),
                "logs": [
                    {"timestamp": timestamp, "fields": _tags_json(fields)}
                    for timestamp, fields in span.logs
                ],
                "processID": process_id,
                "warnings": None,
            }
        )
    processes = {
        process_id: {"serviceName": process.service, "tags": _tags_json(process.tags)}
        for process, process_id in process_ids.items()
    }
    return {"traceID": trace_id, "spans": spans_json, "processes": processes, "warnings": None}


@dataclass(slots=True)
class _Trace:
    spans: dict[str, Received] = field(default_factory=dict)
    keys: frozenset[tuple[str, str]] = frozenset()  # (service, operation) pairs in the index
    start_us: int | None = None  # earliest span start: searches list newest first
    size: int = 0  # bytes of its spans as sent


class TraceStore:
    """In memory and thread-safe, bounded three ways: beyond max_traces, or max_bytes of spans
    (as sent) in all, the least recently written traces go; a trace keeps its first
    max_spans_per_trace spans and refuses more (a span sent again still replaces itself)."""

    def __init__(self, max_traces: int, max_spans_per_trace: int = 2000,
                 max_bytes: int = 128 * 1024 * 1024) -> None:
        if min(max_traces, max_spans_per_trace, max_bytes) < 1:
            raise ValueError("every limit must be at least 1")
        self._max_traces = max_traces
        self._max_spans = max_spans_per_trace
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self._index: dict[str, dict[str, set[str]]] = {}  # service -> operation -> trace ids

    def add(self, spans: Iterable[tuple[str, Received]]) -> tuple[int, str]:
        """Store the spans: (how many were refused, why; 0 and "" when none was)."""
        by_trace: dict[str, list[Received]] = {}
        for trace_id, span in spans:
            by_trace.setdefault(trace_id, []).append(span)
        refused, why = 0, ""
        with self._lock:
            for trace_id, batch in by_trace.items():
                trace = self._traces.setdefault(trace_id, _Trace())
                self._traces.move_to_end(trace_id)
                new_spans = self._admitted(trace, batch)
                if len(new_spans) < len(batch):
                    refused += len(batch) - len(new_spans)
                    why = (f"trace {trace_id} holds {self._max_spans} spans, the most this "
                           "stand-in keeps of one trace")
                if not new_spans:
                    continue
                replaced = any(span.span_id in trace.spans for span in new_spans)
                for span in new_spans:
                    old = trace.spans.get(span.span_id)
                    change = span.size - (old.size if old is not None else 0)
                    trace.size += change
                    self._bytes += change
                trace.spans.update((span.span_id, span) for span in new_spans)
                # Only what this batch adds, unless it replaced a span (a re-sent export).
                fresh = trace.spans.values() if replaced else new_spans
                starts = [span.start_us for span in fresh]
                if trace.start_us is not None and not replaced:
                    starts.append(trace.start_us)
                trace.start_us = min(starts)
                keys = {(span.process.service, span.operation) for span in fresh}
                self._reindex(trace_id, trace, frozenset(keys if replaced else keys | trace.keys))
            while self._traces and (len(self._traces) > self._max_traces
                                    or self._bytes > self._max_bytes):
                trace_id, trace = self._traces.popitem(last=False)
                self._bytes -= trace.size
                self._reindex(trace_id, trace, frozenset())
        return refused, why

    def _admitted(self, trace: _Trace, batch: list[Received]) -> list[Received]:
        """The spans of the batch the trace has room for; one it holds already replaces itself."""
        room = self._max_spans - len(trace.spans)
        admitted = []
        for span in batch:
            if span.span_id in trace.spans:
                admitted.append(span)
            elif room > 0:
                admitted.append(span)
                room -= 1
        return admitted

    def _reindex(self, trace_id: str, trace: _Trace, keys: frozenset[tuple[str, str]]) -> None:
        for service, operation in trace.keys - keys:
            operations = self._index[service]
            operations[operation].discard(trace_id)
            if not operations[operation]:
                del operations[operation]
            if not operations:
                del self._index[service]
        for service, operation in keys - trace.keys:
            self._index.setdefault(service, {}).setdefault(operation, set()).add(trace_id)
        trace.keys = keys

    def services(self) -> list[str]:
        with self._lock:
            return sorted(self._index)

    def operations(self, service: str) -> list[str]:
        with self._lock:
            return sorted(self._index.get(service, ()))

    def get(self, trace_id: str) -> dict[str, Any] | None:
        """One trace in Jaeger's JSON model, by lowercase 32-char hex id."""
        with self._lock:
            trace = self._traces.get(trace_id)
            spans = None if trace is None else [r.span for r in trace.spans.values()]
        return None if spans is None else _trace_json(trace_id, spans)

    def find(self, query: Query) -> list[dict[str, Any]]:
        """Traces with at least one span matching the query, newest first."""
        with self._lock:
            operations = self._index.get(query.service, {})
            if query.operation:
                candidates = operations.get(query.operation, set())
            else:
                candidates = set().union(*operations.values())
            hits = []
            for trace_id in candidates:
                trace = self._traces[trace_id]
                if any(_matches(r.span, query) for r in trace.spans.values()):
                    hits.append((trace.start_us, trace_id))
            hits.sort(reverse=True)
            if query.limit > 0:
                hits = hits[: query.limit]
            found = [(tid, [r.span for r in self._traces[tid].spans.values()]) for _, tid in hits]
        return [_trace_json(trace_id, spans) for trace_id, spans in found]
