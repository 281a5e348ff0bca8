"""One rule for "the database is out" (an outage, answered 503 and waited out by the worker)
against "a query failed" (a bug, answered 500): the checkout counts each refusal under the
outcome its answer names."""

from contextlib import nullcontext

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.routes import checkout as route
from api.schemas import CheckoutIn
from recordstore.db import is_outage
from worker.tasks import is_transient

POOL_EXHAUSTED = PoolTimeout("QueuePool limit of size 5 overflow 5 reached, timed out")
DATABASE_DOWN = OperationalError("SELECT 1", {}, Exception("connection refused"))
BAD_QUERY = ProgrammingError("SELECT nope", {}, Exception("column nope does not exist"))
DUPLICATE = IntegrityError("INSERT", {}, Exception("duplicate key"))


def invalidated() -> DBAPIError:
    exc = DBAPIError("SELECT 1", {}, Exception("server closed the connection"))
    exc.connection_invalidated = True
    return exc


@pytest.mark.parametrize("exc,outage", [
    (POOL_EXHAUSTED, True), (DATABASE_DOWN, True), (invalidated(), True),
    (BAD_QUERY, False), (DUPLICATE, False), (ValueError("bug"), False),
])
def test_an_outage_is_an_unreachable_database_or_an_exhausted_pool(exc, outage):
    assert is_outage(exc) is outage
    assert is_transient(exc) is outage  # the worker retries an outage, never a bad query


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("recordstore_checkouts_total", {"outcome": outcome}) or 0.0


@pytest.mark.parametrize("exc,outcome", [
    (POOL_EXHAUSTED, "database_unavailable"),
    (DATABASE_DOWN, "database_unavailable"),
    (BAD_QUERY, "internal_error"),
])
def test_a_refused_checkout_is_counted_under_the_outcome_its_answer_names(monkeypatch, exc,
                                                                          outcome):
    def place_order(*_):
        raise exc

    monkeypatch.setattr(route, "session_scope", nullcontext)
    monkeypatch.setattr(route, "place_order", place_order)
    before = {name: counted(name) for name in ("database_unavailable", "internal_error")}
    with pytest.raises(type(exc)):
        route.checkout(CheckoutIn(product_id=1))
    after = {name: counted(name) for name in before}
    assert after == {**before, outcome: before[outcome] + 1}
