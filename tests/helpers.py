"""Helpers shared by the tests: polling with a deadline, JSON over HTTP."""

import argparse
import json
import runpy
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from labctl.config import ROOT
from labkit import http
from labkit.rules import FINAL_STATUSES


def lab_parser() -> argparse.ArgumentParser:
    """./lab's whole parser, as the `lab` script puts it together (labctl's commands and the
    other packages')."""
    return runpy.run_path(str(ROOT / "lab"))["build_parser"]()


def wait_for(check: Callable[[], Any], timeout_s: float, what: str | Callable[[], str],
             interval_s: float = 0.2):
    """Poll until check() returns something truthy; fail with `what` (or what it returns, when
    it is a function: the state seen last) at the deadline."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    what = what() if callable(what) else what
    pytest.fail(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def get_json(url: str) -> Any:
    """The JSON body of a 2xx answer, else None; through labkit's client, the one JSON
    client of the repository (http.Unreachable when nothing answers)."""
    resp = http.get(url, timeout_s=5)
    return resp.json() if resp.ok else None


def wait_for_order(client: httpx.Client, order_id: int, statuses=FINAL_STATUSES,
                   timeout_s: float = 30) -> dict:
    def done():
        body = client.get(f"/orders/{order_id}").json()
        return body if body.get("status") in statuses else None

    return wait_for(done, timeout_s, f"order {order_id} to reach {statuses}")


def metric_sum(exposition: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples in a /metrics text whose labels include `labels`."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def lab_run(lab, *args: str, timeout_s: float = 180) -> subprocess.CompletedProcess:
    """`./lab ARGS` against the test stack (its environment)."""
    return subprocess.run([str(ROOT / "lab"), *args], env=lab.env, capture_output=True,
                          text=True, timeout=timeout_s, cwd=ROOT)


def lab_command(lab, *args: str) -> None:
    """`./lab ARGS`, which must succeed."""
    r = lab_run(lab, *args)
    assert r.returncode == 0, r.stdout + r.stderr


def active_alerts(lab) -> dict[str, str]:
    """The alerts Prometheus has active now: name -> pending or firing."""
    found: dict[str, str] = {}
    for alert in get_json(lab.url("PROMETHEUS_PORT", "/api/v1/alerts"))["data"]["alerts"]:
        name = alert["labels"]["alertname"]
        if found.get(name) != "firing":
            found[name] = alert["state"]
    return found


def fired_since(lab, since: float) -> set[str]:
    """The alerts Prometheus has had firing at some moment since `since` (a time.time())."""
    window = f"{max(1, int(time.time() - since))}s"
    query = quote(f'max by (alertname) (max_over_time(ALERTS{{alertstate="firing"}}[{window}]))')
    result = get_json(lab.url("PROMETHEUS_PORT", f"/api/v1/query?query={query}"))
    return {r["metric"]["alertname"] for r in result["data"]["result"]}


def run_js(module: Path, function: str, argument) -> Any:
    """`function(argument)` of one of the storefront's ES modules, run in Node: its answer,
    through JSON both ways (the argument on stdin, so a large one fits)."""
    node = shutil.which("node")
    if not node:
        pytest.fail("node is needed: ./lab test installs Debian's npm (and node with it)")
    script = (f"import {{ {function} }} from {json.dumps(module.as_uri())};\n"
              "let input = '';\n"
              "process.stdin.on('data', (c) => { input += c; });\n"
              f"process.stdin.on('end', () => console.log(JSON.stringify({function}("
              "JSON.parse(input)))));\n")
    r = subprocess.run([node, "--input-type=module", "-e", script], input=json.dumps(argument),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)
