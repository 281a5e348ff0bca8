"""The order state machine as it runs: the worker's SQL statements, tried from every state
against PostgreSQL, move an order exactly where recordstore.states.TRANSITIONS allows."""

import pytest
from sqlalchemy import update

from recordstore import fulfilment
from recordstore.db import autocommit, session_scope
from recordstore.models import FailureCode, Order, OrderStatus
from recordstore.states import FINAL, TRANSITIONS
from tests.integration.db import new_order
from tests.integration.db import order as read_order

pytestmark = pytest.mark.stack
S = OrderStatus
# The statement that moves an order to each status, and whether it did (its answer).
MOVES = {
    S.PROCESSING: (fulfilment.CLAIM, {}, lambda rows: rows[0].claimed),
    S.PAID: (fulfilment.RESERVE, {}, lambda rows: bool(rows) and rows[0].paid),
    S.FAILED: (fulfilment.FAIL, {"code": FailureCode.OUT_OF_STOCK, "detail": "t",
                                 "void_payment": False}, lambda rows: rows[0][0] == 1),
    S.CONFIRMED: (fulfilment.CONFIRM, {}, lambda rows: bool(rows)),
}
TIMESTAMP = {S.PROCESSING: "processing_at", S.PAID: "paid_at", S.CONFIRMED: "confirmed_at",
             S.FAILED: "failed_at"}


def test_every_status_has_a_statement_or_is_the_start():
    assert set(MOVES) | {S.PENDING} == set(S)
    assert all(not TRANSITIONS[s] for s in FINAL)


@pytest.mark.parametrize("start", list(S))
@pytest.mark.parametrize("to", list(MOVES))
def test_the_sql_moves_exactly_as_the_state_machine_allows(product, start, to):
    oid = new_order(product(stock=5))
    with session_scope() as s:
        s.execute(update(Order).where(Order.id == oid).values(
            status=start, failure_code=FailureCode.OUT_OF_STOCK if start is S.FAILED else None))
    statement, extra, moved = MOVES[to]
    with autocommit() as conn:
        rows = conn.execute(statement, {"order_id": oid, **extra}).all()
    after = read_order(oid)
    if to in TRANSITIONS[start]:
        assert moved(rows), f"{start} -> {to} is allowed, the SQL refused it"
        assert after.status == to and getattr(after, TIMESTAMP[to]) is not None
    else:
        assert not moved(rows), f"{start} -> {to} is not allowed, the SQL made it"
        assert after.status == start
