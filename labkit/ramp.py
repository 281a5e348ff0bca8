"""The load test's ramp (load-test --ramp FROM:TO:STEP --step S): journeys a minute from FROM to
TO, STEP more every S seconds, and per step what the shoppers who arrived in it saw (checkouts
a second accepted, checkout p95, orders' end-to-end p95, errors) against the SLO, so that the
highest rate the shop takes within its objectives can be read off one run."""

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .loadgen import LoadTest
from .output import say
from .patterns import LoadConfig
from .stats import Stats, evaluate_slo

MAX_STEPS = 40


def parse_ramp(value: str) -> tuple[float, float, float]:
    """FROM:TO:STEP, journeys a minute: 0 < FROM <= TO, STEP > 0, at most 40 steps."""
    try:
        start, stop, step = (float(part) for part in value.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            "must be FROM:TO:STEP in journeys a minute, e.g. 120:600:120") from None
    if not 0 < start <= stop or step <= 0:
        raise argparse.ArgumentTypeError("must have 0 < FROM <= TO and STEP > 0")
    if (stop - start) / step + 1 > MAX_STEPS:
        raise argparse.ArgumentTypeError(f"makes more than {MAX_STEPS} steps")
    return start, stop, step


@dataclass(frozen=True)
class RampConfig(LoadConfig):
    """A load test whose rate climbs in steps (journeys a minute), one step every `step_s`."""

    ramp: tuple[float, float, float] = (60.0, 600.0, 60.0)
    step_s: float = 30.0

    @property
    def rates_per_min(self) -> list[float]:
        start, stop, step = self.ramp
        count = int((stop - start) / step + 1e-9) + 1
        return [start + i * step for i in range(count)]

    @property
    def ramp_duration_s(self) -> float:
        return len(self.rates_per_min) * self.step_s

    @property
    def peak_rate_per_s(self) -> float:
        return max(self.rates_per_min) / 60

    def step_at(self, elapsed_s: float) -> int:
        """The step (0-based) running at this moment of the run."""
        return min(int(elapsed_s // self.step_s), len(self.rates_per_min) - 1)

    def rate_per_s(self, elapsed_s: float) -> float:
        return self.rates_per_min[self.step_at(elapsed_s)] / 60

    def describe_rate(self) -> str:
        rates = self.rates_per_min
        return (f"a ramp of {rates[0]:g} -> {rates[-1]:g} journeys/min in {len(rates)} steps of "
                f"{self.step_s:g} s")


class Both:
    """Records what a shopper saw in the run's stats and in its step's."""

    def __init__(self, *stats: Stats) -> None:
        self._stats = stats

    def __getattr__(self, name: str) -> Any:
        def each(*args: Any, **kwargs: Any) -> None:
            for stats in self._stats:
                getattr(stats, name)(*args, **kwargs)
        return each


class RampLoadTest(LoadTest):
    """A load test whose shoppers also count in the stats of the step they arrived in."""

    config: RampConfig

    def __init__(self, config: RampConfig, correlation_prefix: str) -> None:
        super().__init__(config, correlation_prefix)
        self.steps = [Stats() for _ in config.rates_per_min]
        self.step_started: list[datetime] = []

    def recorder(self, elapsed_s: float) -> Any:
        i = self.config.step_at(elapsed_s)
        while len(self.step_started) <= i:  # the first shopper of a step starts it
            self.step_started.append(datetime.now(UTC))
            self.announce(len(self.step_started) - 1)
        return Both(self.stats, self.steps[i])

    def announce(self, i: int) -> None:
        rates = self.config.rates_per_min
        say(f"{self.step_started[i].strftime('%H:%M:%S')} UTC  step {i + 1}/{len(rates)}: "
            f"{rates[i]:g} journeys/min for {self.config.step_s:g} s")

    def step_summaries(self) -> list[dict[str, Any]]:
        """Per step: its rate, when it started, what its shoppers saw and the SLO verdict."""
        rows = []
        for i, stats in enumerate(self.steps):
            s = stats.summary()
            accepted = s["checkouts"]["accepted"]
            rows.append({
                "step": i + 1, "journeys_per_min": self.config.rates_per_min[i],
                "started_at": (self.step_started[i].isoformat(timespec="seconds")
                               if i < len(self.step_started) else None),
                "checkouts_per_s": round(accepted / self.config.step_s, 2),
                "checkout_p95_ms": s["latency_ms"]["checkout"]["p95"],
                "order_p95_s": s["orders"]["end_to_end_s"]["p95"],
                "errors": s["requests"]["errors"] + s["orders"]["unfinished"],
                "slo_met": evaluate_slo(s)["met"] if s["journeys"]["finished"] else None,
            })
        return rows


def render_steps(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", "Ramp, per step (the shoppers who arrived in it)",
             f"  {'step':>4}  {'started':>8}  {'journeys/min':>12}  {'checkouts/s':>11}  "
             f"{'checkout p95':>12}  {'orders p95':>10}  {'errors':>6}  SLO"]
    for r in rows:
        started = r["started_at"][11:19] if r["started_at"] else "-"
        p95 = "-" if r["checkout_p95_ms"] is None else f"{r['checkout_p95_ms']:.0f} ms"
        orders = "-" if r["order_p95_s"] is None else f"{r['order_p95_s']:.1f} s"
        verdict = {True: "met", False: "MISSED", None: "-"}[r["slo_met"]]
        lines.append(f"  {r['step']:>4}  {started:>8}  {r['journeys_per_min']:>12g}  "
                     f"{r['checkouts_per_s']:>11.2f}  {p95:>12}  {orders:>10}  "
                     f"{r['errors']:>6}  {verdict}")
    met = [r for r in rows if r["slo_met"]]
    first_miss = next((r for r in rows if r["slo_met"] is False), None)
    if met and first_miss:
        top = max((r for r in met if r["step"] < first_miss["step"]),
                  key=lambda r: r["checkouts_per_s"], default=None)
        if top:
            lines.append(f"  highest step within the SLO: {top['step']} ({top['checkouts_per_s']:g}"
                         f" checkouts/s accepted); the SLO was first missed at step "
                         f"{first_miss['step']}")
        else:
            lines.append("  the SLO was missed from the first step on")
    elif met:
        lines.append("  every step within the SLO: ramp higher to find the limit")
    elif first_miss:
        lines.append("  the SLO was missed from the first step on: ramp from lower")
    return lines

