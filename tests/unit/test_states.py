"""The state machine's shape and an order's failure as people read it. The transitions
themselves run as SQL: tests/integration/test_order_transitions.py tries them in PostgreSQL."""

from recordstore.models import Failure, FailureCode, Order, OrderStatus
from recordstore.states import FINAL, TRANSITIONS


def test_every_status_is_in_the_state_machine_and_final_states_have_no_way_out():
    assert set(TRANSITIONS) == set(OrderStatus)
    assert {s for s, allowed in TRANSITIONS.items() if not allowed} == FINAL


def test_a_failure_reads_as_its_code_and_detail():
    assert str(Failure(FailureCode.OUT_OF_STOCK)) == "out_of_stock"
    failed = Order(id=7, status=OrderStatus.FAILED, failure_code="payment_declined",
                   failure_detail="card declined")
    assert str(failed.failure) == "payment_declined: card declined"
