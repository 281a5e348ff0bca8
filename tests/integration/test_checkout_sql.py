"""The checkout's hand-written SQL and the batched enqueued marks, on the lab's PostgreSQL."""

import threading
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from recordstore.checkout import CheckoutRequest, place_order, upsert_customer
from recordstore.db import session_scope
from recordstore.models import Customer, Order, OrderItem
from recordstore.outbox import EnqueuedMarks

pytestmark = pytest.mark.stack


def test_an_order_and_its_item_are_written_in_one_statement(product):
    pid = product(stock=5, price=1234)
    email = f"Sql-{uuid.uuid4().hex[:8]}@Example.com"
    with session_scope() as s:
        placed = place_order(s, CheckoutRequest(pid, 3, email, "paypal"), "cid-sql",
                             "ab" * 16, f"00-{'ab' * 16}-{'cd' * 8}-01")
        assert s.get(Order, placed.id).enqueued_at is None
        # Handed to no broker by this test: marked so in the same transaction, or the stack's
        # outbox relay would publish it under its made-up trace parent (a stray trace).
        s.execute(update(Order).where(Order.id == placed.id)
                  .values(enqueued_at=datetime.now(UTC)))
    with session_scope() as s:
        o = s.get(Order, placed.id)
        assert (o.status, o.payment_method, o.total_cents, o.correlation_id) == (
            "pending", "paypal", 3 * 1234, "cid-sql")
        assert o.customer.email == email.lower()
        assert [(i.product_id, i.quantity, i.unit_price_cents) for i in o.items] == [
            (pid, 3, 1234)]
    assert placed.total_cents == 3 * 1234


def test_concurrent_first_purchases_by_one_email_share_one_customer():
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"
    ids, errors, start = [], [], threading.Barrier(8)

    def buy() -> None:
        try:
            start.wait()
            with session_scope() as s:
                ids.append(upsert_customer(s, email))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=buy) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and len(ids) == 8 and None not in ids
    assert len(set(ids)) == 1
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Customer)
                        .where(Customer.email == email)) == 1


def test_enqueued_marks_are_written_in_one_batch(product):
    pid = product()
    with session_scope() as s:
        orders = [place_order(s, CheckoutRequest(pid, 1), "cid-marks", None, None).id
                  for _ in range(3)]
        # One of them already marked (say by the relay): its time is left alone.
        earlier = datetime(2026, 1, 1, tzinfo=UTC)
        s.execute(update(Order).where(Order.id == orders[0]).values(enqueued_at=earlier))
    marks = EnqueuedMarks()
    for order_id in orders:
        marks.add(order_id)
    assert marks.flush() == 3
    assert marks.flush() == 0  # nothing left over
    with session_scope() as s:
        marked = dict(s.execute(select(Order.id, Order.enqueued_at)
                                .where(Order.id.in_(orders))).all())
    assert marked[orders[0]] == earlier
    assert all(marked[o] is not None and marked[o] > earlier for o in orders[1:])


def test_enqueued_marks_started_and_stopped_flush_what_was_added(product):
    pid = product()
    with session_scope() as s:
        order_id = place_order(s, CheckoutRequest(pid, 1), "cid-marks", None, None).id
    marks = EnqueuedMarks()
    marks.start()
    marks.add(order_id)
    marks.stop()  # flushes whatever the thread had not written yet
    with session_scope() as s:
        assert s.get(Order, order_id).enqueued_at is not None
        assert s.scalar(select(func.count()).select_from(OrderItem)
                        .where(OrderItem.order_id == order_id)) == 1
