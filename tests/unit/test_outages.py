"""One rule for what a database error means (recordstore.db.classify): unreachable (an outage),
busy (no connection free in time), a statement past its timeout, a conflict worth a retry, or
an error in a query (a bug). The checkout counts each refusal under the code its answer names;
the worker waits the first two out, retries the next two up to a limit, dead-letters a bug."""

from contextlib import nullcontext

import psycopg.errors as pg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InternalError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.routes import checkout as route
from api.schemas import CheckoutIn
from recordstore.db import DatabaseProblem, classify
from worker.tasks import RETRIED, WAITED_OUT, is_transient

P = DatabaseProblem


def wrapped(orig: Exception, cls=OperationalError) -> DBAPIError:
    """As SQLAlchemy raises a psycopg error: the driver's exception in .orig."""
    return cls("SELECT 1", {}, orig)


def invalidated() -> DBAPIError:
    exc = DBAPIError("SELECT 1", {}, Exception("server closed the connection"))
    exc.connection_invalidated = True
    return exc


POOL_EXHAUSTED = PoolTimeout("QueuePool limit of size 5 overflow 5 reached, timed out")
DATABASE_DOWN = wrapped(pg.OperationalError("connection refused"))
STATEMENT_TIMEOUT = wrapped(pg.QueryCanceled("canceling statement due to statement timeout"))
BAD_QUERY = wrapped(pg.UndefinedColumn("column nope does not exist"), ProgrammingError)


@pytest.mark.parametrize("exc,problem", [
    (POOL_EXHAUSTED, P.BUSY),
    (wrapped(pg.TooManyConnections("too many clients already")), P.BUSY),
    (DATABASE_DOWN, P.UNAVAILABLE),
    (wrapped(pg.AdminShutdown("terminating connection due to administrator command")),
     P.UNAVAILABLE),
    (wrapped(pg.CannotConnectNow("the database system is starting up")), P.UNAVAILABLE),
    (invalidated(), P.UNAVAILABLE),
    (STATEMENT_TIMEOUT, P.TIMEOUT),
    (wrapped(pg.LockNotAvailable("canceling statement due to lock timeout")), P.TIMEOUT),
    (wrapped(pg.DeadlockDetected("deadlock detected")), P.CONFLICT),
    (wrapped(pg.SerializationFailure("could not serialize access")), P.CONFLICT),
    (BAD_QUERY, None),
    (wrapped(pg.UniqueViolation("duplicate key"), IntegrityError), None),
    (wrapped(pg.RaiseException("a trigger refused"), InternalError), None),
    (ValueError("bug"), None),
])
def test_each_database_error_is_named_for_what_happened(exc, problem):
    assert classify(exc) is problem
    assert is_transient(exc) is (problem is not None)  # the worker never retries a bad query


def test_the_worker_waits_out_what_passes_by_itself_and_limits_the_rest():
    assert set(WAITED_OUT) == {P.UNAVAILABLE, P.BUSY}
    assert set(RETRIED) == {P.TIMEOUT, P.CONFLICT}


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("recordstore_checkouts_total", {"outcome": outcome}) or 0.0


@pytest.mark.parametrize("exc,outcome", [
    (POOL_EXHAUSTED, "database_busy"),
    (DATABASE_DOWN, "database_unavailable"),
    (STATEMENT_TIMEOUT, "database_timeout"),
    (BAD_QUERY, "internal_error"),
])
def test_a_refused_checkout_is_counted_under_the_code_its_answer_names(monkeypatch, exc, outcome):
    def place_order(*_):
        raise exc

    monkeypatch.setattr(route, "session_scope", nullcontext)
    monkeypatch.setattr(route, "place_order", place_order)
    names = ("database_unavailable", "database_busy", "database_timeout", "internal_error")
    before = {name: counted(name) for name in names}
    with pytest.raises(type(exc)):
        route.checkout(CheckoutIn(product_id=1))
    after = {name: counted(name) for name in before}
    assert after == {**before, outcome: before[outcome] + 1}


def test_a_slow_query_fault_past_the_statement_timeout_says_what_the_learner_will_see():
    from recordstore import chaos
    from recordstore.config import Settings

    settings = Settings(db_statement_timeout_ms=5000)
    assert chaos.notes({"slow_query_ms": 4999}, settings) == []
    [note] = chaos.notes({"slow_query_ms": 6000}, settings)
    assert "504 database_timeout" in note and "5000 ms" in note and "stays up" in note
