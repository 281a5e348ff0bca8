"""An API whose database and broker cannot be reached: fast, honest 503s, never a hang or 500."""

import time

import httpx
import pytest

from labctl.app_commands import API_COMMAND, fill
from labctl.config import ROOT
from labctl.proc import free_port, http_ok, spawn, terminate, wait_until

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def orphan_api(lab, tmp_path_factory):
    home = tmp_path_factory.mktemp("orphan-api")
    port = free_port()
    env = {**lab.env, "POSTGRES_PORT": str(free_port()), "RABBITMQ_PORT": str(free_port()),
           "OUTBOX_RELAY_INTERVAL_S": "60", "OTEL_SDK_DISABLED": "true"}
    argv = fill(API_COMMAND, host="127.0.0.1", port=str(port), workers="1")
    pid = spawn([str(lab.venv_bin / argv[0]), *argv[1:]], env, home / "api.log",
                home / "api.pid", ROOT)
    url = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: http_ok(f"{url}/docs"), 30), (home / "api.log").read_text()
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client
    terminate(pid)


def test_health_names_both_dependencies_and_what_they_affect(orphan_api):
    resp = orphan_api.get("/health")
    assert resp.status_code == 503
    body = resp.json()
    assert body["down"] == ["database", "broker"]
    assert set(body["affected_features"]) == {"checkout", "browsing", "order history",
                                              "order processing", "emails"}


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/products", None),
    ("GET", "/products/1", None),
    ("GET", "/orders/1", None),
    ("POST", "/checkout", {"product_id": 1, "quantity": 1}),
])
def test_endpoints_answer_503_json_fast(orphan_api, method, path, body):
    started = time.monotonic()
    resp = orphan_api.request(method, path, json=body, headers={"X-Correlation-ID": "down-1"})
    assert time.monotonic() - started < 2.5
    assert resp.status_code == 503
    assert resp.json() == {
        "error": "database_unavailable",
        "detail": "the database is unavailable; affected: checkout, browsing, order history",
        "correlation_id": "down-1",
    }
    assert resp.headers["retry-after"] == "5"
