"""HTTP front ends: an OTLP/HTTP receiver and the Jaeger query API, over one shared store."""

import json
import re
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tracestore.otlp import JSON, PROTOBUF, decode_spans
from tracestore.store import Query, TraceStore

MAX_BODY = 8 * 1024 * 1024
DEFAULT_LIMIT = 100  # Jaeger's default search limit
DEFAULT_LOOKBACK_US = 2 * 24 * 3600 * 1_000_000  # Jaeger searches the last two days by default
HEALTH_PATHS = ("/", "/health")
_ENCODINGS = ("identity", "gzip", "deflate")

_TRACE_ID = re.compile(r"[0-9a-fA-F]{1,32}")
_DURATION_PART = r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)"
_DURATION = re.compile(f"(?:{_DURATION_PART})+")
_UNIT_US = {
    "ns": 0.001, "us": 1, "µs": 1, "μs": 1, "ms": 1e3, "s": 1e6, "m": 6e7, "h": 3.6e9, "d": 8.64e10,
}


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Server(ThreadingHTTPServer):
    def __init__(
        self, address: tuple[str, int], handler: type["_Handler"], store: TraceStore
    ) -> None:
        super().__init__(address, handler)
        self.store = store


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30  # a stalled client must not hold a thread forever

    def log_message(self, *_args: Any) -> None:
        """Silenced: one stderr line per span export would drown the lab's own logs."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        try:
            if url.path in HEALTH_PATHS:
                self._send_json(200, {"status": "ok"})
            else:
                self._get(url)
        except _HttpError as exc:
            self._error(exc.status, str(exc))

    def _get(self, url: SplitResult) -> None:
        raise _HttpError(404, "not found")

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": message})

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), JSON)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            # Said, not just done: nginx must not send the next export down this connection.
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class _OtlpHandler(_Handler):
    # Keep-alive: an exporter sends its batches down one connection, not one connection each.
    # An idle one is closed after `timeout` (30 s): the gateway's keepalive_timeout is shorter.
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        try:
            content_type = self._check_headers()
            refused, why = self.server.store.add(decode_spans(self._read_body(), content_type))
        except _HttpError as exc:
            self.close_connection = True  # the body may be unread: the stream is out of step
            self._error(exc.status, str(exc))
        except (ValueError, zlib.error) as exc:
            self.close_connection = True
            self._error(400, f"bad OTLP body: {exc}")
        else:
            self._send(200, _export_response(refused, why, content_type), content_type)

    def _check_headers(self) -> str:
        if urlsplit(self.path).path != "/v1/traces":
            raise _HttpError(404, "not found")
        content_type = self.headers.get_content_type()
        if content_type not in (JSON, PROTOBUF):
            raise _HttpError(415, f"unsupported content type {content_type}")
        if self.headers.get("Content-Encoding", "identity").lower() not in _ENCODINGS:
            raise _HttpError(415, "unsupported content encoding")
        return content_type

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length", "0")
        if not (length.isascii() and length.isdigit()):
            raise _HttpError(400, "bad Content-Length")
        if int(length) > MAX_BODY:
            raise _HttpError(413, "body larger than 8 MiB")
        body = self.rfile.read(int(length))
        if self.headers.get("Content-Encoding", "identity").lower() != "identity":
            inflater = zlib.decompressobj(wbits=47)  # 47: a gzip or a zlib (deflate) header
            body = inflater.decompress(body, MAX_BODY + 1)
            if len(body) > MAX_BODY:
                raise _HttpError(413, "body larger than 8 MiB once decompressed")
            if not inflater.eof:
                raise ValueError("truncated compressed body")
        return body


class _QueryHandler(_Handler):
    def _get(self, url: SplitResult) -> None:
        store = self.server.store
        match [unquote(part) for part in url.path.strip("/").split("/")]:
            case ["api", "services"]:
                services = store.services()
                self._send_json(200, _envelope(services, total=len(services)))
            case ["api", "services", service, "operations"]:
                operations = store.operations(service)
                self._send_json(200, _envelope(operations, total=len(operations)))
            case ["api", "traces"]:
                query = _search_query(parse_qs(url.query, keep_blank_values=True))
                self._send_json(200, _envelope(store.find(query)))
            case ["api", "traces", trace_id]:
                trace = store.get(_trace_id(trace_id))
                if trace is None:
                    raise _HttpError(404, "trace not found")
                self._send_json(200, _envelope([trace]))
            case _:
                raise _HttpError(404, "not found")

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, _envelope(None, errors=[{"code": status, "msg": message}]))


def _export_response(refused: int, why: str, content_type: str) -> bytes:
    """An ExportTraceServiceResponse: empty (zero bytes in protobuf) or a partial success."""
    response = ExportTraceServiceResponse()
    if refused:
        response.partial_success.rejected_spans = refused
        response.partial_success.error_message = why
    if content_type == JSON:
        return json.dumps(json_format.MessageToDict(response)).encode()
    return response.SerializeToString()


def _envelope(data: Any, total: int = 0, errors: list[dict[str, Any]] | None = None) -> Any:
    # Jaeger fills "total" only for services and operations, never for traces.
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def _trace_id(raw: str) -> str:
    if not _TRACE_ID.fullmatch(raw):
        raise _HttpError(400, f"cannot parse traceID {raw!r}")
    return raw.lower().zfill(32)


def _first(params: dict[str, list[str]], name: str) -> str:
    return params.get(name, [""])[0]


def _number(params: dict[str, list[str]], name: str, default: int) -> int:
    raw = _first(params, name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise _HttpError(400, f"unable to parse param '{name}': {raw!r}") from None


def _duration_us(params: dict[str, list[str]], name: str) -> int | None:
    raw = _first(params, name)
    if not raw:
        return None
    if not _DURATION.fullmatch(raw):
        raise _HttpError(400, f"cannot parse {name}: {raw!r}")
    parts = re.findall(_DURATION_PART, raw)
    return round(sum(float(amount) * _UNIT_US[unit] for amount, unit in parts))


def _tags(params: dict[str, list[str]]) -> dict[str, str]:
    tags = {}
    for raw in params.get("tag", []):
        key, colon, value = raw.partition(":")
        if not colon:
            message = f"malformed 'tag' parameter, expecting key:value, received: {raw}"
            raise _HttpError(400, message)
        tags[key] = value
    for raw in params.get("tags", []):
        try:
            decoded = json.loads(raw)
        except ValueError as exc:
            message = f"malformed 'tags' parameter, cannot unmarshal JSON: {exc}"
            raise _HttpError(400, message) from None
        if not isinstance(decoded, dict) or not all(isinstance(v, str) for v in decoded.values()):
            raise _HttpError(400, "malformed 'tags' parameter, expecting a JSON object of strings")
        tags.update(decoded)
    return tags


def _search_query(params: dict[str, list[str]]) -> Query:
    service = _first(params, "service")
    if not service:
        raise _HttpError(400, "parameter 'service' is required")
    end_us = _number(params, "end", time.time_ns() // 1000)
    if _first(params, "start"):
        start_us = _number(params, "start", 0)
    else:  # the UI's lookback (1h, 2d) counts only without an explicit start
        lookback_us = _duration_us(params, "lookback")
        start_us = end_us - (DEFAULT_LOOKBACK_US if lookback_us is None else lookback_us)
    min_duration_us = _duration_us(params, "minDuration") or 0
    max_duration_us = _duration_us(params, "maxDuration")
    if max_duration_us is not None and max_duration_us < min_duration_us:
        raise _HttpError(400, "'maxDuration' should be greater than 'minDuration'")
    return Query(
        service=service,
        operation=_first(params, "operation"),
        tags=_tags(params),
        start_us=start_us,
        end_us=end_us,
        min_duration_us=min_duration_us,
        max_duration_us=max_duration_us,
        limit=_number(params, "limit", DEFAULT_LIMIT),
    )


class Running:
    """Both servers, each on its own thread; close() stops them and frees the ports."""

    def __init__(self, otlp: _Server, query: _Server) -> None:
        self.otlp_port = otlp.server_port
        self.query_port = query.server_port
        self._servers = (otlp, query)
        for server in self._servers:
            threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},  # how long close() may wait for each loop
                name=f"tracestore-{server.server_port}",
                daemon=True,
            ).start()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


def serve(host: str, otlp_port: int, query_port: int, max_traces: int,
          **limits: int) -> Running:
    """Start serving in background threads; port 0 picks a free port (see Running's ports).
    `limits`: TraceStore's max_spans_per_trace and max_bytes."""
    store = TraceStore(max_traces, **limits)
    otlp = _Server((host, otlp_port), _OtlpHandler, store)
    try:
        query = _Server((host, query_port), _QueryHandler, store)
    except OSError:
        otlp.server_close()
        raise
    return Running(otlp, query)
