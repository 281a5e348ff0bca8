import structlog
from fastapi import APIRouter
from kombu.exceptions import OperationalError as BrokerError

from api.schemas import CheckoutAccepted, CheckoutIn, ErrorOut
from recordstore import chaos, correlation
from recordstore.checkout import (
    CheckoutRequest,
    InsufficientStock,
    ProductNotFound,
    place_order,
    score_fraud_risk,
)
from recordstore.db import classify, session_scope
from recordstore.metrics import CHECKOUTS, CHECKOUTS_BY_JOURNEY, ORDER_PUBLISH_FAILURES
from recordstore.outbox import enqueued_marks, publish_order
from recordstore.telemetry import current_trace_id, current_traceparent, tracer

router = APIRouter(tags=["checkout"])
log = structlog.get_logger("api.checkout")
OUTCOMES = {ProductNotFound: "product_not_found", InsufficientStock: "insufficient_stock"}


def refused_outcome(exc: Exception) -> str:
    """The outcome a refused checkout is counted under: the one its error answer names."""
    if type(exc) in OUTCOMES:
        return OUTCOMES[type(exc)]
    problem = classify(exc)
    return problem.value if problem is not None else "internal_error"


@router.post(
    "/checkout", status_code=202, response_model=CheckoutAccepted, summary="Buy a record",
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut},
               503: {"model": ErrorOut}},
)
def checkout(body: CheckoutIn) -> CheckoutAccepted:
    cid = correlation.current()
    if cid and chaos.on("cardinality_bomb"):
        CHECKOUTS_BY_JOURNEY.labels(correlation_id=cid).inc()
    with tracer.start_as_current_span("checkout_order") as span:
        span.set_attributes({"recordstore.product.id": body.product_id,
                             "recordstore.order.quantity": body.quantity,
                             "recordstore.payment.method": body.payment_method})
        # Before the transaction opens: the burn holds no database connection.
        span.set_attribute("recordstore.fraud.score",
                           score_fraud_risk(str(body.customer_email), chaos.cpu_burn_seconds()))
        try:
            with session_scope() as session:
                order = place_order(
                    session,
                    CheckoutRequest(body.product_id, body.quantity, str(body.customer_email),
                                    body.payment_method),
                    cid, current_trace_id(), current_traceparent(),
                )
                order_id, total = order.id, order.total_cents
        except Exception as exc:
            CHECKOUTS.labels(outcome=refused_outcome(exc)).inc()
            raise
        structlog.contextvars.bind_contextvars(order_id=order_id)
        span.set_attribute("recordstore.order.id", order_id)
        CHECKOUTS.labels(outcome="accepted").inc()
        try:
            publish_order(order_id, cid)
        except (BrokerError, OSError) as exc:
            # Accepted all the same: the order row is the outbox, and the relay publishes it.
            ORDER_PUBLISH_FAILURES.labels(reason="broker_unavailable").inc()
            log.warning("order_publish_deferred", error=str(exc))
        else:
            enqueued_marks.add(order_id)
    log.info("order_accepted", product_id=body.product_id, quantity=body.quantity,
             total_cents=total, payment_method=body.payment_method)
    return CheckoutAccepted(
        order_id=order_id, status="pending", total_cents=total, correlation_id=cid,
        trace_id=current_trace_id() or None, links={"order": f"/orders/{order_id}"},
    )
