"""Handing accepted orders to the broker. The order row is the outbox: an order the API could
not publish at once (broker down) keeps enqueued_at empty, and the relay publishes it later."""

import threading
import time
from datetime import UTC, datetime, timedelta

import structlog
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import select, update

from recordstore import correlation
from recordstore.broker import PROCESS_ORDER, celery_app
from recordstore.config import Settings
from recordstore.db import session_scope
from recordstore.metrics import OUTBOX_RELAYED
from recordstore.models import Order, OrderStatus
from recordstore.telemetry import mark_error, publishing, tracer

log = structlog.get_logger("recordstore.outbox")


def publish_order(order_id: int, correlation_id: str) -> None:
    """Publish process_order; raises at once (no retry loop) when the broker is unreachable."""
    with tracer.start_as_current_span("enqueue_order") as span:
        span.set_attributes({"recordstore.order.id": order_id,
                             "messaging.destination.name": "orders"})
        try:
            with publishing():
                # timestamp: the AMQP property RabbitMQ reads the queue's head message's age
                # from (rabbitmq_detailed_queue_head_message_timestamp, whole seconds).
                celery_app.send_task(
                    PROCESS_ORDER, args=[order_id],
                    headers={correlation.TASK_HEADER: correlation_id}, retry=False,
                    timestamp=int(time.time()),
                )
        except Exception as exc:
            mark_error(span, exc)
            raise


def mark_enqueued(order_ids: list[int]) -> None:
    with session_scope() as session:
        session.execute(
            update(Order).where(Order.id.in_(order_ids), Order.enqueued_at.is_(None))
            .values(enqueued_at=datetime.now(UTC))
        )


class EnqueuedMarks:
    """Records that published orders reached the broker (enqueued_at), in batches from a
    thread of its own: one UPDATE for all the orders published meanwhile instead of a second
    transaction per checkout. A mark lost (the database down, the API killed) costs only a
    harmless re-publish by the relay, after its grace period."""

    LINGER_S = 0.2  # well inside the relay's grace period (OUTBOX_RELAY_GRACE_S)

    def __init__(self) -> None:
        self._pending: list[int] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, order_id: int) -> None:
        with self._lock:
            self._pending.append(order_id)
        self._wake.set()

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            try:
                with suppress_instrumentation():  # bookkeeping, not a request: no trace of its own
                    mark_enqueued(batch)
            except Exception as exc:  # noqa: BLE001 - the relay publishes these again
                log.warning("order_enqueued_mark_failed", orders=len(batch),
                            error=str(exc).splitlines()[0])
        return len(batch)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="enqueued-marks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._stop.wait(self.LINGER_S)  # let the orders of the next moments join the batch
            self._wake.clear()
            self.flush()


enqueued_marks = EnqueuedMarks()


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
