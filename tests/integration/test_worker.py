"""The real worker process over the lab's real RabbitMQ: delivery, redelivery, the outbox."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from recordstore import correlation
from recordstore.broker import PROCESS_ORDER, celery_app
from recordstore.checkout import CheckoutRequest, place_order
from recordstore.config import get_settings
from recordstore.db import session_scope
from recordstore.models import Order, Payment
from recordstore.outbox import publish_order, relay_unpublished
from tests.helpers import wait_for
from tests.integration.db import order, stock

pytestmark = pytest.mark.stack


def order_status(order_id: int) -> str:
    return order(order_id).status


def create_order(product_id: int, quantity: int = 1) -> int:
    with session_scope() as s:
        return place_order(s, CheckoutRequest(product_id, quantity), f"wk-{uuid.uuid4().hex[:8]}",
                           None, None).id


def test_worker_processes_a_published_order(product):
    pid = product(stock=3)
    oid = create_order(pid)
    publish_order(oid, "wk-publish")
    wait_for(lambda: order_status(oid) == "confirmed", 30, f"order {oid} confirmed")
    assert stock(pid) == 2


def test_the_same_task_delivered_twice_charges_once(product):
    pid = product(stock=10)
    oid = create_order(pid, quantity=2)
    for _ in range(2):
        celery_app.send_task(PROCESS_ORDER, args=[oid],
                             headers={correlation.TASK_HEADER: "wk-twice"})
    wait_for(lambda: order_status(oid) == "confirmed", 30, f"order {oid} confirmed")
    with session_scope() as s:
        assert len(s.scalars(select(Payment).where(Payment.order_id == oid)).all()) == 1
    assert stock(pid) == 8


def test_the_outbox_relay_publishes_orders_the_broker_never_got(product):
    pid = product(stock=3)
    oid = create_order(pid)  # never published, as when the broker was down at checkout
    with session_scope() as s:
        s.execute(update(Order).where(Order.id == oid)
                  .values(created_at=datetime.now(UTC) - timedelta(seconds=60)))
    # The API's own relay may get there first; either way the order completes once.
    relay_unpublished(get_settings())
    wait_for(lambda: order_status(oid) == "confirmed", 30, f"relayed order {oid} confirmed")
    assert order(oid).enqueued_at is not None
