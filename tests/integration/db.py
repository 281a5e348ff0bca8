"""Reading and writing the lab's database directly, for assertions."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update

from recordstore.checkout import CheckoutRequest, place_order
from recordstore.db import session_scope
from recordstore.models import Order, OrderItem, Payment, Product


def new_product(stock: int = 10, price: int = 1999, genre: str = "Rock",
                title: str = "Test Pressing") -> int:
    """A test album with a known stock, apart from the seeded catalog."""
    with session_scope() as s:
        p = Product(sku=f"T-{uuid.uuid4().hex[:12]}", title=title, artist="Tester", genre=genre,
                    format="Vinyl", release_year=2024, price_cents=price, stock=stock)
        s.add(p)
        s.flush()
        return p.id


def new_order(product_id: int, quantity: int = 1, check_stock: bool = True) -> int:
    """An accepted order that only the test itself hands to a worker (or to the domain code)."""
    with session_scope() as s:
        if check_stock:
            o = place_order(s, CheckoutRequest(product_id, quantity, "it@example.com"),
                            f"it-{uuid.uuid4().hex[:8]}", None, None)
        else:  # as if the stock ran out between checkout and processing
            o = place_order(s, CheckoutRequest(product_id, 1, "it@example.com"), "it", None, None)
            s.execute(update(OrderItem).where(OrderItem.order_id == o.id)
                      .values(quantity=quantity))
            s.execute(update(Order).where(Order.id == o.id).values(
                total_cents=s.get(Product, product_id).price_cents * quantity))
        # The test delivers the order itself: marked as handed to the broker, so the stack's
        # outbox relay does not publish it to the stack's worker as well.
        s.execute(update(Order).where(Order.id == o.id).values(enqueued_at=datetime.now(UTC)))
        return o.id


def stock(product_id: int) -> int:
    with session_scope() as s:
        return s.get(Product, product_id).stock


def payments(order_id: int) -> list[Payment]:
    with session_scope() as s:
        return list(s.scalars(select(Payment).where(Payment.order_id == order_id)))


def order(order_id: int) -> Order:
    with session_scope() as s:
        return s.get(Order, order_id)
