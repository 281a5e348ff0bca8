"""What the worker does with an order: authorize payment, reserve stock, confirm by email.

Every step is safe to run twice and under concurrent deliveries: each checks the order's state
under its row lock, in the statement that changes it, and the payment ledger keeps one answer
per order. The steps are written as SQL, one round trip each, on connections in autocommit
(a single statement is atomic by itself): per order, five statements in four transactions."""

import random
import time
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, Row, text

from recordstore.config import Settings
from recordstore.db import autocommit, get_engine
from recordstore.metrics import (
    ORDER_END_TO_END,
    ORDER_VALUE,
    ORDERS_COMPLETED,
    PURCHASES,
    REVENUE,
)
from recordstore.models import Failure, FailureCode, OrderStatus, PaymentStatus
from recordstore.payments import PaymentAnswer, authorize_payment, jittered_ms
from recordstore.states import TRANSITIONS
from recordstore.telemetry import tracer


class Outcome(StrEnum):
    PAID = "paid"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    ALREADY_DONE = "already_done"
    NOT_READY = "not_ready"
    NOT_FOUND = "not_found"


class EmailDeliveryError(Exception):
    """The (simulated) mail server refused the message: transient, retried."""


@dataclass(frozen=True)
class Processed:
    outcome: Outcome
    failure: Failure | None = None


def _from(to: OrderStatus) -> str:
    """The statuses the state machine allows a move to `to` from, as a SQL list."""
    return ", ".join(f"'{s.value}'" for s, allowed in TRANSITIONS.items() if to in allowed)


# Takes the order into processing (pending, or processing again on a redelivery) and reads what
# the payment needs and the ledger's answer so far. The UPDATE locks the row; the outer SELECT
# sees the statement's snapshot, so the status comes from the UPDATE when it changed it.
CLAIM = text(f"""
WITH claimed AS (
    UPDATE orders SET status = 'processing', processing_at = coalesce(processing_at, now())
    WHERE id = :order_id AND status IN ({_from(OrderStatus.PROCESSING)})
    RETURNING id
)
SELECT o.status, c.id IS NOT NULL AS claimed, o.total_cents, o.payment_method,
       p.status AS payment_status, p.decline_reason
FROM orders o LEFT JOIN claimed c ON c.id = o.id LEFT JOIN payments p ON p.order_id = o.id
WHERE o.id = :order_id
""")
# Locks the order (still processing) and its products in id order, so concurrent orders never
# deadlock; takes the stock and marks the order paid only if every product has enough. One
# row per product: its stock before, and whether the order was paid.
RESERVE = text(f"""
WITH target AS (
    SELECT id, payment_method, total_cents FROM orders
    WHERE id = :order_id AND status = 'processing' FOR UPDATE
), locked AS (
    SELECT p.id, p.stock, p.genre, i.quantity
    FROM products p JOIN order_items i ON i.product_id = p.id JOIN target t ON t.id = i.order_id
    ORDER BY p.id FOR UPDATE OF p
), short AS (
    SELECT 1 FROM locked WHERE stock < quantity
), taken AS (
    UPDATE products p SET stock = p.stock - l.quantity FROM locked l
    WHERE p.id = l.id AND NOT EXISTS (SELECT 1 FROM short) RETURNING p.id
), paid AS (
    UPDATE orders o SET status = 'paid', paid_at = coalesce(o.paid_at, now())
    FROM target t WHERE o.id = t.id AND o.status IN ({_from(OrderStatus.PAID)})
    AND NOT EXISTS (SELECT 1 FROM short) RETURNING o.id
)
SELECT l.id, l.stock, l.genre, l.quantity, t.payment_method, t.total_cents,
       EXISTS (SELECT 1 FROM paid) AS paid
FROM target t JOIN locked l ON true ORDER BY l.id
""")
FAIL = text(f"""
WITH failed AS (
    UPDATE orders SET status = 'failed', failed_at = coalesce(failed_at, now()),
                      failure_code = :code, failure_detail = left(:detail, 200)
    WHERE id = :order_id AND status IN ({_from(OrderStatus.FAILED)})
    RETURNING id
), voided AS (
    UPDATE payments SET status = 'voided'
    WHERE order_id IN (SELECT id FROM failed) AND :void_payment
)
SELECT count(*) FROM failed
""")
# The confirmation holds the order's row lock while the email goes out: a concurrent delivery
# of the same task waits, then finds the order confirmed. (Not SKIP LOCKED: others lock the
# row for a moment too, the API's enqueued marks among them, and a skip would lose the email.)
TO_CONFIRM = text("""
SELECT o.status, c.email FROM orders o JOIN customers c ON c.id = o.customer_id
WHERE o.id = :order_id FOR UPDATE OF o
""")
CONFIRM = text(f"""
UPDATE orders SET status = 'confirmed', confirmed_at = now()
WHERE id = :order_id AND status IN ({_from(OrderStatus.CONFIRMED)})
RETURNING created_at, confirmed_at, payment_method
""")


def _fail(conn: Connection, order_id: int, failure: Failure, void_payment: bool) -> Processed:
    failed = conn.scalar(FAIL, {"order_id": order_id, "code": failure.code,
                                "detail": failure.detail, "void_payment": void_payment})
    if not failed:
        return Processed(Outcome.ALREADY_DONE)  # a concurrent delivery finished it first
    ORDERS_COMPLETED.labels(status="failed", reason=failure.code).inc()
    return Processed(Outcome.FAILED, failure)


def process_order(order_id: int, settings: Settings, rng: random.Random | None = None) -> Processed:
    with autocommit() as conn:
        order = conn.execute(CLAIM, {"order_id": order_id}).first()
    if order is None:
        return Processed(Outcome.NOT_FOUND)
    if not order.claimed:
        if order.status == OrderStatus.PAID:
            return Processed(Outcome.PAID)  # paid before a crash: only the email is left
        return Processed(Outcome.ALREADY_DONE)
    recorded = (None if order.payment_status is None
                else PaymentAnswer(order.payment_status, order.decline_reason))
    payment = authorize_payment(order_id, order.total_cents, order.payment_method, settings, rng,
                                recorded=recorded, looked_up=True)
    if payment.status == PaymentStatus.DECLINED:
        with autocommit() as conn:
            return _fail(conn, order_id, Failure(FailureCode.PAYMENT_DECLINED,
                                                 payment.decline_reason), void_payment=False)
    return reserve_stock(order_id)


def reserve_stock(order_id: int) -> Processed:
    with tracer.start_as_current_span("reserve_stock") as span, autocommit() as conn:
        span.set_attribute("recordstore.order.id", order_id)
        products = conn.execute(RESERVE, {"order_id": order_id}).all()
        if not products:
            # Another delivery of the task took the order further meanwhile; it publishes
            # the email, so this one must not.
            return Processed(Outcome.ALREADY_DONE)
        if not products[0].paid:
            short = next(p for p in products if p.stock < p.quantity)
            span.set_attribute("recordstore.stock.short_product_id", short.id)
            return _fail(conn, order_id, Failure(
                FailureCode.OUT_OF_STOCK,
                f"product {short.id} has {short.stock} left, {short.quantity} wanted"),
                void_payment=True)
    _count_sale(products)
    return Processed(Outcome.PAID)


def _count_sale(products: list[Row]) -> None:
    for product in products:
        PURCHASES.labels(genre=product.genre).inc(product.quantity)
    method, total = products[0].payment_method, products[0].total_cents
    REVENUE.labels(payment_method=method).inc(total)
    ORDER_VALUE.labels(payment_method=method).observe(total)


def send_order_confirmation(order_id: int, settings: Settings,
                            rng: random.Random | None = None) -> Processed:
    rng = rng or random.Random()
    with get_engine().begin() as conn:
        order = conn.execute(TO_CONFIRM, {"order_id": order_id}).first()
        if order is None:
            return Processed(Outcome.NOT_FOUND)
        if order.status == OrderStatus.CONFIRMED:
            return Processed(Outcome.ALREADY_DONE)
        if order.status != OrderStatus.PAID:
            return Processed(Outcome.NOT_READY)
        with tracer.start_as_current_span("send_email") as span:
            span.set_attributes({"recordstore.order.id": order_id,
                                 "recordstore.email.to_domain": order.email.rsplit("@", 1)[-1]})
            time.sleep(jittered_ms(settings.email_delay_ms, settings.latency_jitter, rng) / 1000)
            if rng.random() < settings.email_failure_rate:
                raise EmailDeliveryError("mail server refused the message (simulated)")
        row = conn.execute(CONFIRM, {"order_id": order_id}).first()
    ORDERS_COMPLETED.labels(status="confirmed", reason="").inc()
    ORDER_END_TO_END.labels(payment_method=row.payment_method).observe(
        (row.confirmed_at - row.created_at).total_seconds()
    )
    return Processed(Outcome.CONFIRMED)
