"""METRICS_ENABLED=false: the worker still processes orders and still answers /metrics (its
health check), empty, and records nothing: no process writes a metric file, business counters
included (what ./lab bench measures as "telemetry off" is then truly off)."""

import httpx
import pytest

from recordstore.broker import PROCESS_ORDER
from tests.helpers import wait_for
from tests.integration.db import new_order, order

pytestmark = pytest.mark.stack


def test_with_metrics_off_the_worker_works_and_exposes_nothing(private_worker, product):
    app, _, port, metrics_dir = private_worker(METRICS_ENABLED="false")
    order_id = new_order(product(stock=5))
    app.send_task(PROCESS_ORDER, args=[order_id])
    wait_for(lambda: order(order_id).status == "confirmed", 30, "the order confirmed")
    exposed = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert exposed.status_code == 200
    assert "recordstore_" not in exposed.text
    written = sorted(f.name for f in metrics_dir.iterdir() if f.suffix == ".db")
    assert written == [], f"metrics off, yet recorded: {written}"
