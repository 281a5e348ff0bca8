"""Engine and sessions. Short timeouts so an outage is a fast, honest error, not a hang."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from recordstore.config import get_settings


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
        connect_args={
            "connect_timeout": s.db_connect_timeout_s,
            "options": f"-c statement_timeout={s.db_statement_timeout_ms}",
            "application_name": "recordstore",
        },
    )


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    with get_sessionmaker()() as session, session.begin():
        yield session


def is_unavailable(exc: BaseException) -> bool:
    """True when the database cannot be reached (as opposed to a bug in a query)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
