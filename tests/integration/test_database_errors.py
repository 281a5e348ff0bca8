"""The one rule (recordstore.db.classify) on errors a real PostgreSQL raises, not on exceptions
made up in a test: each is named for what happened."""

import threading
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from labctl.proc import free_port
from recordstore.config import get_settings
from recordstore.db import DatabaseProblem, classify

pytestmark = pytest.mark.stack
P = DatabaseProblem


@pytest.fixture
def engine(lab):
    engine = create_engine(get_settings().database_url, pool_size=2, max_overflow=0,
                           pool_timeout=0.5)
    yield engine
    engine.dispose()


def raised(fn) -> BaseException:
    try:
        fn()
    except (DBAPIError, PoolTimeout) as exc:
        return exc
    pytest.fail("no error raised")


def test_an_unreachable_database_is_an_outage():
    url = get_settings().database_url.replace(f":{get_settings().postgres_port}/",
                                              f":{free_port()}/")
    down = create_engine(url, connect_args={"connect_timeout": 1})
    exc = raised(lambda: down.connect().close())
    assert classify(exc) is P.UNAVAILABLE


def test_no_connection_free_in_time_is_busy(engine):
    held = [engine.connect(), engine.connect()]
    try:
        assert classify(raised(lambda: engine.connect().close())) is P.BUSY
    finally:
        for conn in held:
            conn.close()


def test_a_statement_past_its_timeout_is_a_timeout_not_an_outage(engine):
    def slow():
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL statement_timeout = 50"))
            conn.execute(text("SELECT pg_sleep(2)"))

    assert classify(raised(slow)) is P.TIMEOUT


def test_a_lock_wait_past_its_timeout_is_a_timeout(engine):
    key = uuid.uuid4().int % 2**62
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})

        def wait():
            with engine.begin() as conn:
                conn.execute(text("SET LOCAL lock_timeout = 50"))
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})

        assert classify(raised(wait)) is P.TIMEOUT
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def test_a_deadlock_is_a_conflict(engine):
    a, b = uuid.uuid4().int % 2**62, uuid.uuid4().int % 2**62
    errors: list[BaseException] = []
    ready = threading.Barrier(2)

    def take(first: int, second: int) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": first})
                ready.wait(5)
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": second})
        except DBAPIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take, args=pair) for pair in ((a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(errors) == 1, "PostgreSQL breaks a deadlock by failing one of the two"
    assert classify(errors[0]) is P.CONFLICT


def test_a_serialization_failure_is_a_conflict(engine):
    table = f"t_serial_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY, n int)"))
        conn.execute(text(f"INSERT INTO {table} VALUES (1, 0)"))
    try:
        with engine.connect() as first:
            first.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ"))
            first.execute(text(f"SELECT n FROM {table}"))  # takes the snapshot
            with engine.begin() as second:
                second.execute(text(f"UPDATE {table} SET n = 1"))
            exc = raised(lambda: first.execute(text(f"UPDATE {table} SET n = 2")))
            first.rollback()
        assert classify(exc) is P.CONFLICT
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {table}"))


def test_an_error_in_a_query_is_no_problem_of_the_database(engine):
    def bad():
        with engine.connect() as conn:
            conn.execute(text("SELECT no_such_column FROM products"))

    assert classify(raised(bad)) is None
