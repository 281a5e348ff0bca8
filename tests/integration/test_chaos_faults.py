"""The faults that hold work up, against the lab's real PostgreSQL: a hung payment gateway holds
its task until switched off, then the order is charged once; a stock count's row locks make a
checkout wait in the database. Disruptive: a fault switched on holds the stack's worker too."""

import threading
import time

import pytest
from sqlalchemy import text

from recordstore import chaos, fulfilment
from recordstore.checkout import CheckoutRequest, place_order
from recordstore.config import Settings
from recordstore.db import session_scope
from recordstore.fulfilment import Outcome
from tests.helpers import wait_for
from tests.integration.db import new_order, payments, stock
from tests.integration.db import order as order_row

pytestmark = [pytest.mark.stack, pytest.mark.disruptive]
FAST = Settings(payment_latency_ms=0, email_delay_ms=0)


@pytest.fixture
def faults(lab):
    yield chaos.set_faults
    chaos.reset_faults()


def test_a_hung_payment_gateway_holds_the_task_until_switched_off_then_charges_once(product,
                                                                                   faults):
    pid = product(stock=5)
    oid = new_order(pid, quantity=2)
    faults({"payment_gateway_hang": 1})
    outcome = []
    task = threading.Thread(target=lambda: outcome.append(fulfilment.process_order(oid, FAST)))
    task.start()
    wait_for(lambda: order_row(oid).status == "processing", 10, "the task to claim the order")
    time.sleep(2 * chaos.CACHE_S)  # several reads of the fault: still hung
    assert task.is_alive() and payments(oid) == [] and stock(pid) == 5
    chaos.reset_faults()
    task.join(timeout=5 * chaos.CACHE_S)
    assert not task.is_alive(), "the hung call returns once the fault is off"
    assert outcome[0].outcome is Outcome.PAID
    assert len(payments(oid)) == 1 and stock(pid) == 3
    # A redelivery of the task that was held (the worker killed meanwhile) changes nothing.
    assert fulfilment.process_order(oid, FAST).outcome is Outcome.PAID
    assert len(payments(oid)) == 1 and stock(pid) == 3


def test_a_stock_count_makes_checkouts_wait_for_its_row_locks(product, faults):
    pid = product(stock=5)
    locker = chaos.StockLock()
    locker.start()
    try:
        faults({"stock_lock_ms": 1500})

        def holding() -> bool:
            with session_scope() as s:
                return bool(s.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    f"'{chaos.STOCK_COUNT}' AND state = 'idle in transaction'")))

        # From the start of a count: it holds its locks for most of the 1.5 s still.
        wait_for(lambda: not holding(), 10, "a pause between counts", interval_s=0.05)
        wait_for(holding, 10, "the stock count to hold its locks", interval_s=0.05)
        started = time.monotonic()
        with session_scope() as s:
            place_order(s, CheckoutRequest(pid, 1), "it-stock-lock", None, None)
        waited = time.monotonic() - started
        assert 0.3 < waited < 3, f"the checkout waited {waited:.2f} s for the locks"
        chaos.reset_faults()
        time.sleep(3 * chaos.CACHE_S)  # the last count ends, none starts
        assert not holding()
        started = time.monotonic()
        with session_scope() as s:
            place_order(s, CheckoutRequest(pid, 1), "it-stock-lock", None, None)
        assert time.monotonic() - started < 0.3
    finally:
        locker.stop()
