"""The gateway: correlation ids, limits, the storefront's files, the JSON access log."""

import http.client
import ipaddress
import json
import re
import socket
import uuid
from pathlib import Path

import pytest

from labkit import progress
from tests.helpers import wait_for

pytestmark = pytest.mark.stack


def test_a_correlation_id_is_minted_when_none_is_sent(gateway):
    resp = gateway.get("/products/1")
    assert resp.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-correlation-id"])


def test_a_callers_correlation_id_is_kept_and_returned_once(gateway):
    resp = gateway.get("/products?genre=Jazz", headers={"X-Correlation-ID": "abc-123-def"})
    assert resp.status_code == 200
    assert resp.headers.get_list("x-correlation-id") == ["abc-123-def"]


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "-dash", "semi;colon", "ü-umlaut"])
def test_a_malformed_correlation_id_is_refused_at_the_gateway(gateway, bad):
    resp = gateway.get("/products", headers={"X-Correlation-ID": bad.encode()})
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "invalid_correlation_id"
    assert body["correlation_id"] == resp.headers["x-correlation-id"]


def test_oversized_bodies_are_refused_with_json(gateway):
    resp = gateway.post("/checkout", content=b"{" + b" " * 70_000 + b"}",
                        headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["error"] == "payload_too_large"


def raw_request(lab, head: bytes) -> http.client.HTTPResponse:
    """A request sent as bytes, as a client may: nothing normalises it on the way (httpx would
    resolve the dots of /orders/../../etc/passwd before sending)."""
    sock = socket.create_connection(("127.0.0.1", lab.port("GATEWAY_PORT")), timeout=10)
    sock.sendall(head + b"\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    resp.body = resp.read()
    sock.close()
    return resp


LONG = b"a" * 9000  # past nginx's 8 KiB buffers for a request line or a header


@pytest.mark.parametrize("head,status,error", [
    (b"GET /orders/../../etc/passwd HTTP/1.1", 400, "bad_request"),
    (b"NOT-HTTP", 400, "bad_request"),
    (b"GET /no-such-page HTTP/1.1", 404, "not_found"),
    (b"GET /assets/ HTTP/1.1", 403, "forbidden"),
    (b"POST /assets/app.js HTTP/1.1\r\nContent-Length: 0", 405, "method_not_allowed"),
    (b"GET /products/" + LONG + b" HTTP/1.1", 414, "uri_too_long"),
    (b"GET / HTTP/1.1\r\nCookie: " + LONG, 400, "request_header_too_large"),
    (b"GET / HTTP/2.0", 505, "http_version_not_supported"),
], ids=["dot-dot", "no-http", "unknown-path", "directory", "post-a-file", "long-uri",
        "big-header", "http-2-in-1"])
def test_the_gateways_own_errors_are_json_with_the_correlation_id(lab, head, status, error):
    resp = raw_request(lab, head)
    assert resp.status == status
    assert resp.getheader("Content-Type") == "application/json"
    body = json.loads(resp.body)
    assert set(body) == {"error", "detail", "correlation_id"} and body["error"] == error
    assert body["correlation_id"] == resp.getheader("X-Correlation-ID")
    assert re.fullmatch(r"[0-9a-f]{32}", body["correlation_id"])


def test_a_gateway_error_keeps_the_callers_correlation_id(gateway):
    resp = gateway.delete("/", headers={"X-Correlation-ID": "gw-error-1"})
    assert resp.status_code == 405 and resp.headers["content-type"] == "application/json"
    assert resp.json()["correlation_id"] == resp.headers["x-correlation-id"] == "gw-error-1"


def test_the_storefront_is_served_at_the_root(gateway):
    resp = gateway.get("/")
    assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]
    assert "/assets/app.js" in resp.text
    # Browsers run a module script only when it is served as JavaScript.
    for asset in ("/assets/app.js", "/assets/otel-web.js"):
        script = gateway.get(asset)
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_the_gateway_tells_the_page_the_ports_of_jaeger_and_grafana(lab, gateway):
    """The test stack's Jaeger port is a free one, not .env's 16686: the order page's links
    must follow it (tests/unit/test_storefront.py: the page builds them from this)."""
    resp = gateway.get("/gateway/links")
    assert resp.status_code == 200
    assert resp.json() == {"jaeger_ui_port": str(lab.port("JAEGER_UI_PORT")),
                           "grafana_port": str(lab.port("GRAFANA_PORT"))}


def test_the_gateway_serves_the_learners_progress_read_only(lab, gateway):
    """#/progress reads .lab/progress.json, the record ./lab check keeps, through the gateway:
    the file as it is, never cached, and no write."""
    progress.record("01-follow-a-purchase", False, [], [], home=lab.home)
    resp = gateway.get("/lab/progress.json")
    assert resp.status_code == 200, resp.text
    assert resp.json() == json.loads(progress.path(lab.home).read_text())
    assert resp.headers["cache-control"] == "no-store" and resp.headers["x-correlation-id"]
    refused = gateway.post("/lab/progress.json", json={})
    assert refused.status_code == 405 and refused.json()["error"] == "method_not_allowed"
    assert gateway.get("/lab/admin-token").status_code == 404  # the lab's home, no more


def test_the_gateway_passes_on_only_what_the_pages_telemetry_line_reads(gateway):
    """readiness.js reads the trace store's services and Prometheus's active targets through
    the gateway; nothing else of those APIs, and no write."""
    assert gateway.get("/products").status_code == 200  # a trace of the lab, at least this one
    def stored():
        services = gateway.get("/api/services")
        assert services.status_code == 200, services.text
        return any(s.endswith("-api") for s in services.json()["data"])

    wait_for(stored, 15, "the API's service in the trace store, read through the gateway")
    targets = gateway.get("/api/v1/targets", params={"state": "dropped"})
    assert targets.status_code == 200
    active = targets.json()["data"]["activeTargets"]
    assert {t["labels"]["job"] for t in active} >= {"api", "worker"}, "active ones, whatever asked"
    assert gateway.post("/api/v1/targets").status_code == 405
    assert gateway.get("/api/v1/rules").status_code == 404
    assert gateway.get("/api/services/x/operations").status_code == 404


def test_catalog_browsing_filters_searches_and_pages(gateway):
    jazz = gateway.get("/products", params={"genre": "Jazz", "page_size": 5}).json()
    assert jazz["total"] >= 5 and len(jazz["items"]) == 5
    assert {p["genre"] for p in jazz["items"]} == {"Jazz"}
    page2 = gateway.get("/products", params={"genre": "Jazz", "page_size": 5, "page": 2}).json()
    assert not {p["id"] for p in page2["items"]} & {p["id"] for p in jazz["items"]}
    found = gateway.get("/products", params={"q": "MILES"}).json()
    assert found["items"] and all("miles" in (p["title"] + p["artist"]).lower()
                                  for p in found["items"])
    assert gateway.get("/products", params={"q": "100%_"}).json()["total"] == 0
    assert gateway.get("/products/1").json()["sku"] == "RS-0001"


def test_health_reports_each_dependency(gateway):
    body = gateway.get("/health").json()
    assert body["status"] == "ok" and body["down"] == []
    assert body["checks"]["database"]["status"] == "up"
    assert body["checks"]["broker"]["status"] == "up"


def test_access_log_is_json_with_the_id_and_upstream_time(lab, gateway):
    cid = f"gw-{uuid.uuid4().hex[:10]}"
    gateway.get("/products/2", headers={"X-Correlation-ID": cid})

    def line():
        for raw in (lab.logs / "gateway.log").read_text().splitlines():
            if cid in raw:
                return json.loads(raw)
        return None

    entry = wait_for(line, 5, "the gateway's access log line")
    assert entry["correlation_id"] == cid and entry["status"] == 200
    assert entry["uri"] == "/products/2"
    assert float(entry["upstream_response_time"]) >= 0
    assert re.fullmatch(r"[0-9a-f]{32}", entry["trace_id"])


def listening_addresses(port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The local addresses of the TCP sockets that listen on `port`, from the kernel's tables."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            hexed, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(hexed)  # each 32-bit word in the host's (little) byte order
                found.append(ipaddress.ip_address(
                    b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))))
    return found


def test_the_gateway_listens_on_loopback_only(lab):
    addresses = listening_addresses(lab.port("GATEWAY_PORT"))
    assert addresses and all(address.is_loopback for address in addresses), addresses
