"""What a web page or a stranger could do to the lab (issue 27, parts 2, 4 and 5): the page's
headers, the docs offline, the admin token, the APIs the lab does not use, the gateway's
keep-alive to the trace backend and its 502s."""

import json
import re
import time
import uuid
from html.parser import HTMLParser

import httpx
import pytest

from labctl.config import ROOT
from tests.helpers import lab_command, wait_for

pytestmark = pytest.mark.stack


def otlp_span(n: int) -> bytes:
    """One span of a trace of its own, as OTLP/JSON (what the storefront exports)."""
    now = time.time_ns()
    span = {"traceId": uuid.uuid4().hex, "spanId": f"{n + 1:016x}", "name": "edge-test",
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000)}
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "edge-test"}}]}
    return json.dumps({"resourceSpans": [{"resource": resource,
                                          "scopeSpans": [{"spans": [span]}]}]}).encode()


def csp(resp: httpx.Response) -> dict[str, str]:
    policy = resp.headers.get("content-security-policy", "")
    return {d.split()[0]: " ".join(d.split()[1:]) for d in policy.split(";") if d.strip()}


@pytest.mark.parametrize("path", ["/", "/index.html", "/assets/app.js", "/assets/store.css"])
def test_the_storefront_is_served_with_a_strict_policy(gateway, path):
    resp = gateway.get(path)
    assert resp.status_code == 200
    policy = csp(resp)
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "same-origin"


def test_the_api_and_the_gateways_errors_say_nosniff(gateway):
    for path in ("/products/1", "/no/such/page", "/health"):
        assert gateway.get(path).headers["x-content-type-options"] == "nosniff", path


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src"):
            self.inline.append("<script> without src")
        if tag == "style" or "style" in attrs or any(a.startswith("on") for a in attrs):
            self.inline.append(f"<{tag}> with inline style or handler")


def test_the_storefront_has_nothing_inline_that_the_policy_would_block():
    parser = _Tags()
    parser.feed((ROOT / "nginx" / "html" / "index.html").read_text())
    assert parser.inline == []
    for js in ("app.js", "trace-view.js"):
        source = (ROOT / "nginx" / "html" / "assets" / js).read_text()
        # setAttribute('style', ...) is an inline style to the policy; node.style is not.
        assert "setAttribute(name" not in source or "name === 'style'" in source, js
        assert not re.search(r"\beval\(|new Function\(|innerHTML", source), js


def test_the_api_docs_come_from_the_lab_itself(gateway):
    page = gateway.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ['"]([^'"]+)['"]""", page.text)
    urls = [a or b for a, b in urls]
    assert urls and not [u for u in urls if "://" in u], urls
    for kind, suffix in (("javascript", ".js"), ("css", ".css")):
        asset = next(u for u in urls if u.endswith(suffix))
        resp = gateway.get(asset)
        assert resp.status_code == 200, asset
        assert kind in resp.headers["content-type"]
        assert len(resp.content) > 50_000


def test_prometheus_lifecycle_api_is_off(lab):
    resp = httpx.post(lab.url("PROMETHEUS_PORT", "/-/reload"), timeout=5)
    assert resp.status_code == 403, resp.text


def test_the_admin_routes_take_the_labs_own_token_only(lab, gateway):
    for token in ("lab-admin-token", "change-me-lab-admin", "x"):
        resp = gateway.get("/admin/chaos", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, token
    own = (lab.home / "admin-token").read_text().strip()
    assert own == lab.env["ADMIN_TOKEN"]
    resp = gateway.get("/admin/chaos", headers={"Authorization": f"Bearer {own}"})
    assert resp.status_code == 200


def test_refused_otlp_exports_leave_no_502_behind(gateway):
    """Each refused export closes its connection to the trace backend; nginx must know."""
    for n in range(40):
        bad = gateway.post("/otlp/v1/traces", content=b"{not json",
                           headers={"Content-Type": "application/json"})
        assert bad.status_code == 400, bad.text
        good = gateway.post("/otlp/v1/traces", content=otlp_span(n),
                            headers={"Content-Type": "application/json"})
        assert good.status_code == 200, (n, good.status_code, good.text)


@pytest.mark.disruptive
def test_a_502_names_the_upstream_that_failed(lab, gateway):
    lab_command(lab, "stop", "jaeger")
    try:
        resp = gateway.get("/api/traces/0123abcd")
        assert resp.status_code == 502
        detail = resp.json()["detail"]
        assert "trace" in detail and "checkout API" not in detail, detail
        resp = gateway.post("/otlp/v1/traces", content=otlp_span(1),
                            headers={"Content-Type": "application/json"})
        assert resp.status_code == 502
        assert "checkout API" not in resp.json()["detail"]
    finally:
        lab_command(lab, "start", "jaeger")
    wait_for(lambda: gateway.get("/api/traces/0123abcd").status_code == 404, 30, "jaeger back")
