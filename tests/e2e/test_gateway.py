"""The gateway: correlation ids, limits, the storefront's files, the JSON access log."""

import ipaddress
import json
import re
import uuid
from pathlib import Path

import pytest

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


def test_the_storefront_is_served_at_the_root(gateway):
    resp = gateway.get("/")
    assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]
    assert "/assets/app.js" in resp.text
    # Browsers run a module script only when it is served as JavaScript.
    for asset in ("/assets/app.js", "/assets/otel-web.js"):
        script = gateway.get(asset)
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]


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
