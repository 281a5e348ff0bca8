"""The measurements: fixed arrival rates, the highest rate within the latency bound, the
pipeline's own overhead, and how fast the worker drains a backlog. One `Bench` per stack."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.floors import EMPTY_ROUTE
from bench.httpload import LoadResult, Request, percentile, run_open_loop
from bench.stack import Stack, cpu_by_component

LATENCY_BOUND_MS = 100.0  # "fast enough": the capacity is the highest rate with p95 under it
BROWSE_PATHS = (  # what a shopper's catalog pages ask for, in turn
    "/products?page=1&page_size=20",
    "/products?genre=Jazz&page=1&page_size=20",
    "/products?page=2&page_size=20",
    "/products?q=love&page=1&page_size=20",
)
PIPELINE_RATE = 5.0  # orders/s: slow enough that no order waits for another
BACKLOG_RATE = 100.0  # orders/s while the worker is stopped (it also warms the API up)
KINDS = ("checkout", "browse", "empty")  # empty: the web stack's floor (bench.floors)
SPACING = 7919  # a prime: consecutive checkouts spread over the whole catalog


@dataclass(frozen=True)
class Plan:
    rates: list[float]
    duration_s: float
    rounds: int
    search_steps: int  # extra runs that narrow the highest rate within the bound
    pipeline_orders: int
    backlog: int
    warmup_s: float
    settle_timeout_s: float = 180.0
    max_rate: float = 1600.0


@dataclass
class Run:
    """One load run and the CPU every component of the lab used meanwhile."""

    kind: str
    load: LoadResult
    cpu_s: dict[str, float]

    @property
    def passed(self) -> bool:
        p95 = percentile(self.load.latencies_ms, 95)
        return self.load.error_count == 0 and p95 is not None and p95 < LATENCY_BOUND_MS


@dataclass
class ModeRound:
    """Everything measured in one round with telemetry on or off."""

    telemetry: bool
    sweeps: dict[str, list[Run]] = field(default_factory=dict)
    probes: list[Run] = field(default_factory=list)
    capacity: float | None = None  # highest checkout rate that stayed within the bound
    capacity_failed_at: float | None = None  # lowest rate that did not
    floor_probes: list[Run] = field(default_factory=list)
    floor_capacity: float | None = None  # the same for the empty route
    floor_failed_at: float | None = None
    pipeline_ms: list[float] = field(default_factory=list)
    pipeline_failed: int = 0
    backlog_placed: int = 0
    backlog_confirmed: int = 0
    drain_s: float = 0.0
    drain_cpu_s: dict[str, float] = field(default_factory=dict)
    drain_cpu_orders: int = 0  # the orders drain_cpu_s was spent on


class Bench:
    def __init__(self, stack: Stack, plan: Plan, say: Callable[[str], None]) -> None:
        self.stack, self.plan, self.say = stack, plan, say
        self.products = stack.product_ids()

    def checkout(self, i: int) -> Request:
        product = self.products[i * SPACING % len(self.products)]
        return Request("POST", "/checkout", json.dumps({"product_id": product}).encode(), 202)

    @staticmethod
    def browse(i: int) -> Request:
        return Request("GET", BROWSE_PATHS[i % len(BROWSE_PATHS)])

    @staticmethod
    def empty(_: int) -> Request:
        return Request("GET", EMPTY_ROUTE)

    def run(self, kind: str, rate: float, duration_s: float) -> Run:
        """Load at one rate, with the CPU every component of the lab used meanwhile."""
        make = {"checkout": self.checkout, "browse": self.browse, "empty": self.empty}[kind]
        before = self.stack.processes()
        load = run_open_loop(self.stack.url(), rate, duration_s, make)
        run = Run(kind, load, cpu_by_component(before, self.stack.processes()))
        p = [percentile(load.latencies_ms, q) for q in (50, 95, 99)]
        shown = " / ".join("-" if v is None else f"{v:.1f}" for v in p)
        self.say(f"  {kind:<8} {rate:>6.0f}/s  p50/p95/p99 {shown} ms  "
                 f"errors {load.error_count}/{load.sent}")
        return run

    def mode_round(self, telemetry: bool) -> ModeRound:
        """Switch the API and the worker to this mode, then measure everything once.

        Checkout latency is the request's path (gateway, API, database, broker): the worker is
        stopped meanwhile, so that it does not compete for the same cores, and what it would
        have processed is discarded. Its own throughput is measured on a backlog afterwards."""
        plan, result = self.plan, ModeRound(telemetry)
        self.say(f"telemetry {'on' if telemetry else 'off'}: restarting the API, worker stopped")
        self.stack.settle(plan.settle_timeout_s)
        self.stack.stop_worker()
        self.stack.restart_api(telemetry)
        for make in (self.checkout, self.browse):  # first requests pay for imports and caches
            run_open_loop(self.stack.url(), 25, plan.warmup_s, make)
        for kind in KINDS:
            result.sweeps[kind] = [self.run(kind, r, plan.duration_s) for r in plan.rates]
        result.capacity, result.capacity_failed_at = self.search_capacity(
            "checkout", result.sweeps["checkout"], result.probes)
        result.floor_capacity, result.floor_failed_at = self.search_capacity(
            "empty", result.sweeps["empty"], result.floor_probes)
        self.stack.discard_unprocessed()
        self.drain(result)
        self.pipeline(result)
        return result

    def drain(self, result: ModeRound) -> None:
        """Orders per second the worker drains from a backlog placed while it was stopped."""
        after = self.stack.last_order_id()
        run_open_loop(self.stack.url(), BACKLOG_RATE, self.plan.backlog / BACKLOG_RATE,
                      self.checkout)
        self.stack.start_worker(result.telemetry)
        # CPU from here on, per order still open: the worker's start-up is not its throughput.
        before, result.drain_cpu_orders = self.stack.processes(), self.stack.open_orders()
        self.stack.wait_final(after, self.plan.settle_timeout_s)
        result.drain_cpu_s = cpu_by_component(before, self.stack.processes())
        result.backlog_placed, result.backlog_confirmed, result.drain_s = (
            self.stack.drain_figures(after))
        rate = result.backlog_confirmed / result.drain_s if result.drain_s else 0.0
        self.say(f"  worker   drained {result.backlog_confirmed} of {result.backlog_placed} "
                 f"in {result.drain_s:.2f}s: {rate:.0f} orders/s")

    def search_capacity(self, kind: str, sweep: list[Run], probes: list[Run]
                        ) -> tuple[float | None, float | None]:
        """The highest rate within the bound: from the sweep, then doubling past the last rate
        that passed, then halving the gap to the first that did not; and that first rate."""
        lo: float | None = None
        hi: float | None = None
        for run in sorted(sweep, key=lambda r: r.load.rate):
            if not run.passed:
                hi = run.load.rate
                break
            lo = run.load.rate
        for _ in range(self.plan.search_steps):
            if hi is None:
                rate = min(2 * (lo or 0), self.plan.max_rate)
                if rate <= (lo or 0):
                    break
            else:
                rate = float(round(((lo or 0) + hi) / 2))
                if rate in (lo or 0, hi) or hi - (lo or 0) <= 0.05 * hi:
                    break
            probe = self.run(kind, rate, self.plan.duration_s)
            probes.append(probe)
            if probe.passed:
                lo = rate
            else:
                hi = rate
        return lo, hi

    def pipeline(self, result: ModeRound) -> None:
        """Created -> confirmed with no simulated delays, at a rate where orders do not queue."""
        after = self.stack.last_order_id()
        load = run_open_loop(self.stack.url(), PIPELINE_RATE,
                             self.plan.pipeline_orders / PIPELINE_RATE, self.checkout)
        self.stack.wait_final(after, self.plan.settle_timeout_s)
        result.pipeline_ms, result.pipeline_failed = self.stack.created_to_confirmed_ms(after)
        p50, p95 = (percentile(result.pipeline_ms, q) for q in (50, 95))
        self.say(f"  pipeline {len(result.pipeline_ms)} of {load.sent} orders confirmed, "
                 f"created -> confirmed p50 {p50 or 0:.1f} ms, p95 {p95 or 0:.1f} ms")
