"""scripts/check_stack.py, the check a learner runs after `docker compose up -d`, run against the
native stack with nothing but the standard library: everything it can check natively passes,
Grafana and the gateway's span are reported as not applicable, and a component that does not
answer is a failed check with its reason, never a traceback."""

import json
import subprocess
import sys

import pytest

from labctl.config import ROOT, LabConfig
from labctl.proc import free_port

pytestmark = pytest.mark.stack
SCRIPT = ROOT / "scripts" / "check_stack.py"
JOBS = ("api", "worker", "rabbitmq", "postgres", "nginx", "alertmanager", "prometheus")


def check_stack(lab: LabConfig, *options: str) -> tuple[int, dict, str]:
    # -I -S: no site-packages and no environment, so only the standard library is there.
    argv = [sys.executable, "-I", "-S", str(SCRIPT), "--json",
            "--base-url", lab.url("GATEWAY_PORT"), "--prometheus-url", lab.url("PROMETHEUS_PORT"),
            "--jaeger-url", lab.url("JAEGER_UI_PORT"), *options]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=170, cwd=ROOT)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def by_check(report: dict) -> dict[tuple[str, str], dict]:
    return {(r["component"], r["check"]): r for r in report["results"]}


def test_the_native_stack_passes_every_check_that_applies(lab):
    # The automatic choice is the lab's run mode: native, the suite's (and nothing listens on
    # this port, so no Grafana would say otherwise).
    rc, report, stderr = check_stack(lab, "--grafana-url", f"http://127.0.0.1:{free_port()}")
    failed = [r for r in report["results"] if r["status"] == "fail"]
    assert (rc, failed, stderr) == (0, [], "")
    assert report["mode"] == "native"
    results = by_check(report)
    for job in JOBS:
        assert results[("prometheus", f"target {job} up")]["status"] == "ok", job
    assert [r["status"] for r in report["results"] if r["component"] == "grafana"] == ["n/a"] * 3
    assert results[("gateway", "span in the trace")]["status"] == "n/a"
    confirmed = [r for r in report["results"]
                 if r["component"] == "purchase" and r["check"].endswith("confirmed")]
    assert [r["status"] for r in confirmed] == ["ok"]
    assert results[("jaeger", "one trace through api, worker")]["status"] == "ok"
    assert results[("jaeger", "knows the services")]["status"] == "ok"


def test_what_does_not_answer_is_a_failed_check_with_its_reason(lab):
    grafana = f"http://127.0.0.1:{free_port()}"
    rc, report, stderr = check_stack(lab, "--mode", "compose", "--grafana-url", grafana,
                                     "--timeout", "10")
    assert (rc, stderr) == (1, "")
    failed = {(r["component"], r["check"]): r["detail"]
              for r in report["results"] if r["status"] == "fail"}
    # Compose mode asks Grafana, and a span of the gateway that native nginx cannot make.
    assert failed.keys() == {
        ("grafana", f"healthy at {grafana}"),
        ("jaeger", "one trace through gateway, api, worker"),
        ("jaeger", "knows the services"),
    }
    assert "unreachable" in failed[("grafana", f"healthy at {grafana}")]
    assert "missing kodekloud-record-store-gateway" in failed[("jaeger", "knows the services")]
