"""The simulated payment gateway. Its ledger (payments) has one row per order: asking twice
returns the first answer, so a retried or redelivered task never charges twice."""

import random
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, text

from recordstore import chaos
from recordstore.config import Settings
from recordstore.db import autocommit
from recordstore.models import PaymentStatus
from recordstore.telemetry import tracer

# As SQL: SQLAlchemy caches no ON CONFLICT built as an expression (it would compile it again
# for every payment).
RECORD_PAYMENT = text("""
INSERT INTO payments (order_id, amount_cents, method, status, reference, decline_reason)
VALUES (:order_id, :amount_cents, :method, :status, :reference, :decline_reason)
ON CONFLICT (order_id) DO NOTHING
RETURNING status, decline_reason
""")
RECORDED_PAYMENT = text("SELECT status, decline_reason FROM payments WHERE order_id = :order_id")


@dataclass(frozen=True)
class PaymentAnswer:
    """The gateway's answer for one order, as its ledger keeps it."""

    status: str
    decline_reason: str | None = None


def jittered_ms(base_ms: int, jitter: float, rng: random.Random) -> float:
    return max(0.0, base_ms * (1 + rng.uniform(-jitter, jitter)))


def recorded_payment(conn: Connection, order_id: int) -> PaymentAnswer | None:
    row = conn.execute(RECORDED_PAYMENT, {"order_id": order_id}).first()
    return None if row is None else PaymentAnswer(row.status, row.decline_reason)


def authorize_payment(order_id: int, amount_cents: int, method: str, settings: Settings,
                      rng: random.Random | None = None,
                      recorded: PaymentAnswer | None = None, looked_up: bool = False,
                      ) -> PaymentAnswer:
    """The ledger's answer for the order, asking the gateway only when there is none yet.
    `looked_up`: the caller has read the ledger already (`recorded` is what it found)."""
    rng = rng or random.Random()
    with tracer.start_as_current_span("authorize_payment") as span:
        span.set_attributes({"recordstore.order.id": order_id,
                             "recordstore.payment.method": method,
                             "recordstore.payment.amount_cents": amount_cents})
        if not looked_up:
            with autocommit() as conn:
                recorded = recorded_payment(conn, order_id)
        if recorded is not None:
            span.set_attributes({"recordstore.payment.replayed": True,
                                 "recordstore.payment.status": recorded.status})
            return recorded
        hung_s = chaos.wait_while_payment_gateway_hangs()
        if hung_s:
            span.set_attribute("recordstore.payment.gateway_hung_s", round(hung_s, 1))
        time.sleep(jittered_ms(settings.payment_latency_ms, settings.latency_jitter, rng) / 1000)
        declined = rng.random() < settings.payment_failure_rate
        values = {
            "order_id": order_id, "amount_cents": amount_cents, "method": method,
            "status": (PaymentStatus.DECLINED if declined else PaymentStatus.AUTHORIZED).value,
            "reference": f"pay_{uuid.uuid4().hex[:20]}",
            "decline_reason": "card declined by issuer (simulated)" if declined else None,
        }
        with autocommit() as conn:
            row = conn.execute(RECORD_PAYMENT, values).first()
            # A concurrent delivery may have written first: its answer is the answer.
            payment = (PaymentAnswer(row.status, row.decline_reason) if row is not None
                       else recorded_payment(conn, order_id))
        span.set_attribute("recordstore.payment.status", payment.status)
        return payment
