"""Acceptance: scripts/trace_purchase_journey.py on the native stack, run with the system
`python3` (the script is standard library only): one traced journey, a load test whose counts
match the API's metrics, the graceful report with the database stopped, and `./lab traffic`."""

import json
import re
import subprocess
import urllib.parse
import uuid
from pathlib import Path

import httpx
import pytest

from labctl import stack, traffic
from labctl.config import ROOT, LabConfig, load
from tests.helpers import get_json, lab_run, wait_for

pytestmark = pytest.mark.stack
SCRIPT = ROOT / "scripts" / "trace_purchase_journey.py"
WORKER = "kodekloud-record-store-worker"


def journey_script(lab: LabConfig, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    argv = ["python3", str(SCRIPT), *args, "--base-url", lab.url("GATEWAY_PORT"),
            "--jaeger-url", lab.url("JAEGER_UI_PORT"), "--mode", "native"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def waterfall_rows(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(r"\s+start\s+duration", ln))
    end = lines.index("", start)
    return lines[start + 1:end]


def accepted_checkouts(lab: LabConfig) -> float:
    text = httpx.get(lab.url("API_PORT", "/metrics"), timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("recordstore_checkouts_total{") and 'outcome="accepted"' in line)


def test_one_journey_prints_the_waterfall_of_its_trace(lab, tmp_path: Path):
    cid = f"e2e-script-{uuid.uuid4().hex[:10]}"
    out = tmp_path / "journey.json"
    r = journey_script(lab, "--correlation-id", cid, "--json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(out.read_text())
    trace_id = result["trace_id"]
    assert result["outcome"] == "confirmed" and result["correlation_id"] == cid
    assert [s["status"] for s in result["steps"]] == [200, 200, 202, 200]
    assert all(s["correlation_id"] == cid for s in result["steps"])

    assert f"correlation id  {cid}" in r.stdout and f"trace id    {trace_id}" in r.stdout
    assert result["trace"]["complete"] and result["trace"]["services"] == [
        "kodekloud-record-store-api", WORKER]
    rows = waterfall_rows(r.stdout)
    assert len(rows) == result["trace"]["spans"]
    by_service = {}
    for row in rows:
        _, _, _, _, service, component, rest = row.split(None, 6)
        operation = re.split(r"\s+\|", re.sub(r"^[|`\- ]*", "", rest))[0]  # no tree, no bar
        by_service.setdefault(service, set()).add(operation)
        assert component in {"api", "worker", "database", "queue"}
    assert {"POST /checkout", "checkout_order"} <= by_service["api"]
    assert {"process_order", "authorize_payment", "reserve_stock",
            "send_email"} <= by_service["worker"]
    assert "user-facing  POST /checkout answered" in r.stdout
    assert f"./lab logs api | grep {cid}" in r.stdout
    assert f"/api/traces/{trace_id}" in r.stdout

    # The waterfall is the trace Jaeger holds for this correlation id, and only that one.
    query = urllib.parse.urlencode({"service": WORKER,
                                    "tags": json.dumps({"recordstore.correlation_id": cid})})
    found = get_json(lab.url("JAEGER_UI_PORT", f"/api/traces?{query}"))["data"]
    assert [t["traceID"] for t in found] == [trace_id]
    assert len(found[0]["spans"]) == len(rows)


@pytest.mark.disruptive  # alone: other tests' checkouts would move the API's counter too
def test_a_load_test_counts_what_the_api_counted(lab, tmp_path: Path):
    out = tmp_path / "load.json"
    before = accepted_checkouts(lab)
    r = journey_script(lab, "load-test", "--journeys", "20", "--seed", "1", "--users", "300",
                       "--think-time", "0.05", "--json", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    after = accepted_checkouts(lab)
    results = json.loads(out.read_text())
    assert results["journeys"]["started"] == 20 == results["journeys"]["finished"]
    assert results["errors"] == {}, results["error_examples"]
    accepted = results["checkouts"]["accepted"]
    assert accepted >= 1
    assert after - before == accepted
    assert results["orders"]["confirmed"] == accepted
    assert "every target met" in r.stdout


@pytest.mark.disruptive
def test_with_the_database_stopped_the_503s_are_reported_with_their_ids(lab, gateway, tmp_path):
    cid = f"e2e-dbdown-{uuid.uuid4().hex[:10]}"
    stopped = lab_run(lab, "stop", "db")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    try:
        r = journey_script(lab, "--correlation-id", cid, "--trace-timeout", "10")
        assert r.returncode == 1, r.stdout + r.stderr  # documented: the journey failed
        assert "Traceback" not in r.stdout + r.stderr
        refused = [ln.split()[0] for ln in r.stdout.splitlines()
                   if "503 database_unavailable" in ln and f"correlation id {cid}" in ln]
        assert refused == ["GET", "GET", "POST"]
        assert "FAILED: no order was placed" in r.stdout
        # The refused checkout's trace shows where it broke: the database connection.
        assert any(" database " in row and "connect" in row and "ERROR" in row
                   for row in waterfall_rows(r.stdout))

        out = tmp_path / "load.json"
        load = journey_script(lab, "load-test", "--journeys", "5", "--users", "600",
                              "--think-time", "0", "--seed", "2", "--slo", "--json", str(out))
        assert load.returncode == 1 and "Traceback" not in load.stdout + load.stderr
        results = json.loads(out.read_text())
        assert results["errors"]["503 database_unavailable"] >= 5
        example = results["error_examples"]["503 database_unavailable"][0]
        assert example["correlation_id"].startswith("load-")
        assert example["correlation_id"] in load.stdout
    finally:
        lab_run(lab, "start", "db")

        def healthy() -> bool:
            try:
                return gateway.get("/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the API to report the database healthy again")


@pytest.mark.disruptive  # alone: its shoppers would move the counters other tests read
def test_lab_traffic_sends_background_shoppers_until_stopped(lab):
    log = lab.logs / "traffic.log"
    started = lab_run(lab, "traffic", "start")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        assert lab_run(lab, "traffic", "status").returncode == 0
        prefix = re.findall(r"correlation ids (load-[0-9a-f]+)-<n>", log.read_text())[-1]
        gateway_log = lab.logs / "gateway.log"
        wait_for(lambda: f'"correlation_id":"{prefix}-' in gateway_log.read_text(), 60,
                 "a background shopper's request in the gateway's access log")
    finally:
        stopped = lab_run(lab, "traffic", "stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert lab_run(lab, "traffic", "status").returncode == 3
    assert "Summary after" in log.read_text()  # it summed up on SIGTERM


def test_lab_down_stops_the_traffic_too(tmp_path, monkeypatch):
    env = {**stack.isolated_environment(tmp_path / "home"), "PATH": load().env["PATH"]}
    cfg = load(env)  # free ports: nothing answers, and no other home's component is touched
    monkeypatch.setattr(stack, "STOP_ORDER", [])
    traffic.start(cfg)
    assert traffic.status(cfg)
    stack.down(cfg)
    assert not traffic.status(cfg)
