"""Domain rules against the lab's real PostgreSQL: constraints, idempotency, failures."""

import random
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from recordstore import fulfilment
from recordstore.checkout import CheckoutRequest, InsufficientStock, place_order
from recordstore.config import Settings
from recordstore.db import session_scope
from recordstore.fulfilment import Outcome
from recordstore.models import (
    Failure,
    FailureCode,
    Order,
    OrderItem,
    OrderStatus,
    PaymentStatus,
    Product,
)
from recordstore.payments import authorize_payment
from tests.integration.db import new_order, payments, stock
from tests.integration.db import order as status

pytestmark = pytest.mark.stack
FAST = Settings(payment_latency_ms=0, email_delay_ms=0)


def test_constraints_keep_the_data_honest(product):
    pid = product(stock=1)
    with pytest.raises(IntegrityError, match="stock_not_negative"), session_scope() as s:
        s.get(Product, pid).stock = -1
    oid = new_order(pid)
    with pytest.raises(IntegrityError, match="quantity_range"), session_scope() as s:
        s.get(Order, oid).items[0].quantity = 11
    with pytest.raises(IntegrityError, match="status_valid"), session_scope() as s:
        s.get(Order, oid).status = "shipped"
    with pytest.raises(IntegrityError, match="failed_has_code"), session_scope() as s:
        s.get(Order, oid).status = "failed"
    with pytest.raises(IntegrityError, match="uq_order_items"), session_scope() as s:
        s.add(OrderItem(order_id=oid, product_id=pid, quantity=1, unit_price_cents=100))


def test_checkout_refuses_more_than_the_stock(product):
    pid = product(stock=2)
    with pytest.raises(InsufficientStock), session_scope() as s:
        place_order(s, CheckoutRequest(pid, 3), "cid", None, None)


def test_full_pipeline_takes_stock_once_and_charges_once(product):
    pid = product(stock=5)
    oid = new_order(pid, quantity=2)
    assert fulfilment.process_order(oid, FAST).outcome is Outcome.PAID
    assert fulfilment.send_order_confirmation(oid, FAST).outcome is Outcome.CONFIRMED
    # Redelivery of both tasks: nothing changes.
    assert fulfilment.process_order(oid, FAST).outcome is Outcome.ALREADY_DONE
    assert fulfilment.send_order_confirmation(oid, FAST).outcome is Outcome.ALREADY_DONE
    assert stock(pid) == 3
    assert [p.status for p in payments(oid)] == [PaymentStatus.AUTHORIZED]
    order = status(oid)
    assert order.status == OrderStatus.CONFIRMED
    assert order.created_at <= order.processing_at <= order.paid_at <= order.confirmed_at


def test_a_task_redelivered_after_payment_does_not_charge_again(product):
    pid = product(stock=5)
    oid = new_order(pid)
    with session_scope() as s:  # a worker died after the payment, before taking stock
        s.get(Order, oid).status = OrderStatus.PROCESSING
    authorize_payment(oid, 1999, "credit_card", FAST)
    assert fulfilment.process_order(oid, FAST).outcome is Outcome.PAID
    assert len(payments(oid)) == 1 and stock(pid) == 4


def test_concurrent_deliveries_take_stock_once(product):
    pid = product(stock=5)
    oid = new_order(pid, quantity=3)
    slow = Settings(payment_latency_ms=150, email_delay_ms=0, latency_jitter=0)
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        fulfilment.process_order(oid, slow).outcome)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Outcome.PAID in results
    assert stock(pid) == 2
    assert len(payments(oid)) == 1


def test_stock_run_out_fails_the_order_and_voids_the_payment(product):
    pid = product(stock=1)
    oid = new_order(pid, quantity=2, check_stock=False)
    result = fulfilment.process_order(oid, FAST)
    assert result.outcome is Outcome.FAILED and result.failure.code == FailureCode.OUT_OF_STOCK
    order = status(oid)
    assert order.status == OrderStatus.FAILED and order.failure == result.failure
    assert order.failure_detail == f"product {pid} has 1 left, 2 wanted"
    assert stock(pid) == 1
    assert [p.status for p in payments(oid)] == [PaymentStatus.VOIDED]


def test_declined_payment_fails_the_order_without_taking_stock(product):
    pid = product(stock=4)
    oid = new_order(pid)
    declining = Settings(payment_latency_ms=0, payment_failure_rate=1.0)
    result = fulfilment.process_order(oid, declining, random.Random(1))
    assert result.outcome is Outcome.FAILED
    assert result.failure == Failure(FailureCode.PAYMENT_DECLINED,
                                     "card declined by issuer (simulated)")
    assert status(oid).failure == result.failure
    assert stock(pid) == 4
    assert status(oid).failed_at is not None
    # A retry sees the ledger's answer: still declined, still one payment row.
    assert fulfilment.process_order(oid, FAST).outcome is Outcome.ALREADY_DONE
    assert len(payments(oid)) == 1


def test_a_failed_order_answers_its_code_and_detail_through_the_gateway(product, gateway):
    oid = new_order(product(stock=4))
    declining = Settings(payment_latency_ms=0, payment_failure_rate=1.0)
    fulfilment.process_order(oid, declining, random.Random(1))
    body = gateway.get(f"/orders/{oid}").json()
    assert body["status"] == "failed"
    assert (body["failure_code"], body["failure_detail"]) == (
        "payment_declined", "card declined by issuer (simulated)")
    assert body["failure_reason"] == "payment_declined: card declined by issuer (simulated)"


def test_email_failure_is_transient_and_leaves_the_order_paid(product):
    pid = product()
    oid = new_order(pid)
    fulfilment.process_order(oid, FAST)
    failing = Settings(email_delay_ms=0, email_failure_rate=1.0)
    with pytest.raises(fulfilment.EmailDeliveryError):
        fulfilment.send_order_confirmation(oid, failing)
    assert status(oid).status == OrderStatus.PAID
    assert fulfilment.send_order_confirmation(oid, FAST).outcome is Outcome.CONFIRMED


def test_unknown_order_is_reported_not_crashed():
    assert fulfilment.process_order(2**62, FAST).outcome is Outcome.NOT_FOUND
    assert fulfilment.send_order_confirmation(2**62, FAST).outcome is Outcome.NOT_FOUND


def test_customers_are_reused_by_email(product):
    pid = product()
    a, b = new_order(pid), new_order(pid)
    with session_scope() as s:
        ids = {s.get(Order, a).customer_id, s.get(Order, b).customer_id}
        assert len(ids) == 1
        assert s.scalar(select(func.count()).select_from(Order).where(Order.id.in_([a, b]))) == 2
