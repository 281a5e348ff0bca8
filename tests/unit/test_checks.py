"""The exercises' check library (scripts/labkit/checks.py): windows, verdicts, exit codes."""

import argparse
import json
import os
import subprocess
import sys
import time

import pytest

from labctl.config import ROOT
from labctl.proc import free_port

sys.path.insert(0, str(ROOT / "scripts"))

from labkit.checks import Lab, NotYet, Step, evaluate, parse_since  # noqa: E402


def test_since_takes_durations_unix_and_iso_times():
    now = 1_800_000_000.0
    assert parse_since("90s", now) == now - 90
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2h", now) == now - 7200
    assert parse_since("1799999000", now) == 1_799_999_000
    assert parse_since("2027-01-15T08:00:00+00:00", now) == 1_800_000_000  # that very instant
    with pytest.raises(argparse.ArgumentTypeError, match="--since"):
        parse_since("yesterday", now)


def lab_at_nothing() -> Lab:
    nowhere = f"http://127.0.0.1:{free_port()}"
    return Lab(argparse.Namespace(base_url=nowhere, prometheus_url=nowhere, jaeger_url=nowhere,
                                  receiver_url=nowhere, since=0.0, mode="native"))


def test_each_step_is_judged_on_its_own_and_an_outage_is_a_failed_step():
    def holds(_lab):
        return "fine"

    def not_yet(_lab):
        raise NotYet("not there")

    steps = [Step("a", holds, "-"), Step("b", not_yet, "do b"),
             Step("c", lambda lab: lab.api_healthy(), "start the lab")]
    results = evaluate(lab_at_nothing(), steps)
    assert [(r.number, r.ok) for r in results] == [(1, True), (2, False), (3, False)]
    assert results[1].detail == "not there"
    assert results[2].detail.startswith("no answer:")


def test_the_window_reaches_two_scrapes_before_since():
    lab = lab_at_nothing()
    lab.since = time.time() - 60
    assert lab.window in ("[70s]", "[71s]")


def test_a_check_against_no_lab_fails_with_reasons_not_a_traceback():
    nowhere = f"http://127.0.0.1:{free_port()}"
    r = subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / "exercises" / "02-database-failure" / "check.py"),
         "--json", "--base-url", nowhere, "--prometheus-url", nowhere, "--jaeger-url", nowhere,
         "--receiver-url", nowhere, "--mode", "native"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr == "", r.stderr
    report = json.loads(r.stdout)
    assert not report["ok"] and all(not s["ok"] for s in report["steps"])
    assert all(s["detail"] and s["hint"] for s in report["steps"])


def test_on_kubernetes_a_check_reads_a_component_log_through_kubectl(tmp_path, monkeypatch):
    kubectl = tmp_path / "kubectl"
    kubectl.write_text('#!/bin/sh\n[ "$1 $2" = "logs deploy/api" ] && printf \'a cid-1\\nb\\n\'\n')
    kubectl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    lab = lab_at_nothing()
    lab.mode = "kubernetes"
    assert lab.log_lines("api", "cid-1") == ["a cid-1"]
