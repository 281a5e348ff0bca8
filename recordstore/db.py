"""Engine and sessions. Short timeouts so an outage is a fast, honest error, not a hang."""

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from functools import lru_cache

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from recordstore.config import get_settings


def _connect_args(application_name: str) -> dict:
    s = get_settings()
    return {
        "connect_timeout": s.db_connect_timeout_s,
        "options": f"-c statement_timeout={s.db_statement_timeout_ms}",
        "application_name": application_name,
    }


@lru_cache
def get_engine() -> Engine:
    s = get_settings()
    return create_engine(
        s.database_url,
        pool_size=s.db_pool_size,
        max_overflow=s.db_max_overflow,
        pool_timeout=s.db_connect_timeout_s,
        pool_pre_ping=True,
        pool_recycle=300,
        connect_args=_connect_args("recordstore"),
    )


@lru_cache
def get_control_engine() -> Engine:
    """A small pool of its own, for the lab's own controls (the chaos settings): they must
    work while a fault holds every connection of the application's pool."""
    s = get_settings()
    return create_engine(s.database_url, pool_size=1, max_overflow=1,
                         pool_timeout=s.db_connect_timeout_s, pool_pre_ping=True,
                         connect_args=_connect_args("recordstore-control"))


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    with get_sessionmaker()() as session, session.begin():
        yield session


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A connection of the pool on which each statement is its own transaction: no BEGIN and
    COMMIT round trips around a statement that is atomic by itself."""
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


@contextmanager
def control_session() -> Iterator[Session]:
    with Session(get_control_engine()) as session, session.begin():
        yield session


class DatabaseProblem(StrEnum):
    """What went wrong with the database, as the API's error code names it. One rule for the
    API (status, body, metrics, span, log) and the worker (wait, retry or dead-letter)."""

    UNAVAILABLE = "database_unavailable"  # down or unreachable: an outage
    BUSY = "database_busy"  # up, but no connection free in time (pool or server slots)
    TIMEOUT = "database_timeout"  # a statement ran past its statement or lock timeout
    CONFLICT = "database_conflict"  # a deadlock or serialization failure: worth a retry

    @property
    def reason(self) -> str:
        """The metrics' `reason` label: the code without its prefix."""
        return self.value.removeprefix("database_")


# SQLSTATEs (PostgreSQL, Appendix A) that psycopg raises as OperationalError but that are not
# an outage: the server is up and answered.
_TIMEOUTS = {"57014", "55P03"}  # query_canceled (statement_timeout), lock_not_available
_CONFLICTS = {"40P01", "40001"}  # deadlock_detected, serialization_failure
_BUSY = {"53300"}  # too_many_connections
# Connection exceptions (class 08), the server shutting down or starting (57P01-57P03),
# out of resources (53) or a system error (58): the database cannot serve anyone.
_OUTAGE_CLASSES = ("08", "53", "57P", "58")


def classify(exc: BaseException) -> DatabaseProblem | None:
    """The problem a database error shows, or None for an error in a query (a bug, not a
    state of the database)."""
    if isinstance(exc, PoolTimeout):
        return DatabaseProblem.BUSY
    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _TIMEOUTS:
        return DatabaseProblem.TIMEOUT
    if sqlstate in _CONFLICTS:
        return DatabaseProblem.CONFLICT
    if sqlstate in _BUSY:
        return DatabaseProblem.BUSY
    if exc.connection_invalidated:
        return DatabaseProblem.UNAVAILABLE
    if isinstance(exc, OperationalError) and (sqlstate is None
                                              or sqlstate.startswith(_OUTAGE_CLASSES)):
        return DatabaseProblem.UNAVAILABLE
    return None


def first_line(exc: BaseException) -> str:
    """The driver's own message, first line: what the log line and the span say happened."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__
