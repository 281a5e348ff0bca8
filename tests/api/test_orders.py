"""GET /orders/{id} in-process."""

import pytest


def test_an_order_shows_its_items_and_pending_step(client, product):
    pid = product(price=1250)
    accepted = client.post("/checkout", json={"product_id": pid, "quantity": 2,
                                              "customer_email": "o@example.com"}).json()
    r = client.get(f"/orders/{accepted['order_id']}")
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["total_cents"], body["customer_email"]) == (
        "pending", 2500, "o@example.com")
    assert body["correlation_id"] == accepted["correlation_id"]
    assert body["items"] == [{"product_id": pid, "title": "Test Pressing", "artist": "Tester",
                              "quantity": 2, "unit_price_cents": 1250}]
    steps = body["timestamps"]
    assert steps["pending"] is not None
    assert [steps[s] for s in ("processing", "paid", "confirmed", "failed")] == [None] * 4
    assert body["failure_reason"] is None


@pytest.mark.parametrize(("path", "status"), [
    ("/orders/9223372036854775807", 404), ("/orders/0", 422),
    ("/orders/9223372036854775808", 422), ("/orders/abc", 422),
])
def test_missing_or_malformed_order_ids(client, path, status):
    r = client.get(path)
    assert r.status_code == status
    assert r.json()["error"] == ("not_found" if status == 404 else "validation_error")


def test_an_order_s_logs_are_503_where_the_lab_keeps_no_log_files(client, product):
    order_id = client.post("/checkout", json={"product_id": product()}).json()["order_id"]
    r = client.get(f"/orders/{order_id}/logs")
    assert r.status_code == 503 and r.json()["error"] == "logs_unavailable"
