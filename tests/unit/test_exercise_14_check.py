"""Exercise 14's check computes its truths from the graphs it reads: a fake lab's graphs here."""

import importlib.util

import pytest

from labctl.config import ROOT
from labkit.probes import NotYet

spec = importlib.util.spec_from_file_location(
    "check14", ROOT / "exercises" / "14-capacity" / "check.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


class Graphs:
    """A lab whose Prometheus graphs are given: {expr: {t: value}}, every 5 s."""

    since_text = "10:00:00"

    def __init__(self, graphs: dict[str, dict[float, float]]) -> None:
        self.graphs, self.memo = graphs, {}

    def graph(self, expr: str) -> dict[float, float]:
        return self.graphs.get(expr, {})


TIMES = range(0, 205, 5)


def ramp(api_busy_at: float | None = None, slots_full_at: float = 70) -> Graphs:
    """1, 2 then 3 checkouts a second (60 s each); orders confirmed after 100 s take 15 s."""
    return Graphs({
        check.RATE: {t: 1.0 if t < 60 else 2.0 if t < 120 else 3.0 for t in TIMES},
        check.CHECKOUT_P95: {t: 0.05 for t in TIMES},
        check.API_CPU: {t: 0.95 if api_busy_at is not None and t >= api_busy_at else 0.3
                        for t in TIMES},
        check.ORDER_P95: {t: 6.0 if t <= 100 else 15.0 for t in TIMES},
        check.HELD: {t: 16.0 if t >= slots_full_at else 5.0 for t in TIMES},
        check.LAG: {t: 6.0 + max(0, t - 100) / 4 for t in TIMES},
    })


def test_the_highest_rate_is_the_last_whose_orders_met_the_objective():
    truth = check.highest_rate(ramp())
    assert truth.shown == "2 checkouts/s (missed from 3)"
    assert truth.accepts("2.3") and truth.accepts("1.6 checkouts/s") and truth.accepts("3.4")
    assert not truth.accepts("1.4") and not truth.accepts("3.5")


def test_no_highest_rate_while_the_objectives_held_all_along():
    lab = ramp()
    lab.graphs[check.ORDER_P95] = {t: 6.0 for t in TIMES}
    with pytest.raises(NotYet, match="held all along"):
        check.highest_rate(lab)


def test_the_resource_first_at_its_limit_in_a_few_words(monkeypatch):
    monkeypatch.setattr(check, "worker_slots", lambda: 16)
    truth = check.saturated_first(ramp(api_busy_at=150))
    assert truth.shown == "worker slots"
    for right in ("worker slots", "the worker's thread pool", "unacked = prefetch x concurrency"):
        assert truth.accepts(right), right
    for wrong in ("db pool", "API CPU", "the worker and the database", "capacity"):
        assert not truth.accepts(wrong), wrong
    lab = ramp(api_busy_at=75)  # within two scrapes: either
    assert check.saturated_first(lab).shown == "api cpu or worker slots"
    assert "never at its limit" in check.not_first(lab, "the database pool")


def test_the_peak_lag_within_its_tolerance():
    truth = check.peak_lag(ramp())
    assert truth.shown == "31 s" and truth.accepts("25") and not truth.accepts("20")
    with pytest.raises(NotYet, match="no order message's age"):
        check.peak_lag(Graphs({}))
