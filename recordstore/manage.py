"""The explicit one-shot step: wait for the database, run migrations, seed the catalog.

    python -m recordstore.manage migrate     # wait + alembic upgrade head + seed
    python -m recordstore.manage wait-db
    python -m recordstore.manage wait-migrated   # until the migrations are at head (Kubernetes)
"""

import argparse
import sys
import time
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert

from recordstore.catalog import ALBUMS
from recordstore.config import get_settings
from recordstore.db import get_engine, session_scope
from recordstore.logs import configure_logging
from recordstore.models import Product

log = structlog.get_logger("recordstore.manage")
ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def wait_for_db(timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with get_engine().connect() as conn:
                conn.execute(text("SELECT 1"))
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            if time.monotonic() > deadline:
                raise SystemExit(f"database not reachable after {timeout_s:.0f}s: {exc}") from exc
            log.info("waiting_for_database", error=str(exc).splitlines()[0])
            time.sleep(1)


def migrate() -> None:
    command.upgrade(Config(str(ALEMBIC_INI)), "head")


def wait_until_migrated(timeout_s: float = 300.0) -> None:
    """Kubernetes has no depends_on: the API and the worker wait here, in an init container,
    until the migrate Job has brought the schema to head."""
    head = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()
    deadline = time.monotonic() + timeout_s
    while True:
        with get_engine().connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"migrations not at head {head} after {timeout_s:.0f}s: {current}")
        log.info("waiting_for_migrations", current=current, head=head)
        time.sleep(2)


def seed() -> int:
    """Insert the catalog's albums that are missing; existing rows (and their stock) are kept."""
    rows = [
        {
            "sku": a.sku, "title": a.title, "artist": a.artist, "genre": a.genre,
            "format": a.format, "release_year": a.release_year,
            "price_cents": a.price_cents, "stock": a.stock,
        }
        for a in ALBUMS
    ]
    with session_scope() as session:
        inserted = session.execute(
            insert(Product).values(rows).on_conflict_do_nothing(index_elements=["sku"])
            .returning(Product.id)
        ).all()
        total = session.scalar(select(func.count()).select_from(Product))
    log.info("catalog_seeded", inserted=len(inserted), total=total)
    return len(inserted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recordstore.manage")
    parser.add_argument("command", choices=["migrate", "wait-db", "wait-migrated", "seed"])
    args = parser.parse_args(argv)
    s = get_settings()
    configure_logging(s.log_format, s.log_level)
    wait_for_db()
    if args.command in ("migrate",):
        migrate()
        log.info("migrations_applied")
    if args.command in ("migrate", "seed"):
        seed()
    if args.command == "wait-migrated":
        wait_until_migrated()
    return 0


if __name__ == "__main__":
    sys.exit(main())
