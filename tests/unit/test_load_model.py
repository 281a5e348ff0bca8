"""The load model (patterns, journey mix, statistics, SLO verdict) and the script's reports,
run with the system `python3` against a small fake store, so no stack is needed."""

import json
import re
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from labctl.config import ROOT
from labkit import patterns, shoppers
from labkit import stats as load_stats
from labkit.shop import Step

SCRIPT = ROOT / "scripts" / "trace_purchase_journey.py"
ALBUMS = [{"id": i, "sku": f"RS-{i:04d}", "title": f"Album {i}", "artist": f"Artist {i}",
           "genre": "Jazz" if i % 2 else "Rock", "format": "Vinyl", "release_year": 1970,
           "price_cents": 1000 + i, "stock": 0 if i == 3 else 50} for i in range(1, 25)]


class FakeStore(ThreadingHTTPServer):
    """The store's API as the gateway answers it; `database_down` answers 503 like the API."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.database_down = False
        self.checkout_delay_s = 0.0
        self.accepted = 0
        self.correlation_ids: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeStore

    def log_message(self, *_args) -> None:
        """Quiet."""

    def _send(self, status: int, body: dict, trace_id: str = "") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Correlation-ID", self.cid)
        if trace_id:
            self.send_header("X-Trace-ID", trace_id)
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        self.cid = self.headers.get("X-Correlation-ID", "minted")
        with self.server.lock:
            self.server.correlation_ids[self.cid] += 1
        path = urlsplit(self.path).path
        if path == "/gateway/health":
            return self._send(200, {"status": "ok"})
        if self.server.database_down:
            return self._send(503, {"error": "database_unavailable",
                                    "detail": "the database is unavailable",
                                    "correlation_id": self.cid}, trace_id="c" * 32)
        if method == "GET" and path == "/products":
            return self._send(200, {"items": ALBUMS[:12], "page": 1, "page_size": 12,
                                    "total": len(ALBUMS), "genres": ["Rock", "Jazz"]})
        if method == "GET" and (m := re.fullmatch(r"/products/(\d+)", path)):
            return self._send(200, ALBUMS[int(m.group(1)) - 1])
        if method == "POST" and path == "/checkout":
            threading.Event().wait(self.server.checkout_delay_s)
            with self.server.lock:
                self.server.accepted += 1
                order_id = self.server.accepted
            return self._send(202, {"order_id": order_id, "status": "pending", "total_cents": 1,
                                    "correlation_id": self.cid, "trace_id": "a" * 32,
                                    "links": {}}, trace_id="a" * 32)
        if method == "GET" and (m := re.fullmatch(r"/orders/(\d+)", path)):
            stamps = {"pending": "2026-01-01T00:00:00+00:00", "processing": None, "paid": None,
                      "confirmed": "2026-01-01T00:00:04.500000+00:00", "failed": None}
            return self._send(200, {"order_id": int(m.group(1)), "status": "confirmed",
                                    "failure_reason": None, "failure_code": None,
                                    "failure_detail": None, "timestamps": stamps})
        return self._send(404, {"error": "not_found", "detail": path, "correlation_id": self.cid})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._route("POST")


@pytest.fixture
def store() -> Iterator[FakeStore]:
    server = FakeStore()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def script(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # The system python3, not the venv's: proof that the script needs the standard library only.
    return subprocess.run(["python3", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


# ---------------------------------------------------------------- the model


def test_patterns_shape_the_rate_and_users_scale_it():
    steady = patterns.LoadConfig("http://x", "steady", users=10, duration_s=100)
    assert steady.rate_per_s(0) * 60 == pytest.approx(30)
    assert patterns.LoadConfig("http://x", users=20).rate_per_s(5) * 60 == pytest.approx(60)
    sale = patterns.LoadConfig("http://x", "flash-sale", users=10, duration_s=100)
    per_min = [sale.rate_per_s(t) * 60 for t in (0, 30, 50, 90)]
    assert per_min == pytest.approx([30, 165, 300, 30])  # 30 -> 300 like the seed's ramp
    assert sale.peak_rate_per_s * 60 == pytest.approx(300)
    day = patterns.LoadConfig("http://x", "business-hours", users=10, duration_s=240)
    morning, lunch, night = (day.rate_per_s(t) for t in (0, 50, 170))  # 08:00, 13:00, 01:00
    assert lunch > morning > night > 0
    assert max(day.rate_per_s(t) for t in range(240)) <= day.peak_rate_per_s


def test_the_journey_mix_is_weighted_and_reproducible_from_the_seed():
    def kinds(seed: int) -> list[str]:
        cfg = patterns.LoadConfig("http://x", seed=seed)
        return [shoppers.Shopper(n, cfg, load_stats.Stats(), threading.Event(), "t").kind
                for n in range(3000)]

    mix = kinds(7)
    assert mix == kinds(7) and mix != kinds(8)
    counts = Counter(mix)
    total = sum(j.weight for j in patterns.JOURNEYS.values())
    for kind, weight in ((k, j.weight) for k, j in patterns.JOURNEYS.items()):
        assert counts[kind] / len(mix) == pytest.approx(weight / total, abs=0.03), kind


def test_percentiles_and_a_bounded_reservoir():
    assert load_stats.percentile([], 95) is None
    assert load_stats.percentile([1, 2, 3, 4], 50) == 2.5
    assert load_stats.percentile(list(range(101)), 95) == 95
    r = load_stats.Reservoir(size=100, seed=1)
    for value in range(10_000):
        r.add(value)
    assert r.count == 10_000 and len(r.values) == 100
    assert 8_000 < load_stats.percentile(r.values, 90) < 10_000


def _step(name: str, status: int, error: str | None = None) -> Step:
    return Step(name, "POST" if name == "checkout" else "GET", f"/{name}", status, 12.0,
                f"cid-{name}-{status}", "", {"detail": "why"} if error else {}, error)


def test_stats_count_checkouts_errors_and_keep_their_correlation_ids():
    stats = load_stats.Stats()
    stats.journey_started("buy_one")
    for step in (_step("browse", 200), _step("checkout", 202),
                 _step("checkout", 503, "503 database_unavailable")):
        stats.step(step)
    stats.order_final({"order_id": 1, "status": "failed", "failure_reason": "payment_declined: x",
                       "failure_code": "payment_declined", "failure_detail": "x",
                       "timestamps": {"pending": "2026-01-01T00:00:00+00:00",
                                      "failed": "2026-01-01T00:00:03+00:00"}}, "cid-order")
    stats.journey_finished("buy_one", succeeded=False)
    s = stats.summary()
    assert s["checkouts"] == {"attempted": 2, "accepted": 1,
                              "rejected": {"503 database_unavailable": 1}}
    assert s["errors"] == {"503 database_unavailable": 1, "order failed: payment_declined": 1}
    [example] = s["error_examples"]["503 database_unavailable"]
    assert example["correlation_id"] == "cid-checkout-503"
    [failed] = s["error_examples"]["order failed: payment_declined"]
    assert failed["detail"] == "x" and failed["correlation_id"] == "cid-order"
    assert s["orders"]["end_to_end_s"]["p50"] == 3.0
    assert s["journeys"]["success_pct"] == 0.0
    assert s["slo"]["met"] is False


def test_the_slo_verdict_judges_each_target_and_skips_missing_data():
    stats = load_stats.Stats()
    assert load_stats.evaluate_slo(stats.summary())["met"] is True  # nothing to judge yet
    stats.journey_started("browse")
    stats.step(_step("checkout", 202))
    stats.latency["checkout"].add(900.0)
    stats.journey_finished("browse", succeeded=True)
    checks = {c["target"]: c["met"] for c in stats.summary()["slo"]["checks"]}
    assert checks == {"checkout p95 < 500 ms": False, "success > 99.9 %": True,
                      "order processing p95 < 10 s": None}


# ---------------------------------------------------------------- the script, end to end


def test_a_load_test_reports_what_the_store_counted(store, tmp_path: Path):
    out = tmp_path / "results.json"
    r = script("load-test", "--base-url", store.url, "--journeys", "40", "--users", "1200",
               "--think-time", "0", "--seed", "3", "--json", str(out), "--slo",
               "--mode", "native")
    assert r.returncode == 0, r.stdout + r.stderr
    results = json.loads(out.read_text())
    assert results["journeys"]["started"] == 40 == results["journeys"]["succeeded"]
    assert sum(j["count"] for j in results["journeys"]["by_type"].values()) == 40
    assert results["checkouts"]["accepted"] == store.accepted > 0
    assert results["orders"]["confirmed"] == store.accepted
    assert results["orders"]["end_to_end_s"]["p95"] == 4.5
    assert results["slo"]["met"] is True and results["config"]["seed"] == 3
    assert "every target met" in r.stdout and "Traceback" not in r.stderr
    # One correlation id per shopper, all from this run.
    prefixes = {cid.rsplit("-", 1)[0] for cid in store.correlation_ids if cid != "minted"}
    assert len(prefixes) == 1 and prefixes.pop().startswith("load-")


def test_a_missed_slo_exits_1_only_with_the_slo_flag(store, tmp_path: Path):
    store.checkout_delay_s = 0.6
    args = ["load-test", "--base-url", store.url, "--journeys", "30", "--users", "1200",
            "--think-time", "0", "--seed", "3"]
    strict = script(*args, "--slo")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "SLO BREACHED" in strict.stdout and "MISSED" in strict.stdout
    assert script(*args).returncode == 0


def test_the_journey_with_the_database_down_lists_the_503s_without_a_traceback(store):
    store.database_down = True
    r = script("--base-url", store.url, "--jaeger-url", store.url, "--correlation-id",
               "abc-123-def", "--trace-timeout", "0.5", "--mode", "compose")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    errors = [ln for ln in r.stdout.splitlines() if "503 database_unavailable" in ln
              and "correlation id abc-123-def" in ln]
    assert [ln.split()[0] for ln in errors] == ["GET", "GET", "POST"]
    assert "FAILED: no order was placed" in r.stdout
    assert "docker logs kodekloud-record-store-api | grep abc-123-def" in r.stdout
    assert set(store.correlation_ids) - {"minted"} == {"abc-123-def"}  # minted: Jaeger reads


def test_nothing_listening_is_exit_3_with_advice():
    r = script("--base-url", "http://127.0.0.1:9", "--correlation-id", "x1")
    assert r.returncode == 3 and "Is the lab up?" in r.stdout and "Traceback" not in r.stderr
    r = script("load-test", "--base-url", "http://127.0.0.1:9", "--journeys", "1")
    assert r.returncode == 3 and "Is the lab up?" in r.stdout


def test_a_malformed_correlation_id_is_refused_before_any_request():
    r = script("--correlation-id", "not valid!", "--base-url", "http://127.0.0.1:9")
    assert r.returncode == 2 and "--correlation-id" in r.stderr
