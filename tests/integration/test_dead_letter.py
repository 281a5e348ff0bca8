"""A real worker whose mail server always refuses: three attempts, then the dead-letter queue."""

import json
import uuid

import pytest
from kombu import Connection

from recordstore import correlation
from recordstore.broker import PROCESS_ORDER
from recordstore.config import get_settings
from tests.helpers import wait_for
from tests.integration.db import new_order, order, payments, stock

pytestmark = pytest.mark.stack


def test_attempts_are_retried_then_dead_lettered(private_worker, product):
    app, log, _, _ = private_worker(EMAIL_FAILURE_RATE="1", TASK_RETRY_BACKOFF_S="0.1")
    pid = product(stock=5)
    oid = new_order(pid)
    cid = f"dlq-{uuid.uuid4().hex[:8]}"
    app.send_task(PROCESS_ORDER, args=[oid], headers={correlation.TASK_HEADER: cid})
    dead = app.recordstore_queues.dead_letter

    def dead_letter():
        with Connection(get_settings().broker_url) as conn:
            return dead.bind(conn.default_channel).get(no_ack=True)

    message = wait_for(dead_letter, 30, "the message in the dead-letter queue")
    assert message.headers["task"] == "send_order_confirmation"
    assert json.loads(message.body)[0] == [oid]
    assert message.headers["x-death"][0]["reason"] == "rejected"
    lines = [json.loads(ln) for ln in log.read_text().splitlines() if cid in ln]
    events = [ln["event"] for ln in lines if ln.get("task") == "send_order_confirmation"]
    assert events.count("task_retry_scheduled") == 2
    assert events.count("task_dead_lettered") == 1
    # Paid once, stock taken once; only the email is missing, and the order says so.
    assert order(oid).status == "paid"
    assert len(payments(oid)) == 1 and stock(pid) == 4
