"""The load test's ramp (load-test --ramp): its steps, its per-step table, its options."""

import argparse
import json

import pytest

from labkit import ramp
from tests.unit.test_load_model import script, store  # noqa: F401 - the fake store fixture


def test_a_ramp_climbs_in_steps_and_holds_its_last():
    cfg = ramp.RampConfig("http://x", ramp=(120.0, 600.0, 160.0), step_s=30.0)
    assert cfg.rates_per_min == [120, 280, 440, 600]
    assert cfg.ramp_duration_s == 120 and cfg.peak_rate_per_s * 60 == 600
    assert [cfg.rate_per_s(t) * 60 for t in (0, 29.9, 30, 95, 500)] == pytest.approx(
        [120, 120, 280, 600, 600])
    assert cfg.describe_rate() == "a ramp of 120 -> 600 journeys/min in 4 steps of 30 s"
    assert ramp.RampConfig("http://x", ramp=(60.0, 60.0, 10.0)).rates_per_min == [60]


@pytest.mark.parametrize("bad", ["60:600", "a:b:c", "600:60:10", "0:60:10", "60:600:0",
                                 "1:1000:1"])
def test_a_ramp_that_makes_no_sense_is_refused(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        ramp.parse_ramp(bad)


def test_the_table_names_the_highest_step_within_the_slo():
    rows = [{"step": i + 1, "journeys_per_min": r, "started_at": "2026-01-01T10:00:00+00:00",
             "checkouts_per_s": c, "checkout_p95_ms": 20.0, "order_p95_s": o, "errors": 0,
             "slo_met": o < 10}
            for i, (r, c, o) in enumerate([(120, 0.5, 5.1), (240, 1.1, 5.3), (360, 1.6, 12.0)])]
    lines = ramp.render_steps(rows)
    assert lines[-1] == ("  highest step within the SLO: 2 (1.1 checkouts/s accepted); the SLO "
                         "was first missed at step 3")
    assert "MISSED" in lines[-2] and "12.0 s" in lines[-2]
    assert ramp.render_steps(rows[:2])[-1].endswith("ramp higher to find the limit")


def test_the_script_ramps_and_reports_each_step(store, tmp_path):  # noqa: F811
    out = tmp_path / "ramp.json"
    r = script("load-test", "--base-url", store.url, "--ramp", "120:240:120", "--step", "2",
               "--think-time", "0", "--seed", "3", "--json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "a ramp of 120 -> 240 journeys/min in 2 steps of 2 s" in r.stdout
    assert "step 1/2: 120 journeys/min" in r.stdout and "Ramp, per step" in r.stdout
    steps = json.loads(out.read_text())["steps"]
    assert [s["journeys_per_min"] for s in steps] == [120, 240]
    assert all(s["started_at"] for s in steps), steps
    refused = script("load-test", "--ramp", "1:2:1", "--duration", "5")
    assert refused.returncode == 2 and "not allowed with argument" in refused.stderr
