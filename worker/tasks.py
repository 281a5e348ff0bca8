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
from recordstore.db import is_outage
from recordstore.fulfilment import EmailDeliveryError, Outcome
from recordstore.metrics import (
    DEAD_LETTERED_REASON,
    ORDER_PROCESSING,
    ORDERS_COMPLETED,
    TASKS,
)
from recordstore.telemetry import mark_error, tracer

log = structlog.get_logger("worker.tasks")


def is_transient(exc: BaseException) -> bool:
    return is_outage(exc) or isinstance(
        exc, BrokerError | EmailDeliveryError | ConnectionError | TimeoutError
    )


def retry_or_dead_letter(task: Task, order_id: int, exc: BaseException) -> None:
    """Retry with exponential backoff; after the last attempt, reject to the dead-letter queue.

    A database outage is waited out instead (backoff capped, no attempt limit): the message is
    fine, and an order accepted before the outage must complete once the database is back."""
    s = get_settings()
    attempt = task.request.retries + 1
    outage = is_outage(exc)
    if attempt >= s.task_max_attempts and not outage:
        log.error("task_dead_lettered", attempts=attempt, error=str(exc).splitlines()[0])
        TASKS.labels(task=task.name, state="dead_lettered").inc()
        ORDERS_COMPLETED.labels(status="dead_lettered", reason=DEAD_LETTERED_REASON).inc()
        raise Reject(exc, requeue=False) from exc
    countdown = min(s.task_retry_backoff_s * 2**task.request.retries, s.task_retry_backoff_max_s)
    log.warning("task_retry_scheduled", attempt=attempt, countdown_s=countdown,
                database_outage=outage, error=str(exc).splitlines()[0])
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
        except Exception as exc:
            mark_error(span, exc)
            if is_transient(exc):
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
        if result.outcome is Outcome.PAID:
            send_order_confirmation.apply_async(
                args=[order_id], headers={correlation.TASK_HEADER: correlation.current()}
            )
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
            if is_transient(exc):
                retry_or_dead_letter(self, order_id, exc)
            raise
        span.set_attribute("recordstore.order.outcome", result.outcome)
        log.info("order_confirmation", outcome=result.outcome)
        return result.outcome
