from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from api.deps import SessionDep
from api.schemas import OrderItemOut, OrderOut
from recordstore.models import Order

router = APIRouter(tags=["orders"])


@router.get("/orders/{order_id}", response_model=OrderOut, summary="An order and its progress")
def get_order(
    session: SessionDep, order_id: Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)]
) -> OrderOut:
    order = session.get(Order, order_id)
    if order is None:
        raise HTTPException(404, f"order {order_id} does not exist")
    return OrderOut(
        order_id=order.id, status=order.status,
        failure_reason=str(order.failure) if order.failure else None,
        failure_code=order.failure_code, failure_detail=order.failure_detail,
        payment_method=order.payment_method, total_cents=order.total_cents,
        customer_email=order.customer.email, correlation_id=order.correlation_id,
        trace_id=order.trace_id,
        items=[OrderItemOut(product_id=i.product_id, title=i.product.title,
                            artist=i.product.artist, quantity=i.quantity,
                            unit_price_cents=i.unit_price_cents) for i in order.items],
        timestamps={"pending": order.created_at, "processing": order.processing_at,
                    "paid": order.paid_at, "confirmed": order.confirmed_at,
                    "failed": order.failed_at},
    )
