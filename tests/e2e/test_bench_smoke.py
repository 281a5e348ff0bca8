"""`./lab bench --quick` on the test stack: it runs end to end and writes sane, non-empty
figures. No timing thresholds here: the figures themselves are the README's business."""

import json

import pytest

from tests.helpers import get_json, lab_run

pytestmark = [pytest.mark.stack, pytest.mark.disruptive]  # it restarts the API and the worker


@pytest.mark.timeout(420)
def test_a_quick_benchmark_writes_sane_figures(lab, tmp_path):
    out = tmp_path / "bench.json"
    r = lab_run(lab, "bench", "--quick", "--use-running", "--json", str(out), timeout_s=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["machine"]["cores"] >= 1 and doc["settings"]["quick"] is True
    assert doc["lab"]["api_processes"] >= 1 and doc["lab"]["worker_concurrency"] >= 1
    assert doc["cpu_steal_pct"] is None or 0 <= doc["cpu_steal_pct"] <= 100
    spans = doc["spans"]
    assert spans["create_end_us"] > 0 and spans["encode_us"] > 0, spans
    # The checkout's own spans at least: server span, checkout_order, verify_product, SQL,
    # enqueue_order.
    assert spans["per_checkout"][spans["api_service"]] >= 5, spans
    for mode in ("telemetry_on", "telemetry_off"):
        figures = doc["modes"][mode]
        for kind in ("checkout", "browse"):
            rows = figures[kind]
            assert rows, (mode, kind)
            for row in rows:
                assert row["sent"] > 0 and row["ok"] > 0, row
                assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"], row
                assert 0 <= row["error_rate"] <= 1, row
        pipeline = figures["pipeline"]
        assert pipeline["confirmed"] > 0 and pipeline["failed"] == 0, pipeline
        assert 0 < pipeline["p50_ms"] <= pipeline["p95_ms"], pipeline
        worker = figures["worker"]
        assert worker["orders_per_s"] > 0, worker
        assert all(r["confirmed"] == r["placed"] > 0 for r in worker["per_round"]), worker
        # 0 when even the lowest rate missed the bound (a busy machine): a figure, not a fault.
        assert figures["checkout_capacity"]["rps"] >= 0
    cost = doc["telemetry_cost"]
    assert cost["checkout_p95_ratio"] > 0 and cost["worker_throughput_ratio"] > 0, cost
    assert {t["target"] for t in doc["targets"]} and len(doc["targets"]) == 7
    # The floors, in the same run: the empty route swept like the checkout, and its SQL alone.
    for mode in ("telemetry_on", "telemetry_off"):
        assert all(row["ok"] > 0 for row in doc["modes"][mode]["empty"]), doc["modes"][mode]
        assert doc["modes"][mode]["empty_capacity"]["rps"] >= 0
    pgbench = doc["floors"]["pgbench"]
    assert pgbench["at_rate"]["transactions"] > 0 and pgbench["capacity_tps"] > 0, pgbench
    assert pgbench["at_rate"]["db_cpu_ms_per_transaction"] > 0, pgbench
    ratios = doc["floors"]["ratios"]
    assert ratios["cpu_vs_empty_route"] > 0 and ratios["cpu_vs_sql_alone"] > 0, ratios
    # The checkout does more than its own SQL: more CPU than PostgreSQL alone spends on it.
    assert ratios["checkout_cpu_ms"] > ratios["pgbench_db_cpu_ms"], ratios
    # Telemetry's CPU, the application apart from the backends: every share a figure.
    split = doc["telemetry_cost_split"]
    for name in ("checkout", "worker"):
        for side in ("on_ms", "off_ms"):
            shares = split[name][side]
            assert shares["application"] > 0 and shares["backends"] >= 0, (name, side, shares)
        assert split[name]["cost_ms"]["application"] is not None, split
    # With telemetry off, nothing is sent: the backends ingest (almost) nothing per request.
    assert split["checkout"]["off_ms"]["backends"] < split["checkout"]["on_ms"]["backends"] + 1
    memory = doc["memory"]["after_load"]
    assert memory["total_pss_mib"] > 0
    assert {"api", "worker", "db", "rabbitmq", "gateway", "prometheus"} <= set(
        memory["by_component"])
    assert "checkout" in r.stdout and "p95" in r.stdout  # the printed table
    # The stack is left as it was: telemetry on, the API healthy.
    assert get_json(lab.url("GATEWAY_PORT", "/health"))["status"] == "ok"
