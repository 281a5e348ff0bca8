from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from api.deps import SessionDep
from api.errors import error_response
from api.schemas import OrderItemOut, OrderLogsOut, OrderOut
from recordstore import journey_logs
from recordstore.config import get_settings
from recordstore.models import Order

router = APIRouter(tags=["orders"])
OrderId = Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)]


@router.get("/orders/{order_id}", response_model=OrderOut, summary="An order and its progress")
def get_order(session: SessionDep, order_id: OrderId) -> OrderOut:
    order = _order(session, order_id)
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


@router.get("/orders/{order_id}/logs", response_model=OrderLogsOut,
            summary="The order's log lines from the gateway, the API and the worker",
            responses={503: {"description": "this lab keeps no log files the API can read"}})
def get_order_logs(session: SessionDep, order_id: OrderId):
    """Every line with the order's correlation id, in time order, from the end of each log."""
    order = _order(session, order_id)
    try:
        found = journey_logs.read_journey(get_settings().log_dir, order.correlation_id)
    except journey_logs.LogsUnavailable as exc:
        return error_response(503, "logs_unavailable",
                              f"{exc}; grep the components' logs for {order.correlation_id}")
    return OrderLogsOut(order_id=order.id, correlation_id=order.correlation_id,
                        lines=found.lines, truncated=found.truncated, sources=found.sources)


def _order(session, order_id: int) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise HTTPException(404, f"order {order_id} does not exist")
    return order
