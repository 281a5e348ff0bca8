"""Storage, and Jaeger's JSON model out: the spans decoded by otlp.py, indexed by trace, service
and operation, found by Jaeger's query parameters."""

import base64
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tracestore.otlp import Process, Received, Span, Tag


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
