"""The order state machine: pending -> processing -> paid -> confirmed, or failed with a reason."""

from datetime import UTC, datetime

from recordstore.models import Failure, Order, OrderStatus

S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.PROCESSING, S.FAILED}),
    # A redelivered task finds its order still "processing" and carries on from there.
    S.PROCESSING: frozenset({S.PROCESSING, S.PAID, S.FAILED}),
    S.PAID: frozenset({S.CONFIRMED}),
    S.CONFIRMED: frozenset(),
    S.FAILED: frozenset(),
}
TIMESTAMP = {
    S.PROCESSING: "processing_at",
    S.PAID: "paid_at",
    S.CONFIRMED: "confirmed_at",
    S.FAILED: "failed_at",
}
FINAL = frozenset({S.CONFIRMED, S.FAILED})


class InvalidTransition(Exception):
    pass


def transition(order: Order, to: OrderStatus, failure: Failure | None = None) -> None:
    current = OrderStatus(order.status)
    if to not in TRANSITIONS[current]:
        raise InvalidTransition(f"order {order.id}: {current} -> {to} is not allowed")
    if to is S.FAILED and failure is None:
        raise InvalidTransition(f"order {order.id}: a failed order needs a reason")
    order.status = to
    if getattr(order, TIMESTAMP[to]) is None:
        setattr(order, TIMESTAMP[to], datetime.now(UTC))
    if failure is not None:
        order.failure_code = failure.code
        order.failure_detail = failure.detail[:200] if failure.detail else None
