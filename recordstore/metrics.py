"""Business and pipeline metrics. Every metric has labels, so a process that never touches one
exports no series for it (the API shows no empty worker histograms, and vice versa).

Off (METRICS_ENABLED=false, set_enabled(False)), a metric's labels() answers a stand-in that
records nothing: no value, no file in PROMETHEUS_MULTIPROC_DIR, no time spent. ./lab bench's
"telemetry off" is then truly off."""

from typing import Any

from prometheus_client import Counter as _Counter
from prometheus_client import Histogram as _Histogram

from recordstore.catalog import GENRES
from recordstore.db import DatabaseProblem
from recordstore.models import FailureCode, PaymentMethod

_enabled = True


def set_enabled(enabled: bool) -> None:
    """Record (the default) or not, for the whole process: its entry point calls this with
    METRICS_ENABLED before the first request or task."""
    global _enabled
    _enabled = enabled


class _Off:
    """What labels() answers while metrics are off."""

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float, exemplar: Any = None) -> None:
        pass


_OFF = _Off()


class Counter(_Counter):
    def labels(self, *values: Any, **labels: Any) -> Any:
        return super().labels(*values, **labels) if _enabled else _OFF


class Histogram(_Histogram):
    def labels(self, *values: Any, **labels: Any) -> Any:
        return super().labels(*values, **labels) if _enabled else _OFF


CHECKOUTS = Counter(
    "recordstore_checkouts", "Checkout attempts at the API, by outcome (accepted: an order "
    "was created).", ["outcome"]
)
# The cardinality_bomb fault's metric: one series per shopper's journey, without bound, as a
# well-meant "per request" label makes. Exposed only while the fault is on (api/metrics.py), so
# switched off, its series go stale in Prometheus.
CHECKOUTS_BY_JOURNEY = Counter(
    "recordstore_checkout_journeys", "Checkout attempts by the shopper's correlation id.",
    ["correlation_id"]
)
FAULT_GATED = {"recordstore_checkout_journeys": "cardinality_bomb"}
DATABASE_ERRORS = Counter(
    "recordstore_database_errors",
    "Database errors the API and the worker met, by what happened (recordstore.db.classify).",
    ["reason"],
)
ORDER_PUBLISH_FAILURES = Counter(
    "recordstore_order_publish_failures",
    "Accepted orders the API could not hand to the broker at once (the outbox relay retries).",
    ["reason"],
)
OUTBOX_RELAYED = Counter(
    "recordstore_outbox_relayed_orders", "Orders published late by the outbox relay.", ["result"]
)
ORDERS_COMPLETED = Counter(
    "recordstore_orders_completed",
    "Orders that reached a final state, by status and failure reason.",
    ["status", "reason"],
)
REVENUE = Counter(
    "recordstore_revenue_cents", "Revenue of paid orders in cents.", ["payment_method"]
)
PURCHASES = Counter("recordstore_purchases", "Records sold (paid orders), by genre.", ["genre"])
ORDER_VALUE = Histogram(
    "recordstore_order_value_cents", "Value of paid orders in cents.", ["payment_method"],
    buckets=(1000, 2000, 3000, 5000, 7500, 10000, 15000, 25000, 50000, 100000),
)
# Started apart from how it ended: each run ends in exactly one state, so the states add up
# (sum by (state) is the runs that finished; started minus that sum, the runs under way).
TASKS_STARTED = Counter(
    "recordstore_celery_tasks_started", "Celery task runs started, by task.", ["task"]
)
TASKS = Counter(
    "recordstore_celery_tasks",
    "Celery task runs that ended, by task and the state each ended in.", ["task", "state"],
)
ORDER_PROCESSING = Histogram(
    "recordstore_order_processing_seconds",
    "Time the worker spends on process_order (payment and stock), by outcome.", ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 30),
)
ORDER_END_TO_END = Histogram(
    "recordstore_order_end_to_end_seconds",
    "Time from order created to confirmed (the journey the customer waits for).",
    ["payment_method"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 60, 120),
)

# The label values each counter can take, created at 0 on start-up: dashboards show 0, not
# "No data", and every value an alert selects exists before the first failure.
CHECKOUT_OUTCOMES = ("accepted", "product_not_found", "insufficient_stock",
                     *(p.value for p in DatabaseProblem), "internal_error")
TASK_NAMES = ("process_order", "send_order_confirmation")
TASK_STATES = ("succeeded", "failed", "retried", "dead_lettered")
DEAD_LETTERED_REASON = "attempts_exhausted"


def initialise_database_series() -> None:
    for problem in DatabaseProblem:
        DATABASE_ERRORS.labels(reason=problem.reason)


def initialise_api_series() -> None:
    initialise_database_series()
    for outcome in CHECKOUT_OUTCOMES:
        CHECKOUTS.labels(outcome=outcome)
    ORDER_PUBLISH_FAILURES.labels(reason="broker_unavailable")
    for result in ("published", "broker_unavailable"):
        OUTBOX_RELAYED.labels(result=result)


def initialise_worker_series() -> None:
    initialise_database_series()
    for task in TASK_NAMES:
        TASKS_STARTED.labels(task=task)
        for state in TASK_STATES:
            TASKS.labels(task=task, state=state)
    ORDERS_COMPLETED.labels(status="confirmed", reason="")
    for code in FailureCode:
        ORDERS_COMPLETED.labels(status="failed", reason=code)
    ORDERS_COMPLETED.labels(status="dead_lettered", reason=DEAD_LETTERED_REASON)
    for method in PaymentMethod:
        REVENUE.labels(payment_method=method)
        ORDER_VALUE.labels(payment_method=method)
        ORDER_END_TO_END.labels(payment_method=method)
    for genre in GENRES:
        PURCHASES.labels(genre=genre)
    for outcome in ("paid", "failed"):
        ORDER_PROCESSING.labels(outcome=outcome)
