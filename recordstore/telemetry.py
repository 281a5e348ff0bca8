"""Tracing set-up, driven by the standard OTEL_* variables; exported over OTLP/HTTP."""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from recordstore import broker, chaos, correlation
from recordstore.db import classify, first_line

tracer = trace.get_tracer("recordstore")


class CorrelationIdSpanProcessor(SpanProcessor):
    """Stamps the bound correlation id on every span, so a Jaeger tag search finds the journey."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        cid = correlation.current()
        if cid:
            span.set_attribute(correlation.ATTRIBUTE, cid)


class LearnerCausedRoots(sampling.Sampler):
    """Where a trace may start: only where a request or a task does (a server or a consumer
    span). Any other span without a parent is background work: the outbox relay's poll, the
    SELECTs of /health and of the log reads (requests that make no server span of their own,
    OTEL_PYTHON_FASTAPI_EXCLUDED_URLS), a pool's connect. It is dropped, and with it what runs
    beneath it. A root that may start is the configured sampler's (OTEL_TRACES_SAMPLER)."""

    ENTRY_KINDS = (SpanKind.SERVER, SpanKind.CONSUMER)

    def __init__(self, configured: sampling.Sampler) -> None:
        self._configured = configured

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> sampling.SamplingResult:
        if kind not in self.ENTRY_KINDS:
            return sampling.SamplingResult(sampling.Decision.DROP)
        return self._configured.should_sample(parent_context, trace_id, name, kind,
                                              attributes, links, trace_state)

    def get_description(self) -> str:
        return f"LearnerCausedRoots{{{self._configured.get_description()}}}"


def sampler() -> sampling.Sampler:
    """Spans with a parent follow it, as parentbased_* samplers do (the lab's is
    parentbased_always_on; `./lab sampling 0.1` makes it parentbased_traceidratio, with 0.1 in
    OTEL_TRACES_SAMPLER_ARG); only roots meet LearnerCausedRoots, so a child span costs nothing
    more than before. A root the ratio drops still has a trace id, which its response headers
    (X-Trace-ID, traceresponse with the sampled flag off), its exemplars and its order's message
    carry on: the worker's spans follow that decision, the exemplars name a trace never kept."""
    configured = sampling._get_from_env_or_default()  # noqa: SLF001 - the SDK's own reading
    return sampling.ParentBased(root=LearnerCausedRoots(configured))


def sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def configure_tracing() -> TracerProvider | None:
    if sdk_disabled():
        return None
    # OTEL_RESOURCE_ATTRIBUTES names the service's namespace, version and environment; the
    # SDK adds a service.instance.id of this process (a UUID per pid: each of the API's and
    # the worker's processes is an instance of its own, though they share one environment).
    provider = TracerProvider(resource=Resource.create(), sampler=sampler())
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


@contextmanager
def publishing() -> Iterator[None]:
    """Around a Celery publish. Its instrumentation opens a producer span before the publish
    and ends it after; a publish that raises never ends it and leaves it current, so whatever
    follows (a retry's publish) would hang under a span never exported. Here that span ends,
    in error, and the context is what it was before."""
    before = trace.get_current_span()
    token = context.attach(context.get_current())
    try:
        yield
    except Exception as exc:
        leaked = trace.get_current_span()
        if leaked is not before and leaked.is_recording():
            mark_error(leaked, exc)
            leaked.end()
        raise
    finally:
        context.detach(token)


def drop_order_trace_context(sender: str | None = None, headers: dict | None = None,
                             **_: object) -> None:
    """Celery's before_task_publish, connected after its instrumentation has injected the
    trace context: while `trace_context_drop` is on, an order's message leaves without it."""
    if headers is not None and sender == broker.PROCESS_ORDER and chaos.on("trace_context_drop"):
        headers.pop("traceparent", None)
        headers.pop("tracestate", None)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def current_traceparent() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
