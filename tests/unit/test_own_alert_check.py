"""Exercise 10's check against a Prometheus made up here: an alert that went pending once its
condition held passes; one whose expression held all along (`vector(1)`), or that went
pending before its expression held, is refused; the questions follow the alert answered."""

import runpy
import time

import pytest

from labctl.config import ROOT
from labkit.own_rules import write_record
from labkit.probes import NotYet
from tests.unit.test_checks import lab_at_nothing

CHECK = runpy.run_path(str(ROOT / "exercises" / "10-write-your-own-alert" / "check.py"))
T0 = 1_800_000_000.0
EXPR = "rate(failed[20s]) > 0"


class FakePrometheus:
    """ALERTS of one alert, pending from `pending` to `firing`, then firing; its expression
    true from `on` (every point of a 5 s graph), with a value of 0.5."""

    def __init__(self, pending: float, firing: float, on: float) -> None:
        self.pending, self.firing, self.on = pending, firing, on

    def rule_groups(self):
        return []  # unloaded: the record names the alert

    def query_range(self, expr, start, end, step):
        grid = [start + k * step for k in range(int((end - start) // step) + 1)]
        if expr.startswith("ALERTS"):
            series = [{"metric": {"alertname": "Mine", "alertstate": state},
                       "values": [[t, "1"] for t in grid if a <= t < b]}
                      for state, a, b in (("pending", self.pending, self.firing),
                                          ("firing", self.firing, end + 1))]
            return [s for s in series if s["values"]]  # no empty series
        assert expr == EXPR
        return [{"metric": {}, "values": [[t, "0.5"] for t in grid if t >= self.on]}]


def lab_with(tmp_path, monkeypatch, pending: float, firing: float, on: float):
    monkeypatch.setattr(time, "time", lambda: T0 + 120)
    lab = lab_at_nothing()
    lab.since, lab.lab_home, lab.memo, lab.answers = T0, tmp_path, {}, {}
    lab.prometheus = FakePrometheus(T0 + pending, T0 + firing, T0 + on)
    write_record(tmp_path, [{"file": "mine.yml", "source": "/nowhere/mine.yml", "test": None,
                             "loaded_at": T0 + 1, "unloaded_at": T0 + 100,
                             "alerts": [{"name": "Mine", "query": EXPR, "for_s": 15}]}])
    return lab


def test_an_alert_pending_once_its_condition_held_passes(tmp_path, monkeypatch):
    lab = lab_with(tmp_path, monkeypatch, pending=25, firing=40, on=20)
    assert CHECK["pending_then_firing"](lab) == "your alert went pending, then firing"
    assert CHECK["not_before_condition"](lab).endswith("once its condition held")
    assert CHECK["fired"](lab) == {"Mine": T0 + 40}
    assert CHECK["value"](lab).accepts("0.5") and not CHECK["value"](lab).accepts("0.7")
    assert CHECK["fired_at"](lab).accepts(time.strftime("%H:%M", time.gmtime(T0 + 40)))


def test_an_alert_whose_expression_always_held_is_refused(tmp_path, monkeypatch):
    lab = lab_with(tmp_path, monkeypatch, pending=5, firing=20, on=0)  # expr: vector(1)
    with pytest.raises(NotYet, match="held at every moment of the window"):
        CHECK["not_before_condition"](lab)


def test_an_alert_pending_before_its_expression_held_is_refused(tmp_path, monkeypatch):
    lab = lab_with(tmp_path, monkeypatch, pending=10, firing=25, on=40)
    with pytest.raises(NotYet, match="went pending before its expression held"):
        CHECK["not_before_condition"](lab)


def test_an_alert_already_active_as_the_window_began_is_not_this_windows(tmp_path, monkeypatch):
    lab = lab_with(tmp_path, monkeypatch, pending=-30, firing=-15, on=-40)
    assert CHECK["fired"](lab) == {}
    with pytest.raises(NotYet, match="already pending or firing"):
        CHECK["not_before_condition"](lab)
