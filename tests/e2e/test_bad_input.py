"""Acceptance: bad input on every endpoint gets the JSON error shape, never a 500."""

import uuid

import pytest

from recordstore.catalog import ALBUMS

pytestmark = pytest.mark.stack
SOLD_OUT = next(i for i, a in enumerate(ALBUMS, start=1) if a.stock == 0)
SCARCE = next(i for i, a in enumerate(ALBUMS, start=1) if 0 < a.stock <= 3)
JSON = {"Content-Type": "application/json"}

CASES = [
    # (method, path, body or raw bytes, headers, status, error)
    ("POST", "/checkout", b"{not json", JSON, 400, "malformed_json"),
    ("POST", "/checkout", b"", JSON, 422, "validation_error"),
    ("POST", "/checkout", b"[1, 2]", JSON, 422, "validation_error"),
    ("POST", "/checkout", b"product_id=1", {"Content-Type": "text/plain"}, 422,
     "validation_error"),
    ("POST", "/checkout", {}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": "one"}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": 0}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": 10**30}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": 1, "quantity": 0}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": 1, "quantity": 11}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": 1, "quantity": 1.5}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": 1, "customer_email": "nope"}, None, 422,
     "validation_error"),
    ("POST", "/checkout", {"product_id": 1, "payment_method": "iou"}, None, 422,
     "validation_error"),
    ("POST", "/checkout", {"product_id": 1, "coupon": "FREE"}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": 999999}, None, 404, "product_not_found"),
    ("POST", "/checkout", {"product_id": SOLD_OUT}, None, 409, "insufficient_stock"),
    ("POST", "/checkout", {"product_id": SCARCE, "quantity": 10}, None, 409,
     "insufficient_stock"),
    ("GET", "/checkout", None, None, 405, "method_not_allowed"),
    ("GET", "/products?genre=Polka", None, None, 422, "validation_error"),
    ("GET", "/products?page=0", None, None, 422, "validation_error"),
    # Found by the fuzz test: a NUL reached PostgreSQL, which refuses it in text (a 500).
    ("GET", "/products?q=C%C3%A5%00k", None, None, 422, "validation_error"),
    ("GET", "/products?q=tab%09bed", None, None, 422, "validation_error"),
    ("GET", "/products?page_size=1000", None, None, 422, "validation_error"),
    ("GET", "/products?q=", None, None, 422, "validation_error"),
    ("GET", "/products?q=" + "x" * 101, None, None, 422, "validation_error"),
    ("GET", "/products/abc", None, None, 422, "validation_error"),
    ("GET", "/products/0", None, None, 422, "validation_error"),
    ("GET", "/products/99999999999999999999", None, None, 422, "validation_error"),
    ("GET", "/products/999999", None, None, 404, "not_found"),
    ("DELETE", "/products/1", None, None, 405, "method_not_allowed"),
    ("GET", "/orders/abc", None, None, 422, "validation_error"),
    ("GET", "/orders/-1", None, None, 422, "validation_error"),
    ("GET", "/orders/99999999999999999999999", None, None, 422, "validation_error"),
    ("GET", "/orders/9223372036854775807", None, None, 404, "not_found"),
    ("POST", "/orders/1", b"{}", JSON, 405, "method_not_allowed"),
    ("GET", "/health/extra", None, None, 404, "not_found"),
]


@pytest.mark.parametrize("method,path,body,headers,status,error", CASES,
                         ids=[f"{c[0]} {c[1][:40]} -> {c[4]}" for c in CASES])
def test_bad_input_gets_a_json_error(gateway, method, path, body, headers, status, error):
    cid = f"bad-{uuid.uuid4().hex[:10]}"
    kwargs = {"headers": {"X-Correlation-ID": cid, **(headers or {})}}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    resp = gateway.request(method, path, **kwargs)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    data = resp.json()
    assert set(data) == {"error", "detail", "correlation_id"}
    assert data["error"] == error
    assert data["correlation_id"] == cid
    assert resp.headers["x-correlation-id"] == cid
    assert "Traceback" not in resp.text


def test_unknown_paths_at_the_gateway_are_not_html_500s(gateway):
    resp = gateway.get("/no/such/page")
    assert resp.status_code == 404
