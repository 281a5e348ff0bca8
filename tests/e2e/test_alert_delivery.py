"""Acceptance: stopping the lab's database fires DatabaseDown and delivers it to the receiver,
while the symptoms it causes fire in Prometheus but are inhibited; starting it resolves it."""

import threading

import pytest

from tests.helpers import active_alerts, get_json, lab_command, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.disruptive]
SYMPTOMS = {"HighCheckoutErrorRate", "CheckoutErrorBudgetBurnFast", "CheckoutErrorBudgetBurnSlow"}


def delivered(lab) -> list[dict]:
    return [alert for n in get_json(lab.url("ALERT_RECEIVER_PORT", "/alerts"))["notifications"]
            for alert in n["alerts"]]


def alertmanager_status(lab, alertname: str) -> dict | None:
    alerts = get_json(lab.url("ALERTMANAGER_PORT", "/api/v2/alerts"))
    return next((a["status"] for a in alerts if a["labels"]["alertname"] == alertname), None)


def test_database_down_is_delivered_and_its_symptoms_are_inhibited(lab, gateway):
    seen = len(delivered(lab))

    def new(alertname: str, status: str) -> list[dict]:
        return [a for a in delivered(lab)[seen:]
                if a["alertname"] == alertname and a["status"] == status]

    shopping = threading.Event()

    def shop():  # learners keep buying during the outage: every checkout answers 503
        while not shopping.wait(0.3):
            gateway.post("/checkout", json={"product_id": 1})

    lab_command(lab, "stop", "db")
    shopper = threading.Thread(target=shop, daemon=True)
    shopper.start()
    try:
        firing = wait_for(lambda: new("DatabaseDown", "firing"), 90, "DatabaseDown delivered")
        assert firing[0]["severity"] == "critical"
        assert "pg_up = 0" in firing[0]["summary"]
        # Exercise 02's third alert: info, never notified; it resolves 30 minutes on.
        assert active_alerts(lab).get("DatabaseRecentlyDown") == "firing"
        status = wait_for(
            lambda: (s := alertmanager_status(lab, "HighCheckoutErrorRate")) and
            s["inhibitedBy"] and s, 150, "HighCheckoutErrorRate firing, inhibited")
        assert status["state"] == "suppressed"
    finally:
        shopping.set()
        shopper.join()
        lab_command(lab, "start", "db")
    wait_for(lambda: gateway.get("/health").status_code == 200, 30, "the API to recover")
    wait_for(lambda: new("DatabaseDown", "resolved"), 120, "DatabaseDown resolved")
    assert not [a for a in delivered(lab)[seen:] if a["alertname"] in SYMPTOMS]
