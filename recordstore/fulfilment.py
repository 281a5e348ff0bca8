"""What the worker does with an order: authorize payment, reserve stock, confirm by email.
Every step is safe to run twice: state checks under row locks, and the payment ledger."""

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import lazyload

from recordstore.config import Settings
from recordstore.db import session_scope
from recordstore.metrics import (
    ORDER_END_TO_END,
    ORDER_VALUE,
    ORDERS_COMPLETED,
    PURCHASES,
    REVENUE,
)
from recordstore.models import (
    Failure,
    FailureCode,
    Order,
    OrderStatus,
    Payment,
    PaymentStatus,
    Product,
)
from recordstore.payments import authorize_payment, jittered_ms
from recordstore.states import transition
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


def _fail(order: Order, failure: Failure) -> Processed:
    transition(order, OrderStatus.FAILED, failure)
    ORDERS_COMPLETED.labels(status="failed", reason=failure.code).inc()
    return Processed(Outcome.FAILED, failure)


# The order without its items, where they are not needed (the mapping loads them eagerly).
WITHOUT_ITEMS = [lazyload(Order.items)]


def process_order(order_id: int, settings: Settings, rng: random.Random | None = None) -> Processed:
    with session_scope() as session:
        order = session.get(Order, order_id, with_for_update={"of": Order}, options=WITHOUT_ITEMS)
        if order is None:
            return Processed(Outcome.NOT_FOUND)
        if order.status == OrderStatus.PAID:
            return Processed(Outcome.PAID)  # paid before a crash: only the email is left
        if order.status in (OrderStatus.CONFIRMED, OrderStatus.FAILED):
            return Processed(Outcome.ALREADY_DONE)
        transition(order, OrderStatus.PROCESSING)
        amount, method = order.total_cents, order.payment_method

    payment = authorize_payment(order_id, amount, method, settings, rng)
    if payment.status == PaymentStatus.DECLINED:
        with session_scope() as session:
            order = session.get(Order, order_id, with_for_update={"of": Order},
                                options=WITHOUT_ITEMS)
            if order.status != OrderStatus.PROCESSING:
                return Processed(Outcome.ALREADY_DONE)
            return _fail(order, Failure(FailureCode.PAYMENT_DECLINED, payment.decline_reason))
    return reserve_stock(order_id)


def reserve_stock(order_id: int) -> Processed:
    with tracer.start_as_current_span("reserve_stock") as span, session_scope() as session:
        span.set_attribute("order_id", order_id)
        order = session.get(Order, order_id, with_for_update={"of": Order})
        if order.status != OrderStatus.PROCESSING:
            return Processed(Outcome.PAID if order.status == OrderStatus.PAID
                             else Outcome.ALREADY_DONE)
        wanted = {item.product_id: item.quantity for item in order.items}
        # Lock products in id order, so concurrent orders never deadlock.
        products = session.scalars(
            select(Product).where(Product.id.in_(wanted)).order_by(Product.id).with_for_update()
        ).all()
        for product in products:
            if product.stock < wanted[product.id]:
                session.execute(update(Payment).where(Payment.order_id == order_id)
                                .values(status=PaymentStatus.VOIDED))
                span.set_attribute("stock.short_product_id", product.id)
                return _fail(order, Failure(
                    FailureCode.OUT_OF_STOCK,
                    f"product {product.id} has {product.stock} left, {wanted[product.id]} wanted"))
        for product in products:
            product.stock -= wanted[product.id]
            PURCHASES.labels(genre=product.genre).inc(wanted[product.id])
        transition(order, OrderStatus.PAID)
        REVENUE.labels(payment_method=order.payment_method).inc(order.total_cents)
        ORDER_VALUE.labels(payment_method=order.payment_method).observe(order.total_cents)
        return Processed(Outcome.PAID)


def send_order_confirmation(order_id: int, settings: Settings,
                            rng: random.Random | None = None) -> Processed:
    rng = rng or random.Random()
    with session_scope() as session:
        order = session.get(Order, order_id, options=WITHOUT_ITEMS)
        if order is None:
            return Processed(Outcome.NOT_FOUND)
        if order.status == OrderStatus.CONFIRMED:
            return Processed(Outcome.ALREADY_DONE)
        if order.status != OrderStatus.PAID:
            return Processed(Outcome.NOT_READY)
        email = order.customer.email
    with tracer.start_as_current_span("send_email") as span:
        span.set_attributes({"order_id": order_id, "email.to_domain": email.rsplit("@", 1)[-1]})
        time.sleep(jittered_ms(settings.email_delay_ms, settings.latency_jitter, rng) / 1000)
        if rng.random() < settings.email_failure_rate:
            raise EmailDeliveryError("mail server refused the message (simulated)")
    with session_scope() as session:
        row = session.execute(
            update(Order).where(Order.id == order_id, Order.status == OrderStatus.PAID)
            .values(status=OrderStatus.CONFIRMED, confirmed_at=datetime.now(UTC))
            .returning(Order.created_at, Order.confirmed_at, Order.payment_method)
        ).first()
    if row is None:
        return Processed(Outcome.ALREADY_DONE)
    ORDERS_COMPLETED.labels(status="confirmed", reason="").inc()
    ORDER_END_TO_END.labels(payment_method=row.payment_method).observe(
        (row.confirmed_at - row.created_at).total_seconds()
    )
    return Processed(Outcome.CONFIRMED)
