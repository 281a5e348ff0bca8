"""Exercise 14 on the native stack: a ramp of load past the worker's capacity (the slow gateway
lowers it, so that a short ramp on a small machine passes it), its questions answered from the
load test's table and Prometheus's graphs (right: it passes; wrong: hints that never say the
answer). About 2.5 minutes of stack time: 80 s of ramp, up to 25 s more for the shoppers'
orders, the checks while the queue drains."""

import json
from pathlib import Path

import pytest

from labctl.config import LabConfig
from tests.exercise_steps import (
    assert_passes,
    assert_wrong_answers_get_hints,
    before,
    check,
    graph_points,
    journey,
    prometheus_range,
)
from tests.helpers import lab_command

# Alone: on the second stack, beside the disruptive phase (the suite balances the two).
pytestmark = [pytest.mark.stack, pytest.mark.disruptive, pytest.mark.alone]

HELD = 'sum(rabbitmq_queue_messages_unacked{job="rabbitmq",queue=~"orders|emails"})'
# The README's step 5: the share of the cores the API's processes can keep busy that they used.
API_CPU = ('sum(rate(recordstore_api_cpu_seconds_total{job="api"}[30s])) '
           '/ max(recordstore_api_cpu_limit_cores{job="api"})')
POOL_WAITS = 'sum(increase(recordstore_database_errors_total{job="api",reason="busy"}[30s]))'
LAG = 'time() - rabbitmq_detailed_queue_head_message_timestamp{queue="orders"}'


def highest_step_within_the_slo(steps: list[dict]) -> float:
    """The table's answer: the checkouts/s of the best step before the SLO was first missed."""
    missed = next(s["step"] for s in steps if s["slo_met"] is False)
    return max(s["checkouts_per_s"] for s in steps if s["slo_met"] and s["step"] < missed)


def first_at_limit(lab: LabConfig, since: float) -> str:
    """Which resource's graph reached its limit first, as a learner compares them."""
    slots = int(lab.env.get("WORKER_PROCESSES", "2")) * int(lab.env.get("WORKER_CONCURRENCY", "8"))
    limits = {"worker slots": (HELD, slots), "api cpu": (API_CPU, 0.9),
              "db pool": (POOL_WAITS, 1e-9)}
    first = {}
    for name, (expr, limit) in limits.items():
        reached = [float(t) for s in prometheus_range(lab, expr, since)
                   for t, v in s["values"] if v != "NaN" and float(v) >= limit]
        if reached:
            first[name] = min(reached)
    return min(first, key=first.__getitem__)


@pytest.mark.timeout(420)
def test_14_a_ramp_finds_the_highest_rate_within_the_slo_and_what_saturates_first(
        lab, chaos, tmp_path: Path):
    since, [report] = before(lab, "14")
    assert report["questions"][0]["ok"] is False, report
    # 7 s of payment per order: 16 slots take about 2.3 orders a second; the ramp climbs from
    # about 1 to about 3.5 checkouts a second.
    chaos(f"payment_latency_ms={7000 - int(lab.env.get('EMAIL_DELAY_MS', '0'))}")
    out = tmp_path / "ramp.json"
    run = journey(lab, "load-test", "--ramp", "240:720:160", "--step", "20", "--seed", "14",
                  "--order-timeout", "25", "--quiet", "--json", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Ramp, per step" in run.stdout and "SLO was first missed at step" in run.stdout, (
        run.stdout)
    lab_command(lab, "chaos", "reset")
    steps = json.loads(out.read_text())["steps"]
    answers = {"highest_rate": highest_step_within_the_slo(steps),
               "saturated_first": first_at_limit(lab, since),
               "peak_lag_s": round(max(graph_points(lab, LAG, since)))}
    assert answers["saturated_first"] == "worker slots", answers  # the slow gateway's doing
    print(run.stdout, answers, check(lab, "14", since, 0, answers, "--reveal")[1]["questions"])
    assert_wrong_answers_get_hints(lab, "14", since, answers, {
        "highest_rate": 99, "saturated_first": "db pool", "peak_lag_s": 9999})
    assert_passes(lab, "14", since, wait_s=90, answers=answers)
