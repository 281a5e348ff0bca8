"""Worker entry point (`celery -A worker.app worker`): logging, tracing, metrics, signals.

Telemetry starts in the process that runs tasks: after the fork for the prefork pool
(worker_process_init), in the main process for the threads pool (worker_init)."""

import os
import warnings

import structlog
from celery import signals
from celery.platforms import SecurityWarning
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from prometheus_client import CollectorRegistry, multiprocess, start_http_server

from recordstore import chaos, correlation
from recordstore.broker import celery_app
from recordstore.config import get_settings
from recordstore.db import get_engine
from recordstore.logs import configure_logging
from recordstore.metrics import TASKS, TASKS_STARTED, initialise_worker_series
from recordstore.metrics import set_enabled as set_metrics_enabled
from recordstore.telemetry import configure_tracing

app = celery_app
# Natively the lab runs as root; the warning is about pickle, which this worker refuses
# (JSON only), and in compose the worker runs as a non-root user anyway.
warnings.filterwarnings("ignore", category=SecurityWarning)
log = structlog.get_logger("worker")
# Set by worker.processes in the workers it forks: /metrics is the parent's, not theirs.
PARENT_ENV = "WORKER_PROCESSES_PARENT"
_telemetry_pid: int | None = None


def _start_telemetry() -> None:
    global _telemetry_pid
    if _telemetry_pid == os.getpid():
        return
    _telemetry_pid = os.getpid()
    if configure_tracing() is not None:
        CeleryInstrumentor().instrument()
        SQLAlchemyInstrumentor().instrument(engine=get_engine())


@signals.setup_logging.connect
def _setup_logging(**_):
    s = get_settings()
    configure_logging(s.log_format, s.log_level, s.log_file, extra=[_correlation_lost])


def serve_metrics() -> None:
    """One /metrics for every process: they all write to PROMETHEUS_MULTIPROC_DIR. With
    metrics off it answers empty: it is also the worker's health check."""
    registry = CollectorRegistry()
    if get_settings().metrics_enabled:
        multiprocess.MultiProcessCollector(registry)
    start_http_server(get_settings().worker_metrics_port, addr="127.0.0.1"
                      if os.environ.get("LAB_HOME") else "0.0.0.0", registry=registry)


@signals.worker_init.connect
def _worker_init(sender=None, **_):
    if not os.environ.get(PARENT_ENV):  # several workers: worker.processes serves /metrics
        serve_metrics()
    with app.connection_for_write() as conn:
        app.recordstore_queues.dead_letter.bind(conn.default_channel).declare()
    set_metrics_enabled(get_settings().metrics_enabled)
    initialise_worker_series()
    if "prefork" not in type(sender.pool_cls).__module__ + str(sender.pool_cls):
        _start_telemetry()


@signals.worker_process_init.connect
def _worker_process_init(**_):
    _start_telemetry()


@signals.worker_process_shutdown.connect
def _worker_process_shutdown(pid=None, **_):
    multiprocess.mark_process_dead(pid or os.getpid())


def _correlation_lost(_logger, _method, event_dict):
    """The log_correlation_drop fault: the worker's lines leave without the correlation id (its
    spans keep it). The faults as last read: a log line never reads the database."""
    if chaos.on("log_correlation_drop", refresh=False):
        event_dict.pop(correlation.LOG_FIELD, None)
    return event_dict


@signals.task_prerun.connect
def _bind_task_context(task=None, task_id=None, args=None, **_):
    cid = task.request.get(correlation.TASK_HEADER) or (
        (task.request.headers or {}).get(correlation.TASK_HEADER)
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task=task.name, task_id=task_id)
    if cid:
        structlog.contextvars.bind_contextvars(correlation_id=cid)
    if args:
        structlog.contextvars.bind_contextvars(order_id=args[0])
    span = trace.get_current_span()
    if cid and span.is_recording():
        span.set_attribute(correlation.ATTRIBUTE, cid)
    TASKS_STARTED.labels(task=task.name).inc()


@signals.task_postrun.connect
def _clear_task_context(**_):
    structlog.contextvars.clear_contextvars()


@signals.task_success.connect
def _count_success(sender=None, **_):
    TASKS.labels(task=sender.name, state="succeeded").inc()


@signals.task_failure.connect
def _count_failure(sender=None, **_):
    TASKS.labels(task=sender.name, state="failed").inc()


@signals.task_retry.connect
def _count_retry(sender=None, **_):
    TASKS.labels(task=sender.name, state="retried").inc()


import worker.tasks  # noqa: E402,F401  - registers the tasks on the app
