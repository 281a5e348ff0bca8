"""The migrations on the lab's real PostgreSQL, in a database of their own: orders that failed
before 0003 keep their meaning when their one reason string becomes a code and a detail."""

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, make_url, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from labctl.components import BY_NAME
from recordstore.config import get_settings
from recordstore.manage import ALEMBIC_INI

pytestmark = pytest.mark.stack
# The reasons the worker wrote before 0003, and the code and detail each must become.
OLD_REASONS = {
    "payment_declined: card declined by issuer (simulated)":
        ("payment_declined", "card declined by issuer (simulated)"),
    "out_of_stock: product 3 has 0 left, 1 wanted":
        ("out_of_stock", "product 3 has 0 left, 1 wanted"),
    "payment_declined: the issuer said: no": ("payment_declined", "the issuer said: no"),
    "out_of_stock": ("out_of_stock", None),
}


@pytest.fixture
def scratch(lab) -> Iterator[Connection]:
    """A connection to a database of its own in the lab's cluster, dropped after the test."""
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    BY_NAME["db"].psql(lab, f'CREATE DATABASE {name} OWNER "{lab.env["POSTGRES_USER"]}"')
    engine = create_engine(make_url(get_settings().database_url).set(database=name),
                           poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
        BY_NAME["db"].psql(lab, f"DROP DATABASE {name} WITH (FORCE)")


def migrate(conn: Connection, action: str, revision: str) -> None:
    config = Config(str(ALEMBIC_INI))
    config.attributes["connection"] = conn
    getattr(command, action)(config, revision)
    conn.commit()


def failed_orders(conn: Connection, columns: str) -> list[tuple]:
    return [tuple(row) for row in conn.execute(text(
        f"SELECT {columns} FROM orders WHERE status = 'failed' ORDER BY id"))]


def test_0003_splits_old_reasons_into_code_and_detail_and_back(scratch):
    migrate(scratch, "upgrade", "0002")
    customer = scratch.execute(text(
        "INSERT INTO customers (email) VALUES ('old@example.com') RETURNING id")).scalar_one()
    for reason in OLD_REASONS:
        scratch.execute(text(
            "INSERT INTO orders (customer_id, status, payment_method, total_cents, correlation_id,"
            " failure_reason) VALUES (:customer, 'failed', 'paypal', 1999, 'old', :reason)"),
            {"customer": customer, "reason": reason})
    scratch.commit()

    migrate(scratch, "upgrade", "head")
    assert failed_orders(scratch, "failure_code, failure_detail") == list(OLD_REASONS.values())
    with pytest.raises(IntegrityError, match="failed_has_code"):
        scratch.execute(text("UPDATE orders SET failure_code = NULL WHERE status = 'failed'"))
    scratch.rollback()

    migrate(scratch, "downgrade", "0002")
    assert failed_orders(scratch, "failure_reason") == [(reason,) for reason in OLD_REASONS]
