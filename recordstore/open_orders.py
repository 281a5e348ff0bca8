"""The orders not final yet, as gauges read from the database at scrape time: an order that
stays pending, processing or paid past ORDER_FINAL_WITHIN_S is overdue, and OrdersNotFinal
fires. Whatever left it there (a dead-lettered task, a stopped worker, a bug), it is seen."""

import time
from collections.abc import Iterator

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from recordstore.db import first_line, get_control_engine
from recordstore.models import OrderStatus
from recordstore.states import FINAL

log = structlog.get_logger("recordstore.open_orders")
OPEN_STATES = tuple(s.value for s in OrderStatus if s not in FINAL)
# Reads the partial index ix_orders_open: cheap however many orders are final.
OPEN_ORDERS = text(f"""
SELECT status, count(*) AS open,
       count(*) FILTER (WHERE created_at < now() - make_interval(secs => :bound)) AS overdue,
       coalesce(extract(epoch FROM now() - min(created_at)), 0) AS oldest_s
FROM orders WHERE status IN ({", ".join(f"'{s}'" for s in OPEN_STATES)})
GROUP BY status
""")


def read_open_orders(bound_s: float) -> dict[str, tuple[int, int, float]]:
    """Per open state: (orders, of them overdue, age of the oldest in seconds)."""
    # The lab's own pool, apart from the application's (a fault may hold all of that one). No
    # trace: a scrape is no request of a learner's (telemetry.LearnerCausedRoots drops it).
    with get_control_engine().connect() as conn:
        rows = conn.execute(OPEN_ORDERS, {"bound": bound_s}).all()
    found = {r.status: (r.open, r.overdue, float(r.oldest_s)) for r in rows}
    return {state: found.get(state, (0, 0, 0.0)) for state in OPEN_STATES}


class OpenOrdersCollector(Collector):
    """recordstore_open_orders{state}, recordstore_overdue_orders{state} and
    recordstore_oldest_open_order_age_seconds{state}. Read at most every CACHE_S; while the
    database cannot answer, the series are absent (DatabaseDown says why), never a stale 0."""

    CACHE_S = 2.0

    def __init__(self, bound_s: float) -> None:
        self.bound_s = bound_s
        self._read_at = 0.0
        self._values: dict[str, tuple[int, int, float]] | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Names only: registering the collector reads nothing from the database."""
        return iter(self._families())

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("recordstore_open_orders",
                              "Orders not final yet (not confirmed or failed), by state.",
                              labels=["state"]),
            GaugeMetricFamily("recordstore_overdue_orders",
                              f"Open orders created more than ORDER_FINAL_WITHIN_S "
                              f"({self.bound_s:g} s) ago, by state.", labels=["state"]),
            GaugeMetricFamily("recordstore_oldest_open_order_age_seconds",
                              "Age of the oldest open order, by state (0: none).",
                              labels=["state"]),
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.monotonic()
        if now - self._read_at >= self.CACHE_S:
            self._read_at = now
            try:
                self._values = read_open_orders(self.bound_s)
            except Exception as exc:  # noqa: BLE001 - a scrape must answer whatever the database does
                log.warning("open_orders_unreadable", error=first_line(exc))
                self._values = None
        if self._values is None:
            return
        families = self._families()
        for state, values in self._values.items():
            for family, value in zip(families, values, strict=True):
                family.add_metric([state], value)
        yield from families
