"""The order state machine: pending -> processing -> paid -> confirmed, or failed with a reason.

The one source of truth for which moves are allowed: the worker's SQL statements
(recordstore.fulfilment) derive their `WHERE status IN (...)` guards from TRANSITIONS, and
tests/integration/test_order_transitions.py runs them from every state against PostgreSQL."""

from recordstore.models import OrderStatus

S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.PROCESSING, S.FAILED}),
    # A redelivered task finds its order still "processing" and carries on from there.
    S.PROCESSING: frozenset({S.PROCESSING, S.PAID, S.FAILED}),
    S.PAID: frozenset({S.CONFIRMED}),
    S.CONFIRMED: frozenset(),
    S.FAILED: frozenset(),
}
FINAL = frozenset({S.CONFIRMED, S.FAILED})
