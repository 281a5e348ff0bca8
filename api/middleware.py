"""Binds the correlation id at the edge: logs, the server span, the response headers."""

import json
import time

import structlog
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recordstore import correlation

log = structlog.get_logger("api.request")
QUIET_PATHS = frozenset({"/metrics", "/health"})


class CorrelationIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        incoming = _header(scope, b"x-correlation-id")
        if incoming and not correlation.is_valid(incoming):
            await _reject_malformed(send)
            return
        cid = incoming or correlation.new_id()
        structlog.contextvars.bind_contextvars(correlation_id=cid)
        server_span = trace.get_current_span()
        span_ctx = server_span.get_span_context()
        server_span.set_attribute(correlation.ATTRIBUTE, cid)
        status = 500
        started = time.perf_counter()

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[correlation.HEADER] = cid
                if span_ctx.is_valid:
                    headers["X-Trace-ID"] = format(span_ctx.trace_id, "032x")
                    headers["traceresponse"] = (
                        f"00-{span_ctx.trace_id:032x}-{span_ctx.span_id:016x}-"
                        f"{int(span_ctx.trace_flags):02x}"
                    )
            await send(message)
            if message["type"] == "http.response.start" and (
                    description := scope.get("state", {}).get("span_status")):
                # After the instrumentation's own status (ERROR, no description) for a 5xx: the
                # error handler's words for what happened (api.errors).
                server_span.set_status(Status(StatusCode.ERROR, description))

        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            if scope["path"] not in QUIET_PATHS or status >= 500:
                log.info("request_finished", method=scope["method"], path=scope["path"],
                         status=status,
                         duration_ms=round((time.perf_counter() - started) * 1000, 2))


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1").strip()
    return ""


async def _reject_malformed(send: Send) -> None:
    cid = correlation.new_id()
    body = json.dumps({
        "error": "invalid_correlation_id",
        "detail": "X-Correlation-ID must be 1-128 characters of A-Z a-z 0-9 . _ : - "
                  "starting with a letter or digit",
        "correlation_id": cid,
    }).encode()
    await send({"type": "http.response.start", "status": 400, "headers": [
        (b"content-type", b"application/json"), (b"x-correlation-id", cid.encode()),
        (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
