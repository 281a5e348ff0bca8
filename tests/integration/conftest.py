import uuid

import pytest
from kombu import Connection

from labctl import app_commands
from labctl.app_commands import WORKER_COMMAND
from labctl.config import ROOT
from labctl.proc import free_port, pid_alive, spawn, terminate
from recordstore.broker import create_celery
from recordstore.config import Settings, get_settings
from tests.helpers import wait_for
from tests.integration.db import new_product


@pytest.fixture
def product(lab):
    """A factory of test albums with a known stock, apart from the seeded catalog."""
    return new_product


@pytest.fixture
def private_worker(lab, tmp_path):
    """A real worker process on queues of its own (QUEUE_PREFIX), with its own settings, so a
    test can change how it behaves without touching the stack's worker. Yields a factory
    returning (celery app that publishes to it, its log, its metrics port, its metrics dir)."""
    started = []

    def start(pool: str = "threads", concurrency: int = 2, processes: int = 1, **settings: str):
        prefix = f"t{uuid.uuid4().hex[:6]}-"
        metrics_dir = tmp_path / f"metrics-{prefix}"
        metrics_dir.mkdir()
        port = free_port()
        env = {**lab.env, "QUEUE_PREFIX": prefix, "PAYMENT_LATENCY_MS": "0",
               "EMAIL_DELAY_MS": "0", "WORKER_METRICS_PORT": str(port),
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
               "OTEL_SERVICE_NAME": "kodekloud-record-store-worker", **settings}
        log = tmp_path / f"worker-{prefix}.log"
        argv = app_commands.fill(WORKER_COMMAND, processes=str(processes), pool=pool,
                                 concurrency=str(concurrency),
                                 queues=app_commands.queues(prefix))
        argv[argv.index("--hostname") + 1] = f"{prefix}@%h"  # beside the stack's worker@%h
        pid = spawn([str(lab.venv_bin / argv[0]), *argv[1:]], env, log,
                    tmp_path / f"{prefix}.pid", ROOT)
        def ready() -> bool:
            if not pid_alive(pid):
                pytest.fail(f"the private worker exited at start:\n{log.read_text()[-2000:]}")
            return "ready" in log.read_text()

        wait_for(ready, 90, "the private worker to be ready")
        app = create_celery(Settings(**{**get_settings().model_dump(), "queue_prefix": prefix}))
        started.append((pid, app))
        return app, log, port, metrics_dir

    yield start
    for pid, app in started:
        terminate(pid)
        with Connection(get_settings().broker_url) as conn:
            for queue in vars(app.recordstore_queues).values():
                queue.bind(conn.default_channel).delete()
