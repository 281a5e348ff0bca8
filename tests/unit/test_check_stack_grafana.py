"""The Grafana part of scripts/check_stack.py, labkit/stack_grafana.py (compose only, so
the native suite cannot reach it), against a stand-in that answers Grafana's HTTP API the way
Grafana documents it: /api/health, /api/datasources, /api/datasources/uid/<uid>/health, the
datasource proxy and /api/search."""

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labkit.stack_grafana import check_grafana
from labkit.stack_report import Report

LOGIN = "Basic " + base64.b64encode(b"admin:admin").decode()
DATASOURCES = [
    {"uid": "prometheus", "name": "Prometheus", "type": "prometheus"},
    {"uid": "jaeger", "name": "Jaeger", "type": "jaeger"},
    {"uid": "alertmanager", "name": "Alertmanager", "type": "alertmanager"},
]


class FakeGrafana:
    def __init__(self) -> None:
        # path -> (status, body); what a test changes to break one thing
        self.routes: dict[str, tuple[int, object]] = {
            "/api/health": (200, {"database": "ok", "version": "12.3.1"}),
            "/api/datasources": (200, DATASOURCES),
            "/api/datasources/uid/prometheus/health":
                (200, {"status": "OK", "message": "Successfully queried the Prometheus API."}),
            # A plugin without a backend health check.
            "/api/datasources/uid/jaeger/health":
                (404, {"message": "Health check not implemented"}),
            "/api/datasources/proxy/uid/jaeger/api/services": (200, {"data": ["api"]}),
            "/api/datasources/uid/alertmanager/health":
                (404, {"message": "Health check not implemented"}),
            "/api/datasources/proxy/uid/alertmanager/api/v2/status": (200, {"cluster": {}}),
            "/api/search?type=dash-db": (200, [
                {"uid": "purchase-journey", "title": "Purchase Journey", "type": "dash-db"},
                {"uid": "slos", "title": "SLOs", "type": "dash-db"},
            ]),
        }


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafana]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status, body = fake.routes.get(self.path, (404, {"message": "Not found"}))
            if self.path != "/api/health" and self.headers.get("Authorization") != LOGIN:
                status, body = 401, {"message": "Unauthorized"}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", fake
    finally:
        server.shutdown()
        server.server_close()


def grafana_rows(url: str, password: str = "admin") -> dict[str, tuple[str, str]]:
    report = Report(live=False)
    check_grafana(report, url, "admin", password)
    return {r.check: (r.status, r.detail) for r in report.results}


def test_a_healthy_grafana_passes_and_each_datasource_is_checked(grafana):
    url, _ = grafana
    rows = grafana_rows(url)
    assert {check: status for check, (status, _) in rows.items()} == {
        "healthy": "ok",
        "datasource Prometheus (prometheus)": "ok",
        "datasource Jaeger (jaeger)": "ok",
        "datasource Alertmanager (alertmanager)": "ok",
        "2 dashboards provisioned": "ok",
        "dashboard uid purchase-journey": "ok",
    }
    assert "proxy" in rows["datasource Jaeger (jaeger)"][1]


def test_a_datasource_grafana_cannot_reach_fails_with_the_reason(grafana):
    url, fake = grafana
    fake.routes["/api/datasources/uid/prometheus/health"] = (
        400, {"status": "ERROR", "message": "Post \"http://prometheus:9090/api/v1/query\": "
                                           "dial tcp: lookup prometheus: no such host"})
    fake.routes["/api/datasources/proxy/uid/prometheus/api/v1/status/buildinfo"] = (
        502, {"message": "Bad Gateway"})
    status, detail = grafana_rows(url)["datasource Prometheus (prometheus)"]
    assert status == "fail" and "no such host" in detail and "502" in detail


def test_a_wrong_login_and_missing_dashboards_are_failures(grafana):
    url, fake = grafana
    rows = grafana_rows(url, password="wrong")
    assert rows["datasources (logged in as admin)"] == ("fail", "answered 401")
    fake.routes["/api/search?type=dash-db"] = (200, [])
    rows = grafana_rows(url)
    assert rows["0 dashboards provisioned"][0] == "fail"
    assert rows["dashboard uid purchase-journey"] == ("fail", "not provisioned")
