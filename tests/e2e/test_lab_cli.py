"""Acceptance: `./lab up` brings a stack to healthy, `./lab down` leaves no process, and the
orders survive. Runs a stack of its own (own home and ports) beside the session's stack."""

import json
import os
import socket
import subprocess
import time

import httpx
import pytest

from labctl.config import ROOT, load
from labctl.stack import isolated_environment, lab_processes
from tests.helpers import wait_for_order

pytestmark = [pytest.mark.stack, pytest.mark.xdist_group("lab-lifecycle")]


def lab(env, *args, timeout=240):
    return subprocess.run([str(ROOT / "lab"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_up_down_up_keeps_orders_and_leaves_nothing_running():
    # Under the repository: as root, the postgres and rabbitmq users must reach it (not /tmp/...).
    home = ROOT / ".lab-test-lifecycle"
    base = {k: v for k, v in os.environ.items() if not k.endswith("_PORT")}
    env = {**base, **isolated_environment(home)}
    cfg = load(env)
    try:
        started = time.monotonic()
        up = lab(env, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "all components healthy" in up.stdout
        print(f"./lab up on a cold home: {time.monotonic() - started:.1f}s")
        again = lab(env, "up")  # harmless the second time
        assert again.returncode == 0, again.stdout + again.stderr

        status = lab(env, "status", "--json")
        assert status.returncode == 0
        assert all(c["healthy"] for c in json.loads(status.stdout))

        with httpx.Client(base_url=cfg.url("GATEWAY_PORT"), timeout=15) as client:
            order_id = client.post("/checkout", json={"product_id": 2}).json()["order_id"]
            wait_for_order(client, order_id)

        down = lab(env, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert lab_processes(cfg) == []
        stopped = json.loads(lab(env, "status", "--json").stdout)
        assert not any(c["running"] for c in stopped)

        up2 = lab(env, "up")
        assert up2.returncode == 0, up2.stdout + up2.stderr
        with httpx.Client(base_url=cfg.url("GATEWAY_PORT"), timeout=15) as client:
            kept = client.get(f"/orders/{order_id}")
            assert kept.status_code == 200 and kept.json()["status"] == "confirmed"
        logs = lab(env, "logs", "api")
        assert logs.returncode == 0 and "order_accepted" in logs.stdout
    finally:
        lab(env, "down", "--volumes")
    assert lab_processes(cfg) == []
    assert not home.exists()


def test_a_failed_start_names_the_component_and_its_log(tmp_path):
    env = {**os.environ, **isolated_environment(tmp_path / "busy")}
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(env["PROMETHEUS_PORT"])))
        blocker.listen()
        result = lab(env, "start", "prometheus")
    assert result.returncode == 1
    assert "prometheus" in result.stderr and "already in use" in result.stderr
