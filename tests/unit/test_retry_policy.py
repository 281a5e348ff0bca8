"""The worker's retry policy: exponential backoff, then the dead-letter queue."""

from types import SimpleNamespace

import pytest
from celery.exceptions import Reject, Retry
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import IntegrityError, OperationalError

from recordstore.fulfilment import EmailDeliveryError
from worker.tasks import is_transient, retry_or_dead_letter


class FakeTask:
    name = "send_order_confirmation"

    def __init__(self, retries: int):
        self.request = SimpleNamespace(retries=retries)
        self.retried_with = None

    def retry(self, **kwargs):
        self.retried_with = kwargs
        return Retry("retry", exc=kwargs["exc"], when=kwargs["countdown"])


@pytest.mark.parametrize("exc,transient", [
    (OperationalError("SELECT 1", {}, Exception("connection refused")), True),
    (BrokerError("connection reset"), True),
    (EmailDeliveryError("refused"), True),
    (ConnectionRefusedError(), True),
    (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
    (ValueError("bug"), False),
])
def test_which_errors_are_worth_a_retry(exc, transient):
    assert is_transient(exc) is transient


def test_backoff_doubles_then_the_third_attempt_is_dead_lettered(monkeypatch):
    monkeypatch.setenv("TASK_RETRY_BACKOFF_S", "1.5")
    monkeypatch.setenv("TASK_MAX_ATTEMPTS", "3")
    from recordstore.config import get_settings

    get_settings.cache_clear()
    try:
        countdowns = []
        for retries in (0, 1):
            task = FakeTask(retries)
            with pytest.raises(Retry):
                retry_or_dead_letter(task, 1, EmailDeliveryError("refused"))
            countdowns.append(task.retried_with["countdown"])
        assert countdowns == [1.5, 3.0]
        with pytest.raises(Reject) as rejected:
            retry_or_dead_letter(FakeTask(2), 1, EmailDeliveryError("refused"))
        assert rejected.value.requeue is False
        # A database outage is waited out: no dead letter, backoff capped at 10 s.
        outage = OperationalError("SELECT 1", {}, Exception("connection refused"))
        task = FakeTask(9)
        with pytest.raises(Retry):
            retry_or_dead_letter(task, 1, outage)
        assert task.retried_with["countdown"] == 10.0
    finally:
        get_settings.cache_clear()


def test_timeouts_and_conflicts_are_retried_to_the_limit_busy_is_waited_out_a_bug_dead_lettered(
        monkeypatch):
    import psycopg.errors as pg

    monkeypatch.setenv("TASK_MAX_ATTEMPTS", "3")
    from recordstore.config import get_settings

    get_settings.cache_clear()
    try:
        for orig in (pg.QueryCanceled("statement timeout"), pg.DeadlockDetected("deadlock")):
            timeout = OperationalError("UPDATE", {}, orig)
            with pytest.raises(Retry):
                retry_or_dead_letter(FakeTask(1), 1, timeout)
            with pytest.raises(Reject):
                retry_or_dead_letter(FakeTask(2), 1, timeout)
        busy = OperationalError("SELECT 1", {}, pg.TooManyConnections("too many clients"))
        with pytest.raises(Retry):
            retry_or_dead_letter(FakeTask(9), 1, busy)
        # A bug or bad data: a retry would fail the same way; the message goes to the
        # dead-letter queue at the first attempt, where an alert shows it.
        with pytest.raises(Reject) as rejected:
            retry_or_dead_letter(FakeTask(0), 1, ValueError("bug"))
        assert rejected.value.requeue is False
    finally:
        get_settings.cache_clear()
