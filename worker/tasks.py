"""The tasks. Thin: the domain is recordstore.fulfilment; here are retries and dead-lettering."""

import time

import structlog
from celery import Task
from celery.exceptions import Reject
from kombu.exceptions import OperationalError as BrokerError
from opentelemetry import trace

from recordstore import chaos, correlation, fulfilment
from recordstore.broker import PROCESS_ORDER, SEND_ORDER_CONFIRMATION, celery_app
from recordstore.config import get_settings
from recordstore.db import DatabaseProblem, classify, first_line
from recordstore.fulfilment import EmailDeliveryError, Outcome
from recordstore.metrics import (
    DATABASE_ERRORS,
    DEAD_LETTERED_REASON,
    ORDER_PROCESSING,
    ORDERS_COMPLETED,
    TASKS,
)
from recordstore.telemetry import mark_error, publishing, tracer

log = structlog.get_logger("worker.tasks")


# The message is fine and the database will serve it again: wait, with no attempt limit.
WAITED_OUT = (DatabaseProblem.UNAVAILABLE, DatabaseProblem.BUSY)
# Worth another attempt, up to TASK_MAX_ATTEMPTS: a timed-out statement or a conflict may pass.
RETRIED = (DatabaseProblem.TIMEOUT, DatabaseProblem.CONFLICT)


def is_transient(exc: BaseException) -> bool:
    return classify(exc) is not None or isinstance(
        exc, BrokerError | EmailDeliveryError | ConnectionError | TimeoutError
    )


def reason_of(exc: BaseException) -> str:
    """What the log line says went wrong: the database's problem, or the error's type."""
    problem = classify(exc)
    return problem.value if problem is not None else type(exc).__name__


def dead_letter(task: Task, exc: BaseException, reason: str, attempts: int) -> None:
    """Reject the message to the dead-letter queue, where an alert and a panel show it: never
    acked and forgotten with its order left in processing."""
    log.error("task_dead_lettered", reason=reason, attempts=attempts, error=first_line(exc))
    TASKS.labels(task=task.name, state="dead_lettered").inc()
    ORDERS_COMPLETED.labels(status="dead_lettered", reason=reason).inc()
    raise Reject(exc, requeue=False) from exc


def retry_or_dead_letter(task: Task, order_id: int, exc: BaseException) -> None:
    """Retry a transient failure with exponential backoff; after the last attempt, reject it
    to the dead-letter queue. A database that is down or busy is waited out instead (backoff
    capped, no attempt limit): an order accepted before the outage completes once it ends.
    Anything else is a bug or bad data: dead-lettered at once, not retried."""
    s = get_settings()
    attempt = task.request.retries + 1
    problem = classify(exc)
    if problem is not None:
        DATABASE_ERRORS.labels(reason=problem.reason).inc()
    if not is_transient(exc):
        dead_letter(task, exc, "unexpected_error", attempt)
    waited_out = problem in WAITED_OUT
    if attempt >= s.task_max_attempts and not waited_out:
        dead_letter(task, exc, DEAD_LETTERED_REASON, attempt)
    countdown = min(s.task_retry_backoff_s * 2**task.request.retries, s.task_retry_backoff_max_s)
    log.warning("task_retry_scheduled", attempt=attempt, countdown_s=countdown,
                reason=reason_of(exc), waited_out=waited_out, error=first_line(exc))
    raise task.retry(exc=exc, countdown=countdown,
                     headers={correlation.TASK_HEADER: correlation.current()})


@celery_app.task(name=PROCESS_ORDER, bind=True, max_retries=None)
def process_order(self: Task, order_id: int) -> str:
    started = time.monotonic()
    with tracer.start_as_current_span("process_order") as span:
        span.set_attributes({"recordstore.order.id": order_id,
                             "recordstore.task.attempt": self.request.retries + 1})
        try:
            result = fulfilment.process_order(order_id, chaos.effective(get_settings()))
            if result.outcome is Outcome.PAID:
                # Inside the try: a refused publish is retried (a redelivery of a paid order
                # publishes its e-mail again), then dead-lettered, never lost.
                with publishing():
                    send_order_confirmation.apply_async(
                        args=[order_id], headers={correlation.TASK_HEADER: correlation.current()}
                    )
        except Exception as exc:
            mark_error(span, exc)
            retry_or_dead_letter(self, order_id, exc)
            raise
        span.set_attribute("recordstore.order.outcome", result.outcome)
        if result.outcome is Outcome.FAILED:
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(result.failure)))
            log.warning("order_failed", failure_code=result.failure.code,
                        failure_detail=result.failure.detail)
        else:
            log.info("order_processed", outcome=result.outcome)
        if result.outcome in (Outcome.PAID, Outcome.FAILED):
            ORDER_PROCESSING.labels(outcome=result.outcome).observe(time.monotonic() - started)
        return result.outcome


@celery_app.task(name=SEND_ORDER_CONFIRMATION, bind=True, max_retries=None)
def send_order_confirmation(self: Task, order_id: int) -> str:
    with tracer.start_as_current_span("send_order_confirmation") as span:
        span.set_attributes({"recordstore.order.id": order_id,
                             "recordstore.task.attempt": self.request.retries + 1})
        try:
            result = fulfilment.send_order_confirmation(order_id, chaos.effective(get_settings()))
        except Exception as exc:
            mark_error(span, exc)
            retry_or_dead_letter(self, order_id, exc)
            raise
        span.set_attribute("recordstore.order.outcome", result.outcome)
        log.info("order_confirmation", outcome=result.outcome)
        return result.outcome
