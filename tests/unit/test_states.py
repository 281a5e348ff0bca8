import pytest

from recordstore.models import Failure, FailureCode, Order, OrderStatus
from recordstore.states import FINAL, TRANSITIONS, InvalidTransition, transition

S = OrderStatus


def order(status: S) -> Order:
    return Order(id=7, status=status)


def test_happy_path_sets_a_timestamp_per_step():
    o = order(S.PENDING)
    for step in (S.PROCESSING, S.PAID, S.CONFIRMED):
        transition(o, step)
    assert o.status == S.CONFIRMED
    assert o.processing_at <= o.paid_at <= o.confirmed_at


@pytest.mark.parametrize("start", list(S))
@pytest.mark.parametrize("to", list(S))
def test_only_listed_transitions_are_allowed(start, to):
    o = order(start)
    if to in TRANSITIONS[start]:
        transition(o, to, Failure(FailureCode.OUT_OF_STOCK) if to is S.FAILED else None)
        assert o.status == to
    else:
        with pytest.raises(InvalidTransition):
            transition(o, to, Failure(FailureCode.OUT_OF_STOCK))


def test_final_states_have_no_way_out():
    assert all(not TRANSITIONS[s] for s in FINAL)


def test_failed_needs_a_reason():
    with pytest.raises(InvalidTransition, match="reason"):
        transition(order(S.PROCESSING), S.FAILED)
    o = order(S.PROCESSING)
    transition(o, S.FAILED, Failure(FailureCode.PAYMENT_DECLINED, "card declined"))
    assert (o.failure_code, o.failure_detail) == ("payment_declined", "card declined")
    assert str(o.failure) == "payment_declined: card declined" and o.failed_at is not None


def test_a_failure_without_a_detail_reads_as_its_code():
    assert str(Failure(FailureCode.OUT_OF_STOCK)) == "out_of_stock"


def test_redelivery_keeps_the_first_processing_timestamp():
    o = order(S.PENDING)
    transition(o, S.PROCESSING)
    first = o.processing_at
    transition(o, S.PROCESSING)
    assert o.processing_at == first
