"""Acceptance: bad input on every endpoint gets the JSON error shape, never a 500."""

import json
import time
import uuid
from urllib.parse import urlencode

import pytest

from recordstore.catalog import ALBUMS
from tests.e2e.test_gateway import raw_request

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
    # Strict types: JSON true is not product 1, and a string is not a number.
    ("POST", "/checkout", {"product_id": True}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": "3"}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": 1, "quantity": "3"}, None, 422, "validation_error"),
    ("POST", "/checkout", {"product_id": 1, "quantity": True}, None, 422, "validation_error"),
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


@pytest.mark.parametrize("body,field", [({"product_id": True}, "product_id"),
                                        ({"product_id": 1, "quantity": "3"}, "quantity")])
def test_a_wrongly_typed_field_is_named_in_the_422(gateway, body, field):
    detail = gateway.post("/checkout", json=body).json()["detail"]
    assert field in json.dumps(detail)
    assert "valid integer" in json.dumps(detail)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "10.1.2.3"])
def test_the_gateway_answers_only_its_own_host_names(gateway, host):
    """A DNS-rebinding page reaches the gateway with its own name in Host: refused."""
    for path in ("/", "/products", "/admin/chaos"):
        resp = gateway.get(path, headers={"Host": host})
        assert resp.status_code == 421, (path, resp.text)
        assert resp.json()["error"] == "misdirected_request"


def test_the_gateway_answers_the_names_the_lab_uses(lab, gateway):
    for host in ("localhost", f"localhost:{lab.port('GATEWAY_PORT')}", "127.0.0.1",
                 f"127.0.0.1:{lab.port('GATEWAY_PORT')}", "gateway:8000"):
        assert gateway.get("/products/1", headers={"Host": host}).status_code == 200, host


def exemplar_params(**changes: str) -> str:
    """What the storefront's order page asks (nginx/html/assets/app.js, showSlowest), encoded
    as its URLSearchParams encodes it."""
    end = time.time()
    params = {"query": 'http_request_duration_seconds_bucket{job="api",handler="/checkout"}',
              "start": f"{end - 900:.3f}", "end": f"{end:.3f}"}
    return urlencode({**params, **changes})


def test_the_exemplar_route_answers_the_order_pages_question(gateway):
    resp = gateway.get(f"/api/v1/query_exemplars?{exemplar_params()}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "success"


@pytest.mark.parametrize("changes", [
    {"query": "up"},
    {"query": 'http_request_duration_seconds_bucket{job="api",handler="/checkout"} or up'},
    {"query": 'count({__name__=~".+"})'},
    {"start": "abc"},
    {"end": "now"},
])
def test_the_exemplar_route_refuses_any_other_question(gateway, changes):
    """The query is fixed; the window is not checked: exemplar storage is a bounded ring."""
    resp = gateway.get(f"/api/v1/query_exemplars?{exemplar_params(**changes)}")
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"] == "bad_request"


@pytest.mark.parametrize("raw,matched", [
    (b"/api/traces/x/../0123abcd", "/api/traces/0123abcd"),
    (b"/api/traces/%30123abcd", "/api/traces/0123abcd"),
])
def test_the_gateway_forwards_the_trace_path_it_matched(lab, gateway, raw, matched):
    normal = gateway.get(matched)
    resp = raw_request(lab, b"GET " + raw + b" HTTP/1.1")
    assert (resp.status, json.loads(resp.body)) == (normal.status_code, normal.json())


def test_the_gateway_forwards_the_exemplar_path_it_matched(lab):
    query = exemplar_params().encode()
    resp = raw_request(lab, b"GET /api/v1/x/../query_exemplars?" + query + b" HTTP/1.1")
    assert resp.status == 200, resp.body
    assert json.loads(resp.body)["status"] == "success"
