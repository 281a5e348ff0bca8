"""Engine and sessions. Short timeouts so an outage is a fast, honest error, not a hang."""

from collections.abc import Iterator
from contextlib import contextmanager
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


def is_outage(exc: BaseException) -> bool:
    """True when the database cannot serve a request: down, unreachable, or no connection of
    the pool free in time. False for an error in a query, which is a bug, not an outage."""
    if isinstance(exc, PoolTimeout | OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
