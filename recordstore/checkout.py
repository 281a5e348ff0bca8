"""Checkout: verify the product, record the order. Stock is taken later, by the worker."""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from recordstore.models import Customer, Order, OrderItem, OrderStatus, Product
from recordstore.telemetry import tracer

DEFAULT_EMAIL = "guest@recordstore.example"
DEFAULT_PAYMENT_METHOD = "credit_card"


class ProductNotFound(Exception):
    def __init__(self, product_id: int):
        super().__init__(f"product {product_id} does not exist")
        self.product_id = product_id


class InsufficientStock(Exception):
    def __init__(self, product: Product, requested: int):
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


def verify_product(session: Session, product_id: int, quantity: int) -> Product:
    with tracer.start_as_current_span("verify_product") as span:
        span.set_attributes({"product_id": product_id, "quantity": quantity})
        product = session.get(Product, product_id)
        if product is None:
            raise ProductNotFound(product_id)
        span.set_attributes({"product.genre": product.genre, "product.stock": product.stock})
        if product.stock < quantity:
            raise InsufficientStock(product, quantity)
        return product


def upsert_customer(session: Session, email: str) -> int:
    stmt = (
        insert(Customer).values(email=email.lower())
        .on_conflict_do_nothing(index_elements=["email"]).returning(Customer.id)
    )
    customer_id = session.scalar(stmt)
    if customer_id is None:
        customer_id = session.scalar(select(Customer.id).where(Customer.email == email.lower()))
    return customer_id


def place_order(session: Session, req: CheckoutRequest, correlation_id: str,
                trace_id: str | None, traceparent: str | None) -> Order:
    product = verify_product(session, req.product_id, req.quantity)
    order = Order(
        customer_id=upsert_customer(session, req.customer_email),
        status=OrderStatus.PENDING,
        payment_method=req.payment_method,
        total_cents=product.price_cents * req.quantity,
        correlation_id=correlation_id,
        trace_id=trace_id,
        traceparent=traceparent,
    )
    order.items = [OrderItem(product_id=product.id, quantity=req.quantity,
                             unit_price_cents=product.price_cents)]
    session.add(order)
    session.flush()
    return order
