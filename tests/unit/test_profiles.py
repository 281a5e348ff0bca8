"""The profiles `./lab profile` records: what the parser reads from a speedscope file (the
format py-spy writes), what the command prints, that compose mode is refused with why, and
the cpu_burn_ms fault that gives a profile something to find."""

import json
import os
import time

import pytest

from labctl import cli
from labctl.profile import COMPOSE_NOTE, summary
from labkit import profiles
from recordstore import chaos
from recordstore.checkout import score_fraud_risk

FRAMES = [{"name": "<module>", "file": "api/main.py", "line": 1},
          {"name": "checkout", "file": "api/routes/checkout.py", "line": 40},
          {"name": "score_fraud_risk", "file": "recordstore/checkout.py", "line": 68},
          {"name": "verify_product", "file": "recordstore/checkout.py", "line": 50}]


def speedscope(path, *threads):
    """A file as py-spy writes it: one sampled profile per thread, stacks outermost first."""
    doc = {"$schema": "https://www.speedscope.app/file-format-schema.json",
           "shared": {"frames": FRAMES}, "activeProfileIndex": 0, "exporter": "py-spy",
           "profiles": [{"type": "sampled", "name": f"Thread {i}", "unit": "seconds",
                         "startValue": 0, "endValue": 1, "samples": stacks,
                         "weights": [0.01] * len(stacks)} for i, stacks in enumerate(threads)]}
    path.write_text(json.dumps(doc))
    return path


def test_functions_count_every_sample_a_function_is_on_the_stack_in(tmp_path):
    path = speedscope(tmp_path / "api.speedscope.json",
                      [[0, 1, 2], [0, 1, 2], [0, 1, 3]], [[0, 1, 2], [0, 2, 2]])
    assert profiles.samples(path) == 5
    counts = profiles.functions(path)
    assert counts["score_fraud_risk"] == 4  # a recursive stack counts once
    assert counts["<module>"] == 5 and counts["verify_product"] == 1
    assert profiles.self_time(path).most_common(1) == [
        ("score_fraud_risk (recordstore/checkout.py)", 4)]


def test_a_file_that_is_not_a_profile_is_refused(tmp_path):
    bad = tmp_path / "x.speedscope.json"
    for text in ("not json", "{}", json.dumps({"shared": {"frames": []},
                                               "profiles": [{"samples": [[7]]}]})):
        bad.write_text(text)
        with pytest.raises(profiles.ProfileError, match="not a speedscope profile"):
            profiles.functions(bad)


def test_recorded_lists_the_profiles_since_a_time_newest_first(tmp_path):
    old, new = (speedscope(tmp_path / f"{n}{profiles.SUFFIX}", [[0]]) for n in ("old", "new"))
    (tmp_path / "notes.txt").write_text("not a profile")
    now = time.time()
    os.utime(old, (now - 600, now - 600))
    assert profiles.recorded(tmp_path) == [new, old]
    assert profiles.recorded(tmp_path, since=now - 60) == [new]
    assert profiles.recorded(tmp_path / "none") == []


def test_the_summary_leads_with_the_function_that_ran_most(tmp_path):
    path = speedscope(tmp_path / "p.speedscope.json", [[0, 1, 2]] * 3 + [[0, 1, 3]])
    lines = summary(path).splitlines()
    assert lines[0].startswith("4 samples")
    assert lines[1].split() == ["75.0%", "score_fraud_risk", "(recordstore/checkout.py)"]
    assert "idle" in summary(speedscope(tmp_path / "idle.speedscope.json", []))


def test_compose_mode_is_refused_saying_why(monkeypatch, capsys):
    monkeypatch.setenv("LAB_MODE", "compose")
    assert cli.main(["profile", "api", "--seconds", "1"]) == 1
    err = capsys.readouterr().err
    assert COMPOSE_NOTE in err and "SYS_PTRACE" in err and "docker compose exec" in err


def test_the_cpu_burn_fault_takes_0_to_2000_ms():
    assert chaos.validate({"cpu_burn_ms": 300}) == {"cpu_burn_ms": 300.0}
    with pytest.raises(chaos.ChaosError, match="between 0 and 2000"):
        chaos.validate({"cpu_burn_ms": 2001})


def test_the_fraud_score_burns_cpu_not_time_asleep():
    cpu = time.thread_time()
    score = score_fraud_risk("Shopper@Example.com", 0.2)
    # All of it on the CPU (a sleep spends ~0), on a busy machine too (CI ran it beside others).
    assert time.thread_time() - cpu >= 0.2
    assert 0 <= score < 100 and 0 <= score_fraud_risk("shopper@example.com", 0.0) < 100
