"""The exercises' check library (labkit/checks.py): windows, verdicts, exit codes."""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from api.schemas import OrderOut
from labctl.config import ROOT
from labctl.proc import free_port
from labkit.checks import Lab, NotYet, Step, evaluate, parse_since


def test_since_takes_durations_unix_and_iso_times():
    now = 1_800_000_000.0
    assert parse_since("90s", now) == now - 90
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2h", now) == now - 7200
    assert parse_since("1799999000", now) == 1_799_999_000
    assert parse_since("2027-01-15T08:00:00+00:00", now) == 1_800_000_000  # that very instant
    with pytest.raises(argparse.ArgumentTypeError, match="--since"):
        parse_since("yesterday", now)


def lab_at_nothing(base_url: str | None = None) -> Lab:
    """A lab whose backends do not answer; and its shop neither, unless `base_url` is given."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    return Lab(base_url=base_url or nowhere, prometheus_url=nowhere, jaeger_url=nowhere,
               receiver_url=nowhere, since=0.0, mode="native")


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


class DecliningShop(BaseHTTPRequestHandler):
    """The API as a checkout whose payment was declined leaves it: the order, in its schema."""

    ORDER = OrderOut(
        order_id=7, status="failed", failure_reason="payment_declined: card declined",
        failure_code="payment_declined", failure_detail="card declined", payment_method="paypal",
        total_cents=1999, customer_email="learner@example.com", items=[], correlation_id="c-1",
        trace_id=None, timestamps={},
    ).model_dump(mode="json")

    def log_message(self, *_args) -> None:
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(202, {"order_id": 7, "status": "pending"})

    def do_GET(self) -> None:
        self._send(200, self.ORDER)


@pytest.fixture
def declining_shop() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), DecliningShop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_failed_test_purchase_says_why_it_failed(declining_shop):
    with pytest.raises(NotYet) as failed:
        lab_at_nothing(declining_shop).purchase(timeout_s=5)
    assert str(failed.value) == "test order 7 failed: payment_declined: card declined"


def test_a_latency_peak_of_nan_is_no_peak(monkeypatch):
    """histogram_quantile of a series with no request in the window is NaN (0/0), which no
    comparison refuses: it must not pass for a spike."""
    lab = lab_at_nothing()
    monkeypatch.setattr(lab, "peak", lambda expr: float("nan"))
    with pytest.raises(NotYet, match="peaked at 0 ms"):
        lab.latency_peak("/checkout", 250)
    monkeypatch.setattr(lab, "peak", lambda expr: 0.3)
    assert "300 ms" in lab.latency_peak("/checkout", 250)
