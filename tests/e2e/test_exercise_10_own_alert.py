"""Exercise 10 as its README runs it: a bad rule file is refused by `./lab rules load` with
nothing loaded; an alert that holds without any condition (`expr: vector(1)`) is refused by the
check's "not before its condition" step; then the learner's own alert on failing orders, with
its promtool test, loaded, triggered (declined payments), read off Prometheus, answered right
and wrong, switched off and unloaded. About 100 s of stack time (its `for:` is 15 s, its
condition needs 20 s of failures to come and 20 s to go)."""

import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from labkit.own_rules import LEARNER_DIR
from tests.exercise_steps import (
    assert_passes,
    assert_wrong_answers_get_hints,
    check,
    failing,
    firing_began,
    prometheus_range,
    shopping,
    utc_clock,
)
from tests.helpers import get_json, lab_command, lab_run, wait_for

# Alone: on the second stack, beside the disruptive phase (the suite balances the two).
pytestmark = [pytest.mark.stack, pytest.mark.disruptive, pytest.mark.alone,
              pytest.mark.timeout(600)]

NAME = "LabTestOrdersFailing"
RATE = 'sum(rate(recordstore_orders_completed_total{job="worker",status="failed"}[20s]))'
RULES = f"""groups:
  - name: my-alerts
    rules:
      - alert: {NAME}
        expr: {RATE} > 0
        for: 15s
        labels:
          severity: warning
        annotations:
          summary: "orders fail: {{{{ $value }}}} a second"
"""
TEST = f"""rule_files: [orders.yml]
evaluation_interval: 5s
tests:
  - interval: 5s
    input_series:
      - series: recordstore_orders_completed_total{{job="worker",status="failed"}}
        values: 0 0 0 0 0 1 2 3 4 5 6 7 8 9 10 11
    alert_rule_test:
      - eval_time: 20s
        alertname: {NAME}
        exp_alerts: []
      - eval_time: 60s
        alertname: {NAME}
        exp_alerts:
          - exp_labels: {{severity: warning}}
            exp_annotations: {{summary: "orders fail: 0.2 a second"}}
"""
ALWAYS = """groups:
  - name: always
    rules:
      - alert: LabTestAlwaysFiring
        expr: vector(1)
        for: 15s
"""
BAD = """groups:
  - name: broken
    rules:
      - alert: LabTestBroken
        expr: sum(rate(recordstore_orders_completed_total[1m]) > 0
"""


def learner_groups(lab) -> list[dict]:
    groups = get_json(lab.url("PROMETHEUS_PORT", "/api/v1/rules"))["data"]["groups"]
    return [g for g in groups if f"/{LEARNER_DIR}/" in g["file"]]


def instant(lab, expr: str) -> list[dict]:
    return get_json(lab.url("PROMETHEUS_PORT", f"/api/v1/query?query={quote(expr)}"))["data"][
        "result"]


def test_a_bad_rule_file_is_refused_with_its_line_and_nothing_loaded(lab, tmp_path: Path):
    bad = tmp_path / "broken.yml"
    bad.write_text(BAD)
    r = lab_run(lab, "rules", "load", str(bad))
    assert r.returncode == 1 and "nothing was loaded" in r.stderr, r.stdout + r.stderr
    assert "5:" in r.stderr and "parse error" in r.stderr, r.stderr  # line 5, what is wrong
    assert learner_groups(lab) == []
    assert not (lab.home / "prometheus" / LEARNER_DIR / "broken.yml").exists()


def test_an_alert_without_a_condition_is_refused_by_the_check(lab, tmp_path: Path):
    always = tmp_path / "always.yml"
    always.write_text(ALWAYS)
    since = time.time()
    lab_command(lab, "rules", "load", str(always))
    try:
        assert [g["name"] for g in learner_groups(lab)] == ["always"]
        seen = {}

        def refused() -> bool:  # once the alert's pending line is on the check's graph
            seen["report"] = check(lab, "10", since)[1]
            return "held at every moment" in failing(seen["report"]).get(4, "")

        wait_for(refused, 40, lambda: f"step 4 to refuse the alert: {seen}", interval_s=2)
    finally:
        lab_command(lab, "rules", "unload")
    assert learner_groups(lab) == []


@pytest.fixture
def unloaded(lab):
    """Whatever happens, none of the test's rules stays loaded for the tests after it."""
    yield
    lab_run(lab, "rules", "unload")


def test_the_learners_own_alert_goes_pending_then_firing_and_the_check_passes(
        lab, chaos, unloaded, tmp_path: Path):
    rules, test = tmp_path / "orders.yml", tmp_path / "orders.test.yml"
    rules.write_text(RULES)
    test.write_text(TEST)
    wait_for(lambda: not instant(lab, f"{RATE} > 0"), 60, "no failed order in the last 20 s")
    since = time.time()
    loaded = lab_run(lab, "rules", "load", str(rules))
    assert loaded.returncode == 0 and "orders.test.yml" in loaded.stdout, loaded.stderr
    assert [g["name"] for g in learner_groups(lab)] == ["my-alerts"]
    assert (lab.home / "prometheus" / LEARNER_DIR / "orders.yml").read_text() == RULES

    chaos("payment_failure_rate=1")
    with shopping(lab, every_s=0.5, product_ids=(1, 2, 3)):
        fired = wait_for(lambda: firing_began(lab, since).get(NAME), 90, f"{NAME} to fire")
    # What the learner reads: the firing line's start, and the expression's graph there.
    pending = [s for s in prometheus_range(lab, f'ALERTS{{alertname="{NAME}"}}', since)
               if s["metric"]["alertstate"] == "pending"]
    assert pending and float(pending[0]["values"][0][0]) < fired, pending
    at_firing = [float(v) for s in prometheus_range(lab, RATE, since) for t, v in s["values"]
                 if abs(float(t) - fired) <= 2.5]
    assert at_firing and at_firing[0] > 0, at_firing
    right = {"alertname": NAME, "fired_at": utc_clock(fired)[:5], "value": f"{at_firing[0]:.3g}"}

    lab_run(lab, "chaos", "reset")
    wait_for(lambda: not instant(lab, f"{RATE} > 0"), 60, "the failures to leave the 20 s rate")
    lab_command(lab, "rules", "unload")
    assert learner_groups(lab) == []
    assert json.loads((lab.home / "own-rules.json").read_text())["loads"][-1]["unloaded_at"]
    assert_passes(lab, "10", since, wait_s=30, answers=right)
    assert_wrong_answers_get_hints(lab, "10", since, right, {
        "alertname": "HighOrderFailureRate", "fired_at": utc_clock(fired - 600)[:5],
        "value": "1000"})
