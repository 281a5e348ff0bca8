"""The data model. Constraints keep the data honest even when code is wrong."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class OrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class FailureCode(StrEnum):
    """Why an order failed, in a word that metrics and scripts select by; a detail says more."""

    PAYMENT_DECLINED = "payment_declined"
    OUT_OF_STOCK = "out_of_stock"


@dataclass(frozen=True)
class Failure:
    """Why one order failed: its FailureCode, and a detail for people."""

    code: str
    detail: str | None = None

    def __str__(self) -> str:
        """The one line a person reads: the API's failure_reason, a failed span's message."""
        return f"{self.code}: {self.detail}" if self.detail else self.code


class PaymentMethod(StrEnum):
    CREDIT_CARD = "credit_card"
    PAYPAL = "paypal"
    APPLE_PAY = "apple_pay"
    GIFT_CARD = "gift_card"


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    DECLINED = "declined"
    VOIDED = "voided"


def _in(column: str, enum: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(m.value) for m in enum)})"


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


Timestamp = DateTime(timezone=True)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price_cents > 0", name="price_positive"),
        CheckConstraint("release_year BETWEEN 1900 AND 2100", name="release_year_sane"),
        Index("ix_products_genre_id", "genre", "id"),
        # Substring search over title and artist (GET /products?q=...).
        Index(
            "ix_products_search_trgm",
            text("lower(title || ' ' || artist) gin_trgm_ops"),
            postgresql_using="gin",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    artist: Mapped[str] = mapped_column(String(200))
    genre: Mapped[str] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(20))
    release_year: Mapped[int] = mapped_column(SmallInteger)
    price_cents: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(_in("status", OrderStatus), name="status_valid"),
        CheckConstraint(_in("payment_method", PaymentMethod), name="payment_method_valid"),
        CheckConstraint("total_cents >= 0", name="total_not_negative"),
        CheckConstraint("status <> 'failed' OR failure_code IS NOT NULL", name="failed_has_code"),
        Index("ix_orders_correlation_id", "correlation_id"),
        Index("ix_orders_customer_id", "customer_id"),
        # The outbox relay's query: accepted orders never handed to the broker.
        Index(
            "ix_orders_unpublished",
            "created_at",
            postgresql_where=text("enqueued_at IS NULL AND status = 'pending'"),
        ),
        # The open-orders gauges (recordstore.open_orders): orders not final yet, by age.
        Index(
            "ix_orders_open",
            "created_at",
            postgresql_where=text("status IN ('pending', 'processing', 'paid')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.PENDING)
    payment_method: Mapped[str] = mapped_column(String(20))
    total_cents: Mapped[int] = mapped_column(Integer)
    correlation_id: Mapped[str] = mapped_column(String(128))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    # W3C traceparent of the checkout, so a late publish (outbox relay) stays in the same trace.
    traceparent: Mapped[str | None] = mapped_column(String(55))
    failure_code: Mapped[str | None] = mapped_column(String(40))
    failure_detail: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    enqueued_at: Mapped[datetime | None] = mapped_column(Timestamp)
    processing_at: Mapped[datetime | None] = mapped_column(Timestamp)
    paid_at: Mapped[datetime | None] = mapped_column(Timestamp)
    confirmed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    failed_at: Mapped[datetime | None] = mapped_column(Timestamp)

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    items: Mapped[list["OrderItem"]] = relationship(
        back_populates="order", lazy="selectin", order_by="OrderItem.id"
    )

    @property
    def failure(self) -> Failure | None:
        return Failure(self.failure_code, self.failure_detail) if self.failure_code else None


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 10", name="quantity_range"),
        CheckConstraint("unit_price_cents > 0", name="unit_price_positive"),
        UniqueConstraint("order_id", "product_id"),
        Index("ix_order_items_product_id", "product_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(SmallInteger)
    unit_price_cents: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="items")
    product: Mapped[Product] = relationship(lazy="joined", innerjoin=True)


class Payment(Base):
    """The simulated gateway's ledger: one row per order, so a retried task never charges twice."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(_in("status", PaymentStatus), name="status_valid"),
        CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(64))
    decline_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class ChaosSetting(Base):
    """A fault a learner switched on at runtime (`./lab chaos`); no row means the default."""

    __tablename__ = "chaos_settings"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=func.now(), onupdate=func.now()
    )
