"""Request and response shapes."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from recordstore.checkout import DEFAULT_EMAIL, DEFAULT_PAYMENT_METHOD
from recordstore.models import PaymentMethod

# Strict: JSON `true` is not product 1, and "3" is not a quantity of 3 (a client that sends
# them has a bug the API should name, not hide).
ProductId = Annotated[int, Field(strict=True, ge=1, le=2_147_483_647)]


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: ProductId
    quantity: Annotated[int, Field(strict=True, ge=1, le=10)] = 1
    customer_email: EmailStr = DEFAULT_EMAIL
    payment_method: PaymentMethod = PaymentMethod(DEFAULT_PAYMENT_METHOD)


class CheckoutAccepted(BaseModel):
    order_id: int
    status: str
    total_cents: int
    correlation_id: str
    trace_id: str | None
    links: dict[str, str]


class ProductOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    title: str
    artist: str
    genre: str
    format: str
    release_year: int
    price_cents: int
    stock: int


class ProductPage(BaseModel):
    items: list[ProductOut]
    page: int
    page_size: int
    total: int
    genres: list[str]


class OrderItemOut(BaseModel):
    product_id: int
    title: str
    artist: str
    quantity: int
    unit_price_cents: int


class OrderOut(BaseModel):
    order_id: int
    status: str
    failure_reason: str | None  # "code: detail", for people; scripts select by failure_code
    failure_code: str | None
    failure_detail: str | None
    payment_method: str
    total_cents: int
    customer_email: str
    items: list[OrderItemOut]
    correlation_id: str
    trace_id: str | None
    timestamps: dict[str, datetime | None]


class ErrorOut(BaseModel):
    error: str
    detail: str | list | None
    correlation_id: str | None


class OrderLogsOut(BaseModel):
    order_id: int
    correlation_id: str
    # Each a component's JSON log line as it wrote it, plus `source` (gateway, api, worker)
    # and `at` (ISO 8601, UTC: what the lines are sorted by).
    lines: list[dict[str, Any]]
    truncated: bool  # more lines matched than the answer holds: the latest are kept
    sources: dict[str, str]  # each log file: read, partial (only its end), missing
