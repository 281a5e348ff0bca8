"""Handing accepted orders to the broker. The order row is the outbox: an order the API could
not publish at once (broker down) keeps enqueued_at empty, and the relay publishes it later."""

import threading
from datetime import UTC, datetime, timedelta

import structlog
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import select, update

from recordstore import correlation
from recordstore.broker import PROCESS_ORDER, celery_app
from recordstore.config import Settings
from recordstore.db import session_scope
from recordstore.metrics import OUTBOX_RELAYED
from recordstore.models import Order, OrderStatus
from recordstore.telemetry import mark_error, tracer

log = structlog.get_logger("recordstore.outbox")


def publish_order(order_id: int, correlation_id: str) -> None:
    """Publish process_order; raises at once (no retry loop) when the broker is unreachable."""
    with tracer.start_as_current_span("enqueue_order") as span:
        span.set_attributes({"order_id": order_id, "messaging.destination.name": "orders"})
        try:
            celery_app.send_task(
                PROCESS_ORDER, args=[order_id], headers={correlation.TASK_HEADER: correlation_id},
                retry=False,
            )
        except Exception as exc:
            mark_error(span, exc)
            raise


def mark_enqueued(order_id: int) -> None:
    with session_scope() as session:
        session.execute(
            update(Order).where(Order.id == order_id, Order.enqueued_at.is_(None))
            .values(enqueued_at=datetime.now(UTC))
        )


def relay_unpublished(settings: Settings, batch: int = 100) -> int:
    """Publish accepted orders that never reached the broker. Safe with several relays running
    (SKIP LOCKED), and a duplicate publish is harmless: process_order is idempotent."""
    published = 0
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.outbox_relay_grace_s)
    with session_scope() as session:
        orders = session.scalars(
            select(Order).where(
                Order.enqueued_at.is_(None), Order.status == OrderStatus.PENDING,
                Order.created_at < cutoff,
            ).order_by(Order.created_at).limit(batch)
            .with_for_update(of=Order, skip_locked=True)
        ).all()
        for order in orders:
            ctx = TraceContextTextMapPropagator().extract({"traceparent": order.traceparent or ""})
            structlog.contextvars.bind_contextvars(correlation_id=order.correlation_id,
                                                   order_id=order.id)
            try:
                with tracer.start_as_current_span("relay_order", context=ctx):
                    publish_order(order.id, order.correlation_id)
            except Exception as exc:  # noqa: BLE001 - the broker is still down: try next round
                OUTBOX_RELAYED.labels(result="broker_unavailable").inc()
                log.warning("outbox_relay_publish_failed", error=str(exc))
                break
            finally:
                structlog.contextvars.unbind_contextvars("correlation_id", "order_id")
            order.enqueued_at = datetime.now(UTC)
            published += 1
            OUTBOX_RELAYED.labels(result="published").inc()
            log.info("outbox_relay_published", order_id=order.id,
                     correlation_id=order.correlation_id)
    return published


class OutboxRelay:
    """A daemon thread that runs relay_unpublished every few seconds until stopped."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="outbox-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self._settings.outbox_relay_interval_s):
            try:
                relay_unpublished(self._settings)
            except Exception as exc:  # noqa: BLE001 - e.g. the database is down: next round
                log.warning("outbox_relay_failed", error=str(exc).splitlines()[0])
