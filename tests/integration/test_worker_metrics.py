"""Worker metrics stay correct when the worker runs several processes (prefork pool)."""

import re

import httpx
import pytest

from recordstore.broker import PROCESS_ORDER
from tests.helpers import metric_sum, wait_for
from tests.integration.db import new_order, order

pytestmark = pytest.mark.stack


def test_counts_from_every_pool_process_are_summed(private_worker, product):
    app, _, port, metrics_dir = private_worker(pool="prefork", concurrency=2)
    pid = product(stock=20)
    orders = [new_order(pid) for _ in range(8)]
    for oid in orders:
        app.send_task(PROCESS_ORDER, args=[oid])
    wait_for(lambda: all(order(o).status == "confirmed" for o in orders), 60, "8 orders confirmed")
    # Business counts are exact (each order's transitions happen once, whichever process ran
    # them); task runs may exceed 16 if a starved worker's message was redelivered.
    seen: dict[str, float] = {}

    def counted() -> str | None:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        seen["confirmed"] = metric_sum(text, "recordstore_orders_completed_total",
                                       status="confirmed")
        seen["succeeded"] = metric_sum(text, "recordstore_celery_tasks_total", state="succeeded")
        return text if seen["confirmed"] == 8 and seen["succeeded"] >= 16 else None

    text = wait_for(counted, 30, lambda: f"8 confirmed orders and 16 task runs counted ({seen})")
    assert metric_sum(text, "recordstore_purchases_total", genre="Rock") == 8
    writers = {m.group(1) for f in metrics_dir.iterdir()
               if (m := re.match(r"counter_(\d+)\.db", f.name))}
    assert len(writers) >= 2, f"expected several pool processes to write metrics: {writers}"
