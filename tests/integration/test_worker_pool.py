"""Several worker processes over the real RabbitMQ and PostgreSQL (the lab's own pool:
worker.processes forking workers of threads; and Celery's prefork pool): every order, each
delivered twice, is charged, takes its stock and is e-mailed exactly once."""

import json
import re
from collections import Counter

import pytest
from sqlalchemy import func, select

from recordstore import correlation
from recordstore.broker import PROCESS_ORDER
from recordstore.db import session_scope
from recordstore.models import Order, Payment
from tests.helpers import wait_for
from tests.integration.db import new_order, stock

pytestmark = pytest.mark.stack
ORDERS = 24


def _confirmed(order_ids: list[int]) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(Order).where(
            Order.id.in_(order_ids), Order.status == "confirmed"))


@pytest.mark.parametrize(("processes", "pool", "concurrency", "writers"), [
    (2, "threads", 4, 2),  # the lab's pool: each forked worker writes its own metrics
    (1, "prefork", 3, 3),  # Celery's: the parent, and at least two of its children
], ids=["processes-of-threads", "prefork"])
def test_a_pool_of_processes_completes_each_twice_delivered_order_exactly_once(
        product, private_worker, processes, pool, concurrency, writers):
    app, log, _, metrics_dir = private_worker(pool=pool, concurrency=concurrency,
                                              processes=processes)
    pid = product(stock=100)
    order_ids = [new_order(pid) for _ in range(ORDERS)]
    for _ in range(2):  # a redelivery of every task, racing the first delivery
        for oid in order_ids:
            app.send_task(PROCESS_ORDER, args=[oid],
                          headers={correlation.TASK_HEADER: f"pool-{oid}"})
    wait_for(lambda: _confirmed(order_ids) == ORDERS, 60,
             lambda: f"{_confirmed(order_ids)} of {ORDERS} orders confirmed")
    assert stock(pid) == 100 - ORDERS
    with session_scope() as s:
        charged = Counter(s.scalars(select(Payment.order_id).where(
            Payment.order_id.in_(order_ids))))
    assert charged == Counter(order_ids)
    # A confirmation is logged once per e-mail that went out.
    emailed: Counter[int] = Counter()
    wait_for(lambda: sum(1 for line in log.read_text().splitlines()
                         if '"order_confirmation"' in line) >= ORDERS, 10, "the worker's log")
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"order_confirmation"' in line:
            record = json.loads(line)
            if record.get("outcome") == "confirmed":
                emailed[record["order_id"]] += 1
    assert emailed == Counter(order_ids)
    # The work was shared: several processes wrote task counters.
    pids = {m.group(1) for f in metrics_dir.iterdir()
            if (m := re.fullmatch(r"counter_(\d+)\.db", f.name))}
    assert len(pids) >= writers, pids
