"""Checkout: verify the product, record the order. Stock is taken later, by the worker."""

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import Row, select, text
from sqlalchemy.orm import Session

from recordstore.models import OrderStatus, Product
from recordstore.telemetry import tracer

DEFAULT_EMAIL = "guest@recordstore.example"
DEFAULT_PAYMENT_METHOD = "credit_card"


class ProductNotFound(Exception):
    def __init__(self, product_id: int):
        super().__init__(f"product {product_id} does not exist")
        self.product_id = product_id


class InsufficientStock(Exception):
    def __init__(self, product: Row, requested: int):
        super().__init__(
            f"only {product.stock} of product {product.id} ({product.title}) in stock, "
            f"{requested} requested"
        )
        self.available = product.stock


@dataclass(frozen=True)
class CheckoutRequest:
    product_id: int
    quantity: int
    customer_email: str = DEFAULT_EMAIL
    payment_method: str = DEFAULT_PAYMENT_METHOD


@dataclass(frozen=True)
class PlacedOrder:
    id: int
    total_cents: int


def verify_product(session: Session, product_id: int, quantity: int) -> Row:
    with tracer.start_as_current_span("verify_product") as span:
        span.set_attributes({"recordstore.product.id": product_id,
                             "recordstore.order.quantity": quantity})
        product = session.connection().execute(
            select(Product.id, Product.title, Product.genre, Product.price_cents, Product.stock)
            .where(Product.id == product_id)
        ).first()
        if product is None:
            raise ProductNotFound(product_id)
        span.set_attributes({"recordstore.product.genre": product.genre,
                             "recordstore.product.stock": product.stock})
        if product.stock < quantity:
            raise InsufficientStock(product, quantity)
        return product


def score_fraud_risk(customer_email: str, burn_s: float) -> int:
    """The order's fraud score (0-99). Cheap, unless the cpu_burn_ms fault gives it `burn_s`
    of CPU to spend: a pure-Python loop with no span of its own, so the trace shows a long
    checkout_order span that no child explains, and only a profile names this function."""
    digest = hashlib.sha256(customer_email.lower().encode()).digest()
    score = digest[0]
    # CPU time, not the wall clock's: on a busy machine it still spends all of `burn_s` on the
    # CPU (and takes longer), as the fault's name says.
    deadline = time.thread_time() + burn_s
    while time.thread_time() < deadline:
        for byte in digest:
            score = (score * 31 + byte) % 1_000_003
    return score % 100


# Written as SQL: each is one round trip, and SQLAlchemy caches neither a data-modifying CTE
# nor ON CONFLICT when built as an expression (it would compile them again on every checkout).
CUSTOMER_ID = text("""
WITH inserted AS (
    INSERT INTO customers (email) VALUES (:email)
    ON CONFLICT (email) DO NOTHING
    RETURNING id
)
SELECT id FROM inserted
UNION ALL
SELECT id FROM customers WHERE email = :email
LIMIT 1
""")
CUSTOMER_BY_EMAIL = text("SELECT id FROM customers WHERE email = :email")
NEW_ORDER = text("""
WITH new_order AS (
    INSERT INTO orders (customer_id, status, payment_method, total_cents, correlation_id,
                        trace_id, traceparent)
    VALUES (:customer_id, :status, :payment_method, :total_cents, :correlation_id,
            :trace_id, :traceparent)
    RETURNING id
)
INSERT INTO order_items (order_id, product_id, quantity, unit_price_cents)
SELECT id, :product_id, :quantity, :unit_price_cents FROM new_order
RETURNING order_id
""")


def upsert_customer(session: Session, email: str) -> int:
    """The customer's id, created on first purchase."""
    email = email.lower()
    customer_id = session.scalar(CUSTOMER_ID, {"email": email})
    if customer_id is None:
        # A concurrent first purchase by the same email committed after this statement's
        # snapshot was taken: a new statement sees its row.
        customer_id = session.scalar(CUSTOMER_BY_EMAIL, {"email": email})
    return customer_id


def place_order(session: Session, req: CheckoutRequest, correlation_id: str,
                trace_id: str | None, traceparent: str | None) -> PlacedOrder:
    """The order and its item, pending: three round trips to the database and its commit."""
    product = verify_product(session, req.product_id, req.quantity)
    total = product.price_cents * req.quantity
    order_id = session.scalar(NEW_ORDER, {
        "customer_id": upsert_customer(session, req.customer_email),
        "status": OrderStatus.PENDING.value,
        "payment_method": req.payment_method, "total_cents": total,
        "correlation_id": correlation_id, "trace_id": trace_id, "traceparent": traceparent,
        "product_id": product.id, "quantity": req.quantity,
        "unit_price_cents": product.price_cents,
    })
    return PlacedOrder(id=order_id, total_cents=total)
