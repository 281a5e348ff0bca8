"""The in-process layer: the API application in this pytest process (FastAPI's TestClient)
against a PostgreSQL cluster of its own, started once per session and migrated with Alembic.

No broker runs here: the broker's address is a port nothing listens on, so a checkout takes
its real broker-down path (accepted, kept in the outbox for the relay) and /health names the
broker down. Tracing is off (OTEL_SDK_DISABLED): spans are the stack's to test. What needs
the broker, the worker, the gateway or the trace store stays in tests/e2e.

The application reads its settings once per process (recordstore.config, the Celery app), so
these tests run in a pytest process of their own: marked `inprocess`, which ./lab test runs
beside its parallel phase (harness/suite.py) and the other phases leave out.
"""

import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labctl.config import LabConfig
from labctl.proc import free_ports
from labctl.servers import Postgres

HERE = Path(__file__).resolve().parent
ADMIN_TOKEN = "in-process-admin-token"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.inprocess)


@pytest.fixture(scope="session")
def database() -> dict[str, str]:
    """A throwaway cluster (the lab's own Postgres component) on a free port: the settings
    that reach it."""
    pg_port, closed_broker_port = free_ports(2)
    # Not pytest's tmp_path: as root the cluster runs as `postgres`, who must reach it.
    home = Path(tempfile.mkdtemp(prefix="lab-api-"))
    home.chmod(0o755)
    env = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(pg_port),
           "POSTGRES_USER": "recordstore", "POSTGRES_PASSWORD": "in-process",
           "POSTGRES_DB": "recordstore", "RABBITMQ_HOST": "127.0.0.1",
           "RABBITMQ_PORT": str(closed_broker_port), "BROKER_CONNECT_TIMEOUT_S": "1",
           "ADMIN_TOKEN": ADMIN_TOKEN, "OTEL_SDK_DISABLED": "true", "LOG_DIR": "",
           "LOG_FILE": "", "LOG_LEVEL": "WARNING"}
    cfg = LabConfig(env=env, home=home)
    db = Postgres("db", "PostgreSQL for the in-process API tests")
    # SIGTERM (a CI timeout, ./lab test interrupted) stops pytest as Ctrl-C does: through the
    # teardown below, which stops the cluster, instead of leaving it behind.
    # One that comes while the cluster starts is taken once it is up: cut short, the start
    # leaves a postmaster that no pid file names yet, which no stop would find.
    pending: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: pending.append(signum))
    try:
        db.start(cfg)
        signal.signal(signal.SIGTERM, _interrupt)
        if pending:
            _interrupt(pending[0], None)
        yield env
    finally:
        # Nested: an interrupt that cut the start short can make the stop raise; the files go
        # all the same.
        try:
            db.stop(cfg)
        finally:
            shutil.rmtree(home, ignore_errors=True)
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def app(database: dict[str, str]):
    """The application as `uvicorn api.main:app` builds it, on the cluster above, migrated and
    seeded by the lab's own one-shot step. Its lifespan (outbox relay, pool hog) is not
    entered: no thread publishes or holds connections behind a test's back."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in database.items():
            mp.setenv(key, value)
        from recordstore import config, db

        config.get_settings.cache_clear()
        for cached in (db.get_engine, db.get_control_engine, db.get_sessionmaker):
            if cached.cache_info().currsize:
                pytest.fail("this process already used another database: run the in-process "
                            "tests in a pytest process of their own (-m inprocess)")
        from recordstore.broker import celery_app

        if celery_app._pool is not None:
            pytest.fail("this process already used another broker (-m inprocess alone)")
        celery_app.conf.broker_url = config.get_settings().broker_url
        from recordstore import manage

        manage.wait_for_db(timeout_s=30)
        manage.migrate()
        manage.seed()
        from api.main import app

        yield app
        db.get_engine().dispose()
        db.get_control_engine().dispose()


@pytest.fixture(scope="session")
def client(app) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def product(app):
    """A factory of test albums with a known stock, apart from the seeded catalog."""
    from tests.integration.db import new_product

    return new_product


@pytest.fixture(scope="session")
def admin() -> dict[str, str]:
    """The headers that pass the admin endpoint's guard."""
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

