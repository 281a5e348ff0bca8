"""Read traces from Jaeger's HTTP query API and build their span trees.

Works the same against real Jaeger (compose) and the lab's stand-in (native), since both answer
in Jaeger's JSON model: `{"data": [trace, ...], "errors": ...}`, where a trace is
`{"traceID", "spans": [...], "processes": {id: {"serviceName", "tags"}}}` and times are
microseconds since the epoch.

The tree follows the rules Jaeger's own UI follows, which real data needs:

- a span's parent is its `CHILD_OF` reference with the *same* trace id; references to other
  traces, and `FOLLOWS_FROM` references, are kept as `links`, never as parents;
- a span id may occur twice in one trace (clock-skewed or buggy clients, Zipkin's shared
  client/server ids): the first occurrence keeps the id and receives the children, later ones
  get a key of their own (`<id>#2`) and a warning, and no span is ever dropped;
- a parent that is not (yet) in the trace makes its child a root with `missing_parent` set,
  which is also how to tell that spans are still arriving;
- reference cycles are cut rather than followed forever.
"""

import base64
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import http, rules

# Span attributes read here: OTel's stable names (OTEL_SEMCONV_STABILITY_OPT_IN), recordstore.*
HTTP_STATUS = "http.response.status_code"
DB_QUERY = "db.query.text"
CORRELATION_ID = "recordstore.correlation_id"
ORDER_ID = "recordstore.order.id"


class JaegerError(Exception):
    """The query API answered, but with an error."""


@dataclass(frozen=True)
class Reference:
    ref_type: str  # CHILD_OF (rules.PARENT_REFERENCE) or FOLLOWS_FROM
    trace_id: str
    span_id: str


@dataclass(eq=False)
class Span:
    key: str  # unique within its tree: the span id, or "<id>#<n>" for the n-th duplicate
    span_id: str
    trace_id: str
    operation: str
    service: str
    start_us: int
    duration_us: int
    tags: dict[str, Any]
    references: list[Reference]
    warnings: list[str] = field(default_factory=list)
    parent: "Span | None" = None
    children: list["Span"] = field(default_factory=list)
    links: list[Reference] = field(default_factory=list)  # references that are not the parent
    missing_parent: str | None = None  # the CHILD_OF span id this trace does not (yet) hold

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us

    @property
    def self_us(self) -> int:
        """Its own time: what none of its child spans covers."""
        return max(0, self.duration_us - sum(child.duration_us for child in self.children))

    @property
    def kind(self) -> str:
        """OpenTelemetry's span kind (server, client, producer, consumer, internal) or ""."""
        return str(self.tags.get("span.kind", ""))

    @property
    def error(self) -> bool:
        """In error by the one rule of it (rules.span_in_error)."""
        return rules.span_in_error(self.tags)

    @property
    def error_message(self) -> str:
        return rules.error_message(self.tags)


@dataclass
class SpanTree:
    trace_id: str
    spans: list[Span]  # every span, in the order the API listed them, duplicates included
    roots: list[Span]  # spans without a parent in this trace, earliest first
    warnings: list[str] = field(default_factory=list)

    @property
    def start_us(self) -> int:
        return min((s.start_us for s in self.spans), default=0)

    @property
    def end_us(self) -> int:
        return max((s.end_us for s in self.spans), default=0)

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us

    @property
    def services(self) -> set[str]:
        return {s.service for s in self.spans}

    @property
    def errors(self) -> list[Span]:
        """The spans in error (see `Span.error`)."""
        return [s for s in self.spans if s.error]

    @property
    def orphans(self) -> list[Span]:
        """Spans whose parent has not arrived: a trace still being exported has some."""
        return [s for s in self.spans if s.missing_parent]

    def walk(self) -> Iterator[tuple[int, Span]]:
        """(depth, span) for every span, depth first, siblings in start order."""
        stack = [(0, root) for root in reversed(self.roots)]
        while stack:
            depth, span = stack.pop()
            yield depth, span
            stack.extend((depth + 1, child) for child in reversed(span.children))

    def find(self, operation: str, service: str | None = None) -> list[Span]:
        return [s for s in self.spans
                if s.operation == operation and (service is None or s.service == service)]


def tag_value(tag: dict[str, Any]) -> Any:
    """A typed Jaeger tag's Python value (int64 may come as a string, binary as base64)."""
    kind, value = tag.get("type", "string"), tag.get("value")
    if kind == "int64" and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    if kind == "binary" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            return value
    return value


def _same_trace(a: str, b: str) -> bool:
    # Jaeger pads 64-bit ids to 32 hex digits in some places and not in others.
    digits = rules.TRACE_ID_HEX_DIGITS
    return a.lower().zfill(digits) == b.lower().zfill(digits)


def build_tree(trace: dict[str, Any]) -> SpanTree:
    """The span tree of one trace object in Jaeger's JSON model (see the module notes)."""
    trace_id = str(trace.get("traceID", ""))
    processes = trace.get("processes") or {}
    spans: list[Span] = []
    first: dict[str, Span] = {}  # span id -> its first occurrence, the one children attach to
    seen: dict[str, int] = {}
    for raw in trace.get("spans") or []:
        span_id = str(raw.get("spanID", ""))
        span_trace = str(raw.get("traceID") or trace_id)
        trace_id = trace_id or span_trace
        seen[span_id] = seen.get(span_id, 0) + 1
        key = span_id if seen[span_id] == 1 else f"{span_id}#{seen[span_id]}"
        process = processes.get(raw.get("processID"), raw.get("process")) or {}
        span = Span(
            key=key, span_id=span_id, trace_id=span_trace,
            operation=str(raw.get("operationName", "")),
            service=str(process.get("serviceName", "unknown")),
            start_us=int(raw.get("startTime", 0)), duration_us=int(raw.get("duration", 0)),
            tags={t["key"]: tag_value(t) for t in raw.get("tags") or [] if "key" in t},
            references=[Reference(str(r.get("refType", "")), str(r.get("traceID", "")),
                                  str(r.get("spanID", ""))) for r in raw.get("references") or []],
            warnings=list(raw.get("warnings") or []),
        )
        if seen[span_id] > 1:
            span.warnings.append(f"duplicate span id {span_id} (occurrence {seen[span_id]})")
        first.setdefault(span_id, span)
        spans.append(span)

    for span in spans:
        parent_ref = next((r for r in span.references if r.ref_type == rules.PARENT_REFERENCE
                           and _same_trace(r.trace_id, trace_id)), None)
        span.links = [r for r in span.references if r is not parent_ref]
        if parent_ref is None:
            continue
        parent = first.get(parent_ref.span_id)
        if parent is None:
            span.missing_parent = parent_ref.span_id
        elif parent is span:
            span.warnings.append("references itself as its parent")
        else:
            span.parent = parent

    warnings = [str(w) for w in trace.get("warnings") or []]
    for span in spans:
        ancestors = {span.key}
        node = span.parent
        while node is not None:
            if node.key in ancestors:
                span.parent = None
                span.warnings.append("reference cycle cut here")
                warnings.append(f"reference cycle through span {span.key}")
                break
            ancestors.add(node.key)
            node = node.parent

    order = {span.key: i for i, span in enumerate(spans)}
    roots = []
    for span in spans:
        (span.parent.children if span.parent else roots).append(span)
    for span in spans:
        span.children.sort(key=lambda s: (s.start_us, order[s.key]))
    roots.sort(key=lambda s: (s.start_us, order[s.key]))
    return SpanTree(trace_id=trace_id, spans=spans, roots=roots, warnings=warnings)


class JaegerQuery:
    """A client of Jaeger's HTTP query API (`/api/...`), the API its UI uses."""

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def url(self, path: str, params: dict[str, str] | None = None) -> str:
        return self.base_url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        url = self.url(path, params)
        resp = http.get(url, timeout_s=self.timeout_s)
        if resp.status == 404:
            return None
        body = resp.json()
        if resp.status != 200 or not isinstance(body, dict):
            errors = body.get("errors") if isinstance(body, dict) else None
            text = errors or resp.body[:200].decode(errors="replace").strip()
            raise JaegerError(f"{url} answered {resp.status}: {text}")
        return body

    def services(self) -> list[str]:
        body = self._get("/api/services")
        return list(body.get("data") or []) if body else []

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace object, or None when the query service does not know it (yet)."""
        body = self._get(f"/api/traces/{trace_id}")
        data = (body or {}).get("data") or []
        return data[0] if data else None

    def find_traces(self, service: str, tags: dict[str, str] | None = None, limit: int = 20,
                    lookback: str = "2d", operation: str = "", start_us: int | None = None,
                    min_duration: str = "") -> list[dict[str, Any]]:
        """Traces with a span of `service` carrying all `tags` (Jaeger's search), newest first;
        from `start_us` (microseconds since the epoch) when given, else within `lookback`."""
        params = {"service": service, "limit": str(limit)}
        if start_us is None:
            params["lookback"] = lookback
        else:
            params.update(start=str(start_us), end=str(time.time_ns() // 1000))
        if tags:
            params["tags"] = _tags_json(tags)
        if operation:
            params["operation"] = operation
        if min_duration:
            params["minDuration"] = min_duration
        return self.search(params)

    def search(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """The search API's traces for these parameters, as they are (see `find_traces`)."""
        body = self._get("/api/traces", params)
        return list((body or {}).get("data") or [])

    def wait_for_tree(self, trace_id: str, ready: Callable[[SpanTree], bool], timeout_s: float,
                      interval_s: float = 0.5) -> tuple[SpanTree | None, bool]:
        """Poll a trace until ready(tree) holds or the deadline passes: (last tree, ready?)."""
        deadline = time.monotonic() + timeout_s
        tree = None
        while True:
            raw = self.trace(trace_id)
            tree = build_tree(raw) if raw else tree
            if tree is not None and ready(tree):
                return tree, True
            if time.monotonic() >= deadline:
                return tree, False
            time.sleep(interval_s)


def _tags_json(tags: dict[str, str]) -> str:
    return json.dumps(tags, separators=(",", ":"))


def trace_url(ui_base: str, trace_id: str) -> str:
    """The trace's page in Jaeger's UI."""
    return f"{ui_base.rstrip('/')}/trace/{trace_id}"


def search_url(ui_base: str, service: str, tags: dict[str, str]) -> str:
    """Jaeger UI's search page, filtered by service and tags (e.g. the correlation id)."""
    query = urllib.parse.urlencode({"service": service, "tags": _tags_json(tags)})
    return f"{ui_base.rstrip('/')}/search?{query}"


def trace_api_url(api_base: str, trace_id: str) -> str:
    """The trace as JSON from the query API (the native stand-in has no UI)."""
    return f"{api_base.rstrip('/')}/api/traces/{trace_id}"


def search_api_url(api_base: str, service: str, tags: dict[str, str]) -> str:
    """The query API's search, as JSON: the traces of `service` carrying all `tags`."""
    query = urllib.parse.urlencode({"service": service, "tags": _tags_json(tags)})
    return f"{api_base.rstrip('/')}/api/traces?{query}"
