"""POST /checkout in-process: validation, acceptance and stock errors. No broker runs here,
so an accepted order takes the broker-down path: 202 all the same, kept in the outbox."""

import pytest

from tests.integration.db import order, stock


def test_an_accepted_order_is_pending_in_the_outbox(client, product):
    pid = product(stock=5, price=1500)
    r = client.post("/checkout", json={"product_id": pid, "quantity": 2,
                                       "customer_email": "buyer@example.com",
                                       "payment_method": "paypal"},
                    headers={"X-Correlation-ID": "inproc-checkout-1"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "pending" and body["total_cents"] == 3000
    assert body["correlation_id"] == "inproc-checkout-1"
    assert r.headers["X-Correlation-ID"] == "inproc-checkout-1"
    assert body["links"] == {"order": f"/orders/{body['order_id']}"}
    row = order(body["order_id"])
    # The publish failed (nothing listens on the broker's port): the relay's to deliver.
    assert row.enqueued_at is None and row.correlation_id == "inproc-checkout-1"
    assert stock(pid) == 5  # the worker takes it, when it processes the order


def test_the_seed_body_alone_works_with_defaults(client, product):
    pid = product()
    r = client.post("/checkout", json={"product_id": pid})
    assert r.status_code == 202, r.text
    shown = client.get(f"/orders/{r.json()['order_id']}").json()
    assert shown["items"][0]["quantity"] == 1 and shown["payment_method"] == "credit_card"


def test_more_than_the_stock_is_409_and_nothing_changes(client, product):
    pid = product(stock=1)
    r = client.post("/checkout", json={"product_id": pid, "quantity": 2})
    assert r.status_code == 409
    assert r.json()["error"] == "insufficient_stock"
    assert stock(pid) == 1


def test_an_unknown_product_is_404(client):
    r = client.post("/checkout", json={"product_id": 2_147_483_647})
    assert r.status_code == 404 and r.json()["error"] == "product_not_found"


@pytest.mark.parametrize(("body", "field"), [
    ({}, "product_id"), ({"product_id": 0}, "product_id"),
    ({"product_id": 1, "quantity": 0}, "quantity"), ({"product_id": 1, "quantity": 11}, "quantity"),
    ({"product_id": 1, "customer_email": "not-an-email"}, "customer_email"),
    ({"product_id": 1, "payment_method": "cash"}, "payment_method"),
    ({"product_id": 1, "coupon": "FREE"}, "coupon"),
    ({"product_id": "one"}, "product_id"),
])
def test_invalid_bodies_are_422_naming_the_field(client, body, field):
    r = client.post("/checkout", json=body)
    assert r.status_code == 422, r.text
    assert [d["loc"][-1] for d in r.json()["detail"]] == [field]


def test_malformed_json_is_400(client):
    r = client.post("/checkout", content=b'{"product_id": ',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "malformed_json"
