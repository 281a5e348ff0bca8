"""Faults a learner switches on while the lab runs, without a restart (`./lab chaos`, or the
admin endpoint). They live in the database, so the API and every worker process see the same
values; each process re-reads them at most once a second, on a connection outside the
application's pool (so that db_pool_exhaustion can be switched off again). All are off by
default."""

import threading
import time
from dataclasses import dataclass

import structlog
from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert

from recordstore.config import Settings
from recordstore.db import control_session, get_engine
from recordstore.models import ChaosSetting

log = structlog.get_logger("recordstore.chaos")


@dataclass(frozen=True)
class Fault:
    description: str
    minimum: float
    maximum: float
    setting: str | None = None  # the Settings field it overrides, if any


FAULTS = {
    "payment_failure_rate": Fault("share of payments the gateway declines", 0, 1,
                                  "payment_failure_rate"),
    "payment_latency_ms": Fault("how long the payment gateway takes", 0, 60_000,
                                "payment_latency_ms"),
    "email_failure_rate": Fault("share of emails the mail server refuses", 0, 1,
                                "email_failure_rate"),
    "slow_query_ms": Fault("extra time each catalog statement spends in PostgreSQL; at or past "
                           "DB_STATEMENT_TIMEOUT_MS it is cancelled (504 database_timeout)",
                           0, 30_000),
    "db_pool_exhaustion": Fault("1: the API's database connections are all held busy", 0, 1),
    "cpu_burn_ms": Fault("CPU each checkout spends scoring fraud risk, in one function", 0, 2000),
    "payment_gateway_hang": Fault("1: the payment gateway stops answering and the worker waits "
                                  "for it with no timeout: its order tasks start and never "
                                  "finish until it is switched off", 0, 1),
    "stock_lock_ms": Fault("how long a stock count holds every product's row lock, a second "
                           "apart: checkouts wait for the lock in PostgreSQL", 0, 2000),
    # Faults of the telemetry itself: the application works, a signal is what breaks.
    "trace_context_drop": Fault("1: the API publishes orders without their trace context "
                                "(traceparent): the worker's half of each purchase is a trace "
                                "of its own, joined to the API's only by the correlation id",
                                0, 1),
    "cardinality_bomb": Fault("1: the API counts each checkout under a label of its own "
                              "(recordstore_checkout_journeys{correlation_id}): one series per "
                              "journey, without bound; off, the series go stale", 0, 1),
    "log_correlation_drop": Fault("1: the worker's log lines lose the correlation id (its spans "
                                  "and the API's lines keep it)", 0, 1),
}
CACHE_S = 1.0


class ChaosError(ValueError):
    pass


def notes(active: dict[str, float], settings: Settings) -> list[str]:
    """What the active faults will show, where it is not what their names suggest."""
    slow, limit = active.get("slow_query_ms", 0), settings.db_statement_timeout_ms
    if slow >= limit:
        return [f"slow_query_ms={slow:g} is at or past the statement timeout ({limit} ms): "
                f"PostgreSQL cancels the catalog query after {limit} ms and the API answers "
                "504 database_timeout; the database stays up. Below it the query is only slow."]
    return []


def validate(changes: dict[str, float]) -> dict[str, float]:
    clean = {}
    for name, value in changes.items():
        fault = FAULTS.get(name)
        if fault is None:
            raise ChaosError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ChaosError(f"{name} must be a number")
        if not fault.minimum <= value <= fault.maximum:
            raise ChaosError(f"{name} must be between {fault.minimum:g} and {fault.maximum:g}")
        clean[name] = float(value)
    return clean


def set_faults(changes: dict[str, float]) -> dict[str, float]:
    clean = validate(changes)
    with control_session() as session:
        for name, value in clean.items():
            session.execute(insert(ChaosSetting).values(name=name, value=value)
                            .on_conflict_do_update(index_elements=["name"],
                                                   set_={"value": value}))
    _cache.invalidate()
    log.warning("chaos_changed", **clean)
    return read_faults()


def reset_faults() -> dict[str, float]:
    with control_session() as session:
        session.execute(delete(ChaosSetting))
    _cache.invalidate()
    log.warning("chaos_reset")
    return {}


def read_faults() -> dict[str, float]:
    with control_session() as session:
        return {row.name: row.value for row in session.scalars(select(ChaosSetting))}


class _Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}
        self._read_at = float("-inf")

    def get(self) -> dict[str, float]:
        with self._lock:
            if time.monotonic() - self._read_at >= CACHE_S:
                try:
                    self._values = read_faults()
                except Exception as exc:  # noqa: BLE001 - database down: keep the last values
                    log.debug("chaos_read_failed", error=str(exc).splitlines()[0])
                self._read_at = time.monotonic()
            return self._values

    def last(self) -> dict[str, float]:
        return self._values

    def invalidate(self) -> None:
        with self._lock:
            self._read_at = float("-inf")


_cache = _Cache()


def current() -> dict[str, float]:
    return _cache.get()


def effective(settings: Settings) -> Settings:
    """The settings with the faults switched on now laid over them."""
    overrides = {FAULTS[name].setting: value for name, value in current().items()
                 if FAULTS[name].setting}
    if not overrides:
        return settings
    if "payment_latency_ms" in overrides:
        overrides["payment_latency_ms"] = int(overrides["payment_latency_ms"])
    return settings.model_copy(update=overrides)


def on(name: str, refresh: bool = True) -> bool:
    """Is this on/off fault switched on? With refresh=False, as last read (never a query)."""
    values = current() if refresh else _cache.last()
    return values.get(name, 0.0) >= 1


def slow_query_seconds() -> float:
    return current().get("slow_query_ms", 0.0) / 1000


def cpu_burn_seconds() -> float:
    return current().get("cpu_burn_ms", 0.0) / 1000


def wait_while_payment_gateway_hangs() -> float:
    """While payment_gateway_hang is on, the gateway never answers: the caller (a worker task,
    inside its authorize_payment span) waits, with no timeout, until it is switched off. The
    seconds it waited."""
    if not on("payment_gateway_hang"):
        return 0.0
    started = time.monotonic()
    log.warning("chaos_payment_gateway_hung")
    while on("payment_gateway_hang"):
        time.sleep(CACHE_S)
    waited = time.monotonic() - started
    log.warning("chaos_payment_gateway_answers", waited_s=round(waited, 1))
    return waited


class _FaultThread:
    """A thread that acts on a fault once a second while the process runs (the API starts it)."""

    def __init__(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.release()

    def _loop(self) -> None:
        while not self._stop.wait(CACHE_S):
            self.tick()

    def tick(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        pass


class PoolHog(_FaultThread):
    """While db_pool_exhaustion is on, holds every connection of this process's pool, so
    requests wait for one until the pool timeout: the classic exhausted-pool outage."""

    def __init__(self) -> None:
        super().__init__("chaos-pool-hog")
        self._held: list = []

    def tick(self) -> None:
        wanted = on("db_pool_exhaustion")
        if wanted and not self._held:
            self._grab()
        elif not wanted and self._held:
            self.release()

    def _grab(self) -> None:
        engine = get_engine()
        size = engine.pool.size() + engine.pool._max_overflow  # noqa: SLF001 - no public accessor
        try:
            for _ in range(size):
                self._held.append(engine.connect())
            log.warning("chaos_pool_exhausted", connections_held=len(self._held))
        except Exception as exc:  # noqa: BLE001 - as many as we could get
            log.warning("chaos_pool_partially_held", held=len(self._held), error=str(exc))

    def release(self) -> None:
        for conn in self._held:
            conn.close()
        if self._held:
            log.warning("chaos_pool_released", connections=len(self._held))
        self._held = []


# One API process at a time holds the stock count's locks: a transaction-scoped advisory lock
# elects it. The application_name shows who holds them in pg_stat_activity.
STOCK_COUNT = "recordstore-stock-count"
ELECT = text(f"SELECT pg_try_advisory_xact_lock(hashtext('{STOCK_COUNT}'))")
LOCK_PRODUCTS = text("SELECT id FROM products ORDER BY id FOR UPDATE")


class StockLock(_FaultThread):
    """While stock_lock_ms is on, a stock count locks every product row (FOR UPDATE) for that
    long, a second apart. A checkout's INSERT of its order item checks its product (a foreign
    key: FOR KEY SHARE) and waits for the lock: a statement that is fast, waiting in PostgreSQL.
    Its own statements make no spans: they are the lab's, not a request's."""

    def __init__(self) -> None:
        super().__init__("chaos-stock-lock")
        self._on = False

    def tick(self) -> None:
        hold_ms = current().get("stock_lock_ms", 0)
        if (hold_ms > 0) != self._on:
            self._on = hold_ms > 0
            log.warning("chaos_stock_lock_on" if self._on else "chaos_stock_lock_off",
                        hold_ms=hold_ms)
        if self._on:
            try:
                self._hold(hold_ms / 1000)
            except Exception as exc:  # noqa: BLE001 - the database is down: try next second
                log.debug("chaos_stock_lock_failed", error=str(exc).splitlines()[0])

    def _hold(self, hold_s: float) -> None:
        with suppress_instrumentation(), get_engine().begin() as conn:
            if conn.scalar(ELECT):
                conn.execute(text(f"SET LOCAL application_name = '{STOCK_COUNT}'"))
                conn.execute(LOCK_PRODUCTS)
                self._stop.wait(hold_s)
