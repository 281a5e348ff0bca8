"""Virtual shoppers for the record store: traffic patterns, journeys, statistics, SLO verdict.

The model is an open one, like a real shop's: shoppers *arrive* at a target rate that a pattern
shapes over time, and each arrival is a virtual user (one thread, its own random generator)
that walks one journey with think time between steps and then leaves. `users` scales the
rate: at a pattern's baseline each user starts about three journeys a minute, so the default
10 users give 30 journeys a minute and a flash sale ramps that to 300.

Everything random derives from one seed: the arrival times and, per shopper n, the journey,
genres, albums and payment methods (`random.Random(f"{seed}:{n}")`), so `--seed` reproduces
a run's mix.
"""

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .shop import FINAL_STATUSES, Shop, Step

BASELINE_JOURNEYS_PER_USER_PER_MIN = 3.0
DEFAULT_CYCLE_S = 600.0  # one pattern cycle when the run has no duration to stretch it over
MAX_IN_FLIGHT = 256  # shoppers at once; beyond it arrivals wait (reported as a lower rate)
ORDER_POLL_S = 1.0
RESERVOIR_SIZE = 20_000  # samples kept per latency series: bounded memory when run forever

# Journey type -> (weight, what the shopper does).
JOURNEYS: dict[str, tuple[float, str]] = {
    "browse": (35, "browse only"),
    "view": (30, "view an album"),
    "abandon": (15, "abandon at checkout"),
    "buy_one": (15, "buy one"),
    "buy_several": (5, "buy several"),
}
PAYMENT_MIX = {"credit_card": 60, "paypal": 20, "apple_pay": 15, "gift_card": 5}
# A genre's pull on shoppers; genres the catalog lists but this does not name weigh 5.
GENRE_POPULARITY = {"Rock": 25, "Jazz": 15, "Electronic": 15, "Hip-Hop": 15, "Soul": 10,
                    "Folk": 8, "Reggae": 7, "Classical": 5}

# The course guide's targets.
SLO_CHECKOUT_P95_MS = 500.0
SLO_SUCCESS_PCT = 99.9
SLO_ORDER_P95_S = 10.0


def _steady(_: float) -> float:
    return 1.0


def _flash_sale(phase: float) -> float:
    """Quiet, a ramp to ten times the traffic, the sale, then quiet again."""
    if phase < 0.2:
        return 1.0
    if phase < 0.4:
        return 1.0 + 9.0 * (phase - 0.2) / 0.2
    return 10.0 if phase < 0.8 else 1.0


def _business_hours(phase: float) -> float:
    """One shop day per cycle, from 08:00 (so traffic shows at once): the morning, a lunch
    peak, the afternoon, the evening, a quiet night."""
    hour = (8 + phase * 24) % 24
    if hour < 7 or hour >= 22:
        return 0.2
    if hour < 9:
        return 0.2 + 0.8 * (hour - 7) / 2
    if 12 <= hour < 14:
        return 1.6
    if hour < 17:
        return 1.2 if hour >= 14 else 1.0
    return 1.0 - 0.8 * (hour - 17) / 5


PATTERNS: dict[str, Callable[[float], float]] = {
    "steady": _steady,
    "flash-sale": _flash_sale,
    "business-hours": _business_hours,
}
PATTERN_PEAK = {"steady": 1.0, "flash-sale": 10.0, "business-hours": 1.6}


@dataclass(frozen=True)
class LoadConfig:
    base_url: str
    pattern: str = "steady"
    users: int = 10
    seed: int = 0
    think_time_s: float = 2.0  # mean pause between a shopper's steps
    duration_s: float | None = None  # stop starting journeys after this long ...
    journeys: int | None = None  # ... or after this many; neither: until stopped
    order_timeout_s: float = 60.0
    request_timeout_s: float = 10.0

    @property
    def cycle_s(self) -> float:
        return self.duration_s or DEFAULT_CYCLE_S

    @property
    def baseline_per_s(self) -> float:
        return self.users * BASELINE_JOURNEYS_PER_USER_PER_MIN / 60

    @property
    def peak_rate_per_s(self) -> float:
        return self.baseline_per_s * PATTERN_PEAK[self.pattern]

    def rate_per_s(self, elapsed_s: float) -> float:
        """The target journey-start rate at this moment of the run."""
        phase = (elapsed_s % self.cycle_s) / self.cycle_s
        return self.baseline_per_s * PATTERNS[self.pattern](phase)

    def describe_rate(self) -> str:
        shape = PATTERNS[self.pattern]
        base = self.users * BASELINE_JOURNEYS_PER_USER_PER_MIN
        start, low = base * shape(0), base * min(shape(i / 240) for i in range(240))
        peak = base * PATTERN_PEAK[self.pattern]
        if start == peak:
            return f"{peak:g} journeys/min"
        lowest = f" (lowest {low:g})" if low < start else ""
        return f"{start:g} -> {peak:g} journeys/min{lowest}"


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
            if step.status:
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


class Shopper:
    """One virtual user: arrives, walks one journey, leaves."""

    def __init__(self, number: int, config: LoadConfig, stats: Stats, stop: threading.Event,
                 correlation_prefix: str) -> None:
        self.number = number
        self.config = config
        self.stats = stats
        self.stop = stop
        self.rng = random.Random(f"{config.seed}:{number}")
        self.shop = Shop(config.base_url, f"{correlation_prefix}-{number}",
                         config.request_timeout_s)
        self.kind = self.rng.choices(list(JOURNEYS), [w for w, _ in JOURNEYS.values()])[0]
        self.favourite = ""
        self.failed = False

    def run(self) -> None:
        journeys = {"browse": self._browse_only, "view": self._view_albums,
                    "abandon": self._abandon_at_checkout, "buy_one": self._buy_one,
                    "buy_several": self._buy_several}
        self.stats.journey_started(self.kind)
        try:
            journeys[self.kind]()
        finally:
            self.stats.journey_finished(self.kind, not self.failed)

    def _browse_only(self) -> None:
        self._browse_more(self._landing(), most=2)

    def _view_albums(self) -> list[dict[str, Any]]:
        items = self._browse_more(self._landing(), most=1)
        return self._view(items, self.rng.randint(1, 3))

    def _abandon_at_checkout(self) -> None:
        if self._view_albums():
            self._think(factor=3)  # reads the total at checkout, then leaves

    def _buy_one(self) -> None:
        self._buy(self._view_albums()[-1:])

    def _buy_several(self) -> None:
        items = self._browse_more(self._landing(), most=1)
        albums = self._view(items, self.rng.randint(2, 4))
        self._buy(self.rng.sample(albums, min(len(albums), self.rng.randint(2, 3))))

    def _do(self, step: Step) -> Step:
        self.stats.step(step)
        if step.error:
            self.failed = True
        return step

    def _think(self, factor: float = 1.0) -> bool:
        """Pause like a person reading the page; False when the run is stopping."""
        pause = self.rng.uniform(0.5, 1.5) * self.config.think_time_s * factor
        return not self.stop.wait(pause)

    def _landing(self) -> list[dict[str, Any]]:
        step = self._do(self.shop.browse(page_size=12))
        if not step.ok or not isinstance(step.body, dict):
            return []
        genres = step.body.get("genres") or []
        if genres:
            weights = [GENRE_POPULARITY.get(g, 5) for g in genres]
            self.favourite = self.rng.choices(genres, weights)[0]
        return list(step.body.get("items") or [])

    def _browse_more(self, items: list[dict[str, Any]], most: int) -> list[dict[str, Any]]:
        """Up to `most` more catalog pages: the favourite genre, a search, a later page."""
        for _ in range(self.rng.randint(0, most)):
            if self.failed or not self._think():
                break
            roll = self.rng.random()
            if roll < 0.6 and self.favourite:
                step = self.shop.browse(genre=self.favourite)
            elif roll < 0.8 and items:
                step = self.shop.browse(q=self.rng.choice(items)["artist"].split()[0])
            else:
                step = self.shop.browse(page=self.rng.randint(2, 4))
            self._do(step)
            if step.ok and isinstance(step.body, dict) and step.body.get("items"):
                items = list(step.body["items"])
        return items

    def _view(self, items: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
        """Open up to `count` albums of the page; the albums as their pages showed them."""
        seen = []
        for item in self.rng.sample(items, min(count, len(items))):
            if self.failed or not self._think():
                break
            step = self._do(self.shop.view(int(item["id"])))
            if step.ok and isinstance(step.body, dict):
                seen.append(step.body)
        return seen

    def _buy(self, albums: list[dict[str, Any]]) -> None:
        orders: dict[int, str] = {}
        for album in albums:
            quantity = 1 if self.rng.random() < 0.8 else 2
            if int(album.get("stock", 0)) < quantity:
                self.stats.no_stock()
                continue
            if self.failed or not self._think():
                break
            method = self.rng.choices(list(PAYMENT_MIX), list(PAYMENT_MIX.values()))[0]
            step = self._do(self.shop.checkout(
                int(album["id"]), quantity, f"shopper{self.number % 500}@example.com", method))
            if step.status == 202 and isinstance(step.body, dict):
                orders[int(step.body["order_id"])] = "pending"
        self._watch(orders)

    def _watch(self, orders: dict[int, str]) -> None:
        """Poll the order pages until every order is final, like a waiting customer."""
        deadline = time.monotonic() + self.config.order_timeout_s
        pending = dict(orders)
        while pending and not self.stop.wait(ORDER_POLL_S) and time.monotonic() < deadline:
            for order_id in list(pending):
                step = self._do(self.shop.order(order_id))
                if not step.ok or not isinstance(step.body, dict):
                    continue
                pending[order_id] = str(step.body.get("status", ""))
                if pending[order_id] in FINAL_STATUSES:
                    del pending[order_id]
                    self.stats.order_final(step.body, self.shop.correlation_id)
                    self.failed = self.failed or step.body.get("status") == "failed"
        timed_out = not self.stop.is_set()
        for order_id, status in pending.items():
            self.stats.order_unfinished(order_id, status, self.shop.correlation_id, timed_out)
            self.failed = self.failed or timed_out


class LoadTest:
    """Starts shoppers at the pattern's rate, on a thread of its own, until it is told to stop
    or its bound (duration or number of journeys) is reached."""

    def __init__(self, config: LoadConfig, correlation_prefix: str) -> None:
        if config.pattern not in PATTERNS:
            raise ValueError(f"unknown pattern {config.pattern!r}")
        self.config = config
        self.stats = Stats()
        self.stop = threading.Event()  # set: no more arrivals, shoppers leave after this step
        self.arrivals_done = threading.Event()
        self.started = 0
        self._prefix = correlation_prefix
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._active = 0
        self._idle = threading.Condition()
        self._pacer = threading.Thread(target=self._arrivals, name="arrivals", daemon=True)

    def start(self) -> None:
        self._pacer.start()

    def elapsed_s(self) -> float:
        return time.monotonic() - self.stats.started

    def _arrivals(self) -> None:
        """A Poisson process at the pattern's rate: thinning of one at the pattern's peak."""
        cfg = self.config
        rng = random.Random(f"{cfg.seed}:arrivals")
        peak = cfg.peak_rate_per_s
        try:
            while not self.stop.wait(rng.expovariate(peak)):
                elapsed = self.elapsed_s()
                if cfg.duration_s is not None and elapsed >= cfg.duration_s:
                    return
                if rng.random() * peak > cfg.rate_per_s(elapsed):
                    continue
                while not self._slots.acquire(timeout=0.5):
                    if self.stop.is_set():
                        return
                shopper = Shopper(self.started, cfg, self.stats, self.stop, self._prefix)
                with self._idle:
                    self._active += 1
                threading.Thread(target=self._visit, args=(shopper,), daemon=True).start()
                self.started += 1
                if cfg.journeys is not None and self.started >= cfg.journeys:
                    return
        finally:
            self.arrivals_done.set()

    def _visit(self, shopper: Shopper) -> None:
        try:
            shopper.run()
        finally:
            self._slots.release()
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def in_flight(self) -> int:
        with self._idle:
            return self._active

    def finished(self) -> bool:
        return self.arrivals_done.is_set() and self.in_flight() == 0

    def shutdown(self, timeout_s: float = 15.0) -> bool:
        """Stop arrivals and shoppers (each leaves after its current request); True if all left
        within the timeout."""
        self.stop.set()
        self._pacer.join(timeout_s)
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout_s)
