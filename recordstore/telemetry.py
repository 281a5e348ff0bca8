"""Tracing set-up, driven by the standard OTEL_* variables; exported over OTLP/HTTP."""

import os

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from recordstore import correlation
from recordstore.db import classify, first_line

tracer = trace.get_tracer("recordstore")


class CorrelationIdSpanProcessor(SpanProcessor):
    """Stamps the bound correlation id on every span, so a Jaeger tag search finds the journey."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        cid = correlation.current()
        if cid:
            span.set_attribute(correlation.ATTRIBUTE, cid)


def sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def configure_tracing() -> TracerProvider | None:
    if sdk_disabled():
        return None
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(CorrelationIdSpanProcessor())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def mark_error(span: trace.Span, exc: BaseException) -> None:
    """The span in error, its description naming the problem (a database error by what
    happened, as the API's error code and the log event name it)."""
    span.record_exception(exc)
    problem = classify(exc)
    span.set_status(Status(StatusCode.ERROR, f"{problem.value}: {first_line(exc)}" if problem
                           else f"{type(exc).__name__}: {exc}"))


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def current_traceparent() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
