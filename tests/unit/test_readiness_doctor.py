"""The arithmetic of telemetry readiness and the doctor's verdicts, on given answers (the live
stack's are tests/e2e/test_doctor.py)."""


from labctl.config import ROOT
from labkit import doctor, readiness
from labkit.doctor import BROKEN, OK, SKIPPED, Broken, Doctor
from tests.helpers import run_js


class FakePrometheus:
    """What Prometheus's API answers for rules and a count of samples."""

    def __init__(self, queries: list[str], samples: float) -> None:
        self._rules = [{"query": q, "type": "alerting"} for q in queries]
        self.samples = samples
        self.asked: list[str] = []

    def rules(self):
        return self._rules

    def query(self, expr):
        self.asked.append(expr)
        return [{"metric": {}, "value": [0, str(self.samples)]}]


RULES = ["rate(x[1m]) > 0", "increase(y[5m]) > 1", "sum(rate(z[30m])) / sum(rate(z[6h]))"]


def test_the_windows_are_read_from_the_rules():
    assert readiness.rule_windows(RULES) == [60, 300, 1800, 21600]
    assert readiness.seconds("15s") == 15 and readiness.seconds("2h") == 7200


def test_windows_fill_in_order_and_the_error_budgets_are_not_waited_for():
    # 13 samples 5 s apart: 60 s of data. Panels (4 scrapes) and 1m filled; 5m and 30m not.
    prom = FakePrometheus(RULES, samples=13)
    signal = readiness.windows(prom, 5.0, now=1_000_000.0)
    assert not signal.ready
    assert signal.detail.startswith("panels' rates filled")
    assert "1m" not in signal.detail and "5m fills at" in signal.detail
    assert "30m fills at" in signal.detail and "6h" not in signal.detail
    assert prom.asked == ["min(count_over_time(up[1800s]))"]
    filled = readiness.windows(FakePrometheus(RULES, samples=361), 5.0)
    assert filled.ready and filled.detail.endswith("alert windows up to 30m filled")


def test_no_data_yet_is_not_ready_anywhere():
    signal = readiness.windows(FakePrometheus(RULES, samples=0), 5.0)
    assert not signal.ready and signal.detail.startswith("panels' rates fill at")


def test_ready_only_when_every_signal_is():
    some = readiness.Readiness([readiness.Signal("traces", True, ""),
                                readiness.Signal("targets", False, "down: api")])
    assert not some.ready and some.lines()[0].startswith("telemetry: warming up")
    assert "not yet" in some.lines()[2]


def test_a_signal_breaks_at_its_first_failing_hop_and_the_rest_are_skipped():
    d = Doctor("http://gw", "http://prom", "http://jaeger", "http://recv", lambda s, n: [])

    def fails() -> str:
        raise Broken("the store is gone")

    def never() -> str:
        raise AssertionError("a hop after the break is not tried")

    d.follow("traces", [("emitter", lambda: "made"), ("backend", fails), ("stored", never)])
    assert [(h.hop, h.status) for h in d.hops] == [("emitter", OK), ("backend", BROKEN),
                                                  ("stored", SKIPPED)]
    lines = doctor.report(d.hops)
    assert lines[-1] == "traces breaks at its backend: the store is gone"


def test_the_panel_the_doctor_asks_is_a_dashboards_own_query():
    title, expr = doctor.panel_query()
    assert 'http_requests_total{job="api"' in expr and "$__rate_interval" in expr
    assert title


def run_readiness_js(function: str, argument) -> dict:
    """One of the storefront's readiness.js rules, run in Node."""
    return run_js(ROOT / "nginx" / "html" / "assets" / "readiness.js", function, argument)


def target(job: str, health: str) -> dict:
    return {"labels": {"job": job}, "health": health, "scrapeInterval": "5s"}


SERVICES = [[], ["jaeger-all-in-one"], ["kodekloud-record-store-api", "jaeger-all-in-one"]]
TARGETS = [[], [target("api", "up"), target("worker", "unknown")],
           [target("api", "up"), target("db", "down")], [target("api", "up"), target("x", "up")]]


def test_the_storefront_and_lab_status_tell_readiness_by_one_rule():
    """The page's line (readiness.js) and `./lab status` (readiness.py) agree on every input."""
    for services in SERVICES:
        page = run_readiness_js("tracesSignal", services)
        assert page["ready"] == readiness.traces_signal(services).ready, services
    for active in TARGETS:
        page = run_readiness_js("targetsSignal", active)
        assert page["ready"] == readiness.targets_signal(active).ready, active
    assert [readiness.traces_signal(s).ready for s in SERVICES] == [False, False, True]
    assert [readiness.targets_signal(t).ready for t in TARGETS] == [False, False, False, True]
