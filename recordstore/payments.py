"""The simulated payment gateway. Its ledger (payments) has one row per order: asking twice
returns the first answer, so a retried or redelivered task never charges twice."""

import random
import time
import uuid

from sqlalchemy import select, text

from recordstore.config import Settings
from recordstore.db import session_scope
from recordstore.models import Payment, PaymentStatus
from recordstore.telemetry import tracer

# As SQL: SQLAlchemy caches no ON CONFLICT built as an expression (it would compile it again
# for every payment).
RECORD_PAYMENT = text("""
INSERT INTO payments (order_id, amount_cents, method, status, reference, decline_reason)
VALUES (:order_id, :amount_cents, :method, :status, :reference, :decline_reason)
ON CONFLICT (order_id) DO NOTHING
RETURNING *
""")


def jittered_ms(base_ms: int, jitter: float, rng: random.Random) -> float:
    return max(0.0, base_ms * (1 + rng.uniform(-jitter, jitter)))


def authorize_payment(order_id: int, amount_cents: int, method: str, settings: Settings,
                      rng: random.Random | None = None) -> Payment:
    rng = rng or random.Random()
    with tracer.start_as_current_span("authorize_payment") as span:
        span.set_attributes({"order_id": order_id, "payment.method": method,
                             "payment.amount_cents": amount_cents})
        with session_scope() as session:
            existing = session.scalar(select(Payment).where(Payment.order_id == order_id))
        if existing is not None:
            span.set_attribute("payment.replayed", True)
            span.set_attribute("payment.status", existing.status)
            return existing
        time.sleep(jittered_ms(settings.payment_latency_ms, settings.latency_jitter, rng) / 1000)
        declined = rng.random() < settings.payment_failure_rate
        values = {
            "order_id": order_id, "amount_cents": amount_cents, "method": method,
            "status": (PaymentStatus.DECLINED if declined else PaymentStatus.AUTHORIZED).value,
            "reference": f"pay_{uuid.uuid4().hex[:20]}",
            "decline_reason": "card declined by issuer (simulated)" if declined else None,
        }
        with session_scope() as session:
            # A concurrent delivery may have written first: its answer is the answer.
            payment = session.scalar(select(Payment).from_statement(RECORD_PAYMENT), values) or (
                session.scalar(select(Payment).where(Payment.order_id == order_id)))
        span.set_attribute("payment.status", payment.status)
        return payment
