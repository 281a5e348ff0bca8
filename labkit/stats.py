"""What the load test's shoppers saw: counts, latency percentiles in bounded memory, and the
verdict against the guide's SLO targets. `Stats.summary()` is the run's JSON results."""

import math
import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from .patterns import JOURNEYS, LoadConfig
from .shop import Step

RESERVOIR_SIZE = 20_000  # samples kept per latency series: bounded memory when run forever
# The course guide's targets.
SLO_CHECKOUT_P95_MS = 500.0
SLO_SUCCESS_PCT = 99.9
SLO_ORDER_P95_S = 10.0


def percentile(values: list[float], pct: float) -> float | None:
    """Linear interpolation between the closest ranks; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Reservoir:
    """A uniform sample of a series (all of it until `size`), for percentiles in bounded memory."""

    def __init__(self, size: int = RESERVOIR_SIZE, seed: int = 0) -> None:
        self.size = size
        self.count = 0
        self.values: list[float] = []
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.count += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            slot = self._rng.randrange(self.count)
            if slot < self.size:
                self.values[slot] = value

    def percentiles(self, *pcts: float) -> dict[str, float | None]:
        return {f"p{pct:g}": _round(percentile(self.values, pct)) for pct in pcts}


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


class Stats:
    """What the shoppers saw, counted under one lock; `summary()` is the JSON results."""

    MAX_EXAMPLES = 5  # failing requests kept per error kind, with their correlation ids

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.journeys = {kind: {"count": 0, "finished": 0, "succeeded": 0} for kind in JOURNEYS}
        self.requests: Counter[str] = Counter()
        self.request_errors = 0
        self.latency = {name: Reservoir() for name in ("browse", "view", "checkout", "order")}
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, list[dict[str, Any]]] = {}
        self.checkouts: Counter[str] = Counter()
        self.orders: Counter[str] = Counter()
        self.order_seconds = Reservoir()
        self.sold_out = 0
        self.in_flight = 0

    def journey_started(self, kind: str) -> None:
        with self._lock:
            self.journeys[kind]["count"] += 1
            self.in_flight += 1

    def journey_finished(self, kind: str, succeeded: bool) -> None:
        with self._lock:
            self.journeys[kind]["finished"] += 1
            self.journeys[kind]["succeeded"] += int(succeeded)
            self.in_flight -= 1

    def step(self, step: Step) -> None:
        with self._lock:
            self.requests[step.name] += 1
            if step.ok:  # what a shopper waited for, as SlowCheckout times it: 2xx answers
                self.latency[step.name].add(step.latency_ms)
            if step.name == "checkout":
                self.checkouts["attempted"] += 1
                self.checkouts["accepted" if step.status == 202 else step.error or "other"] += 1
            if step.error:
                self.request_errors += 1
                self._error(step.error, {
                    "step": step.name, "request": f"{step.method} {step.path}",
                    "status": step.status, "correlation_id": step.correlation_id,
                    "detail": step.detail})

    def _error(self, kind: str, example: dict[str, Any]) -> None:
        self.errors[kind] += 1
        kept = self.examples.setdefault(kind, [])
        if len(kept) < self.MAX_EXAMPLES:
            kept.append(example)

    def order_final(self, order: dict[str, Any], correlation_id: str) -> None:
        with self._lock:
            status = order.get("status", "")
            self.orders[status] += 1
            seconds = _order_seconds(order)
            if seconds is not None:
                self.order_seconds.add(seconds)
            if status == "failed":
                self._error(f"order failed: {order.get('failure_code') or 'unknown'}", {
                    "step": "order", "request": f"GET /orders/{order.get('order_id')}",
                    "status": 200, "correlation_id": correlation_id,
                    "detail": order.get("failure_detail")})

    def order_unfinished(self, order_id: int, status: str, correlation_id: str,
                         timed_out: bool) -> None:
        with self._lock:
            self.orders["unfinished"] += 1
            if timed_out:
                self._error(f"order not final in time (stuck at {status})", {
                    "step": "order", "request": f"GET /orders/{order_id}", "status": 200,
                    "correlation_id": correlation_id, "detail": f"still {status}"})

    def no_stock(self) -> None:
        with self._lock:
            self.sold_out += 1

    def summary(self, config: LoadConfig | None = None) -> dict[str, Any]:
        with self._lock:
            elapsed = time.monotonic() - self.started
            finished = sum(j["finished"] for j in self.journeys.values())
            succeeded = sum(j["succeeded"] for j in self.journeys.values())
            total_requests = sum(self.requests.values())
            result: dict[str, Any] = {
                "started_at": self.started_at.isoformat(timespec="seconds"),
                "elapsed_s": round(elapsed, 1),
                "journeys": {
                    "started": sum(j["count"] for j in self.journeys.values()),
                    "finished": finished,
                    "succeeded": succeeded,
                    "success_pct": _round(100 * succeeded / finished, 2) if finished else None,
                    "in_flight": self.in_flight,
                    "sold_out": self.sold_out,
                    "by_type": {kind: dict(counts) for kind, counts in self.journeys.items()},
                },
                "requests": {
                    "total": total_requests,
                    "errors": self.request_errors,
                    "per_s": round(total_requests / elapsed, 2) if elapsed else 0.0,
                    "by_step": dict(self.requests),
                },
                "latency_ms": {name: {"count": r.count, **r.percentiles(50, 95, 99)}
                               for name, r in self.latency.items()},
                "checkouts": {"attempted": self.checkouts["attempted"],
                              "accepted": self.checkouts["accepted"],
                              "rejected": {k: v for k, v in self.checkouts.items()
                                           if k not in ("attempted", "accepted")}},
                "orders": {"confirmed": self.orders["confirmed"], "failed": self.orders["failed"],
                           "unfinished": self.orders["unfinished"],
                           "end_to_end_s": {"count": self.order_seconds.count,
                                            **{k: _round(v, 2) for k, v in
                                               self.order_seconds.percentiles(50, 95).items()}}},
                "errors": dict(self.errors.most_common()),
                "error_examples": {k: list(v) for k, v in self.examples.items()},
            }
        if config is not None:
            result["config"] = {"pattern": config.pattern, "users": config.users,
                                "seed": config.seed, "think_time_s": config.think_time_s,
                                "duration_s": config.duration_s, "journeys": config.journeys,
                                "target": config.describe_rate()}
        result["slo"] = evaluate_slo(result)
        return result


def _order_seconds(order: dict[str, Any]) -> float | None:
    """Created to confirmed (or failed), from the order's own timestamps: exact, not polled."""
    stamps = order.get("timestamps") or {}
    start, end = stamps.get("pending"), stamps.get("confirmed") or stamps.get("failed")
    if not (start and end):
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def evaluate_slo(summary: dict[str, Any]) -> dict[str, Any]:
    """The guide's three targets against a summary; a target without data is not judged."""
    checks = [
        ("checkout p95 < 500 ms", summary["latency_ms"]["checkout"]["p95"], SLO_CHECKOUT_P95_MS,
         "ms", lambda v, t: v < t),
        ("success > 99.9 %", summary["journeys"]["success_pct"], SLO_SUCCESS_PCT, "%",
         lambda v, t: v > t),
        ("order processing p95 < 10 s", summary["orders"]["end_to_end_s"]["p95"],
         SLO_ORDER_P95_S, "s", lambda v, t: v < t),
    ]
    results = [{"target": name, "actual": actual, "unit": unit,
                "met": None if actual is None else bool(test(actual, limit))}
               for name, actual, limit, unit, test in checks]
    return {"checks": results, "met": all(r["met"] is not False for r in results)}
