"""/health, the error shape and the admin endpoint's guard, in-process."""

import pytest


def test_health_names_the_broker_down_and_the_database_up(client):
    r = client.get("/health")
    assert r.status_code == 503
    body = r.json()
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["broker"]["status"] == "down"
    assert (body["status"], body["down"], body["busy"]) == ("degraded", ["broker"], [])
    assert body["affected_features"] == ["emails", "order processing"]


def test_liveness_checks_nothing(client):
    assert client.get("/health/live").json() == {"status": "ok"}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/no/such/route"), ("DELETE", "/products"), ("GET", "/products/0"),
    ("POST", "/checkout"),
])
def test_every_error_is_the_same_json_shape_with_the_correlation_id(client, method, path):
    r = client.request(method, path, headers={"X-Correlation-ID": "shape-1"})
    assert r.status_code >= 400
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error", "detail", "correlation_id"}
    assert body["correlation_id"] == "shape-1" == r.headers["X-Correlation-ID"]
    assert "Traceback" not in r.text


def test_a_correlation_id_is_minted_when_none_is_sent(client):
    r = client.get("/products/0")
    assert r.headers["X-Correlation-ID"] == r.json()["correlation_id"] != ""


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-123"},
                                     {"Authorization": "in-process-admin-token"}])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_chaos_refuses_without_the_admin_token(client, headers, method):
    r = client.request(method, "/admin/chaos", headers=headers, json={"slow_query_ms": 1})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthorized"


def test_chaos_with_the_token_switches_a_fault_and_refuses_an_unknown_one(client, admin):
    available = client.get("/admin/chaos", headers=admin).json()["available"]
    name, limits = next(iter(available.items()))
    try:
        r = client.put("/admin/chaos", headers=admin, json={name: limits["max"]})
        assert r.status_code == 200 and r.json()["active"] == {name: limits["max"]}
        bad = client.put("/admin/chaos", headers=admin, json={"no_such_fault": 1})
        assert bad.status_code == 422 and bad.json()["error"] == "validation_error"
    finally:
        assert client.delete("/admin/chaos", headers=admin).json()["active"] == {}
