"""Each exercise's check fails, saying why, before its steps are done, and passes after a test
has run them, on the native stack, with the commands the exercise's README gives."""

import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from labctl.config import LabConfig
from labkit import profiles
from tests.exercise_steps import (
    assert_passes,
    before,
    check,
    failing,
    journey,
    shopping,
    until_steps_hold,
)
from tests.helpers import active_alerts, fired_since, get_json, lab_command, lab_run, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.disruptive]


@pytest.fixture(autouse=True)
def scraped_since_now(lab: LabConfig) -> None:
    """Every target up and scraped after this moment, before a test starts: a counter a step
    counts must have a sample from before the test's first change to it (a component just
    restarted by an earlier test has none yet, and increase() would miss its first count)."""
    start = time.time()

    def scraped() -> bool:
        targets = get_json(lab.url("PROMETHEUS_PORT", "/api/v1/targets"))["data"]["activeTargets"]
        return bool(targets) and all(
            t["health"] == "up" and datetime.fromisoformat(t["lastScrape"]).timestamp() > start
            for t in targets)

    wait_for(scraped, 60, "every Prometheus target up and scraped")


def test_02_database_failure(lab):
    since, [report] = before(lab, "02")
    assert "never went down" in failing(report)[1]
    lab_command(lab, "stop", "db")
    try:
        refused = journey(lab, "--correlation-id", "db-down-1")
        assert refused.returncode == 1 and "db-down-1" in refused.stdout, refused.stdout
        report = until_steps_hold(lab, "02", since, {1, 2, 3, 4}, 90)
        assert {5, 6} <= set(failing(report)), report  # the database is still down
    finally:
        lab_command(lab, "start", "db")
    assert_passes(lab, "02", since)


def checkouts(lab: LabConfig, n: int, product_id: int = 1) -> list[int]:
    """n checkouts through the gateway, as the exercises' curl loops do: the status codes."""
    with httpx.Client(base_url=lab.url("GATEWAY_PORT"), timeout=30) as client:
        return [client.post("/checkout", json={"product_id": product_id}).status_code
                for _ in range(n)]


def test_01_follow_a_purchase(lab):
    since, [report] = before(lab, "01")
    assert "no confirmed order" in failing(report)[1]
    bought = journey(lab, "--correlation-id", "follow-me-01")
    assert bought.returncode == 0, bought.stdout + bought.stderr
    report = assert_passes(lab, "01", since, wait_s=60)
    assert "follow-me-01" in report["steps"][0]["detail"]


def test_03_load_testing(lab, tmp_path):
    since, [report] = before(lab, "03")
    assert "checkout requests at the API" in failing(report)[1]
    summary = tmp_path / "load.json"
    ran = journey(lab, "load-test", "--journeys", "120", "--users", "150", "--think-time", "0.1",
                  "--seed", "3", "--quiet", "--json", str(summary))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert_passes(lab, "03", since)


def accepted_while_down(lab: LabConfig, exercise: str, service: str, orders: int) -> None:
    """Before: the check fails at step 1. Stop `service`, check out `orders` times (each must
    still be accepted), wait until steps 1-3 (down, its effect, the alert delivered) hold,
    start it again: then every step holds."""
    since, [report] = before(lab, exercise)
    assert "never went down" in failing(report)[1]
    lab_command(lab, "stop", service)
    try:
        assert checkouts(lab, orders) == [202] * orders
        until_steps_hold(lab, exercise, since, {1, 2, 3}, 90)
    finally:
        lab_command(lab, "start", service)
    assert_passes(lab, exercise, since)


def test_04_stuck_worker_and_backlog(lab):
    accepted_while_down(lab, "04", "worker", 10)


def test_05_slow_queries(lab, chaos):
    since, [report] = before(lab, "05")
    assert "/products" in failing(report)[1], report
    chaos("slow_query_ms=800")
    with httpx.Client(base_url=lab.url("GATEWAY_PORT"), timeout=30) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert client.get("/products", params={"page": 1, "page_size": 12}).status_code == 200
            if not {1, 2, 3, 4} & set(failing(check(lab, "05", since)[1])):
                break
    rc, report = check(lab, "05", since)
    assert set(failing(report)) == {5}, report  # only: the fault is still on
    lab_command(lab, "chaos", "reset")
    assert_passes(lab, "05", since, wait_s=30)


def test_08_the_exemplar_trail_of_a_slow_checkout(lab, chaos):
    since, [report] = before(lab, "08")
    assert "/checkout" in failing(report)[1], report
    chaos("stock_lock_ms=1500")
    with shopping(lab, every_s=0.2, product_ids=range(2, 40)):
        until_steps_hold(lab, "08", since, {1, 2, 3, 4}, 90)
    rc, report = check(lab, "08", since)
    assert set(failing(report)) == {5}, report  # only: the fault is still on
    lab_command(lab, "chaos", "reset")
    assert_passes(lab, "08", since, wait_s=30)


@pytest.mark.timeout(360)
def test_06_failing_payments_retries_dead_letters_and_the_error_budget(lab, chaos):
    since, [report] = before(lab, "06")
    assert "payment declined" in failing(report)[1]
    chaos("payment_failure_rate=0.5", "email_failure_rate=1")
    assert checkouts(lab, 20) == [202] * 20
    until_steps_hold(lab, "06", since, {1, 2, 3, 4}, 60)
    chaos("db_pool_exhaustion=1")
    with shopping(lab):  # checkouts now fail: the error budget burns
        until_steps_hold(lab, "06", since, {1, 2, 3, 4, 5, 6}, 240)
    # The exercise's other alerts (CheckoutErrorBudgetBurnSlow needs 5 minutes more).
    wait_for(lambda: {"HighJobFailureRate", "MessagesDeadLettered"} <= fired_since(lab, since),
             90, lambda: f"06's job alerts fired (active: {active_alerts(lab)})", interval_s=2)
    lab_command(lab, "chaos", "reset")
    assert_passes(lab, "06", since, wait_s=60)


def test_07_broker_outage_loses_no_order(lab):
    accepted_while_down(lab, "07", "rabbitmq", 3)


@pytest.mark.timeout(360)
def test_10_cpu_hotspot_from_the_exemplar_to_the_trace_to_the_profile(lab, chaos):
    since, [report] = before(lab, "10")
    assert "/checkout" in failing(report)[1]
    chaos("cpu_burn_ms=300")
    with shopping(lab, every_s=0.2, product_ids=range(2, 40)):
        report = until_steps_hold(lab, "10", since, {1, 2, 3}, 120)
        assert "no profile recorded" in failing(report)[4], report
        recorded = lab_run(lab, "profile", "api", "--seconds", "5", timeout_s=120)
        worker = lab_run(lab, "profile", "worker", "--seconds", "2", timeout_s=120)
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert "/profiles/worker-" in worker.stdout, worker.stdout  # Celery's process too
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    path = Path(recorded.stdout.strip().splitlines()[-1].rsplit(": ", 1)[1])
    assert path.parent == lab.home / "profiles" and path.is_file(), recorded.stdout
    assert profiles.functions(path)["score_fraud_risk"] > 0, recorded.stdout
    assert "score_fraud_risk (" in recorded.stdout, recorded.stdout  # among the top self time
    rc, report = check(lab, "10", since)
    assert set(failing(report)) == {5}, report  # only: the fault is still on
    lab_command(lab, "chaos", "reset")
    assert_passes(lab, "10", since, wait_s=30)
