"""Where a trace may start (recordstore.telemetry.sampler): at a request's server span or a
task's consumer span; the background's spans without a parent, and all beneath them, are not
recorded. tests/e2e/test_no_stray_traces.py proves it on the running lab."""

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider

from recordstore.telemetry import sampler


@pytest.fixture
def tracer(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
    return TracerProvider(sampler=sampler()).get_tracer("test")


@pytest.mark.parametrize("kind", [trace.SpanKind.SERVER, trace.SpanKind.CONSUMER])
def test_a_request_or_a_task_starts_a_trace_and_what_it_does_is_in_it(tracer, kind):
    with tracer.start_as_current_span("entry", kind=kind) as entry:
        assert entry.is_recording()
        assert tracer.start_span("SELECT recordstore", kind=trace.SpanKind.CLIENT).is_recording()


@pytest.mark.parametrize("kind", [trace.SpanKind.CLIENT, trace.SpanKind.INTERNAL,
                                  trace.SpanKind.PRODUCER])
def test_background_work_makes_no_trace_nor_do_its_children(tracer, kind):
    poll = tracer.start_span("SELECT recordstore", kind=kind)
    assert not poll.is_recording()
    with trace.use_span(poll):
        assert not tracer.start_span("connect", kind=trace.SpanKind.CLIENT).is_recording()


def test_the_configured_sampler_still_decides_for_roots(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    tracer = TracerProvider(sampler=sampler()).get_tracer("test")
    assert not tracer.start_span("POST /checkout", kind=trace.SpanKind.SERVER).is_recording()


def test_a_failed_publish_leaves_no_span_open_nor_current(tracer):
    """What the Celery instrumentation does on a publish that raises: its producer span, made
    current before the publish, is never ended nor detached. publishing() ends it, in error."""
    from recordstore.telemetry import publishing

    with tracer.start_as_current_span("process_order", kind=trace.SpanKind.CONSUMER) as task:
        producer = tracer.start_span("apply_async/send_order_confirmation",
                                     kind=trace.SpanKind.PRODUCER)
        with pytest.raises(ConnectionError), publishing():
            # As before_task_publish does: the producer made current, never detached.
            context.attach(trace.set_span_in_context(producer))
            raise ConnectionError("the broker refused the message")
        assert trace.get_current_span() is task
        assert producer.end_time is not None
        assert producer.status.status_code is trace.StatusCode.ERROR
        assert "ConnectionError" in producer.status.description
