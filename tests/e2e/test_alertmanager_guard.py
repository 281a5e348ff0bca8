"""What a web page can do to the lab's Alertmanager (issue 27, part 5): nothing. Alertmanager
answers any origin itself (`Access-Control-Allow-Origin: *`, and 0.25's v1 API takes a JSON
body sent as text/plain, which needs no preflight), so natively it listens on a Unix socket
only and the gateway serves its port: a request with another page's Origin, or another host
name (DNS rebinding), never reaches it. Its own UI and the lab's programs still do."""

import os
from pathlib import Path

import httpx
import pytest

from labctl.components import BY_NAME

pytestmark = pytest.mark.stack

EVIL = "http://evil.example"
SILENCE = ('{"matchers":[{"name":"alertname","value":"DatabaseDown","isRegex":false}],'
           '"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z",'
           '"createdBy":"a-web-page","comment":"silenced by a page the learner visited"}')


@pytest.fixture(scope="module")
def alertmanager(lab):
    with httpx.Client(base_url=lab.url("ALERTMANAGER_PORT"), timeout=10) as client:
        yield client


def silences_by(alertmanager: httpx.Client, author: str) -> list[dict]:
    resp = alertmanager.get("/api/v2/silences")
    assert resp.status_code == 200, resp.text
    return [s for s in resp.json()
            if s["createdBy"] == author and s["status"]["state"] != "expired"]


def test_a_page_of_another_origin_cannot_write(alertmanager):
    # What a browser sends first for a JSON POST: refused, so it sends no POST at all.
    preflight = alertmanager.request("OPTIONS", "/api/v2/silences", headers={
        "Origin": EVIL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 403, preflight.headers
    assert "access-control-allow-origin" not in preflight.headers
    # And what needs no preflight: a form's or a no-cors fetch's text/plain body (0.25's v1 API
    # decodes it as JSON), or a JSON POST a page sends anyway.
    writes = [("/api/v2/silences", "application/json", SILENCE),
              ("/api/v1/silences", "text/plain", SILENCE),
              ("/api/v1/alerts", "text/plain", '[{"labels":{"alertname":"FromAWebPage"}}]'),
              ("/api/v2/alerts", "application/json", '[{"labels":{"alertname":"FromAWebPage"}}]')]
    for origin in (EVIL, "null"):  # "null": a sandboxed frame's, a data: URL's
        for path, content_type, body in writes:
            resp = alertmanager.post(path, content=body, headers={
                "Origin": origin, "Content-Type": content_type})
            assert resp.status_code == 403, (origin, path, resp.text)
            assert resp.json()["error"] == "cross_origin_request"
    assert silences_by(alertmanager, "a-web-page") == []
    alerts = alertmanager.get("/api/v2/alerts").json()
    assert [a for a in alerts if a["labels"]["alertname"] == "FromAWebPage"] == []


def test_a_page_of_another_origin_cannot_read(alertmanager):
    resp = alertmanager.get("/api/v2/alerts", headers={"Origin": EVIL})
    assert resp.status_code == 403
    assert "access-control-allow-origin" not in resp.headers


def test_a_rebound_host_name_is_refused(lab, alertmanager):
    """A page whose own name resolves to 127.0.0.1 is same-origin with itself: its Host says so."""
    host = f"evil.example:{lab.port('ALERTMANAGER_PORT')}"
    resp = alertmanager.post("/api/v2/silences", content=SILENCE, headers={
        "Host": host, "Origin": f"http://{host}", "Content-Type": "application/json"})
    assert resp.status_code == 421, resp.text
    assert silences_by(alertmanager, "a-web-page") == []


def test_its_own_ui_and_the_labs_programs_still_work(lab, alertmanager):
    page = alertmanager.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    own = f"http://127.0.0.1:{lab.port('ALERTMANAGER_PORT')}"
    # The UI's own silence form: a same-origin POST (the browser sends its Origin).
    made = alertmanager.post("/api/v2/silences", content=SILENCE.replace("a-web-page", "the-ui"),
                             headers={"Origin": own, "Content-Type": "application/json"})
    assert made.status_code == 200, made.text
    assert "access-control-allow-origin" not in made.headers
    silence_id = made.json()["silenceID"]
    try:
        assert [s["id"] for s in silences_by(alertmanager, "the-ui")] == [silence_id]
    finally:
        gone = alertmanager.delete(f"/api/v2/silence/{silence_id}", headers={"Origin": own})
        assert gone.status_code == 200, gone.text
    assert alertmanager.get("/-/ready").status_code == 200  # no Origin: ./lab alerts, curl


def tcp_listening_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def test_alertmanager_itself_listens_on_no_tcp_port(lab):
    """Natively a browser reaches every loopback port: Alertmanager must have none of its own."""
    pid = BY_NAME["alertmanager"].pid(lab)
    assert pid is not None
    sockets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    inodes = {s[len("socket:["):-1] for s in sockets if s.startswith("socket:[")}
    assert inodes, "Alertmanager holds no socket at all"
    assert not inodes & tcp_listening_inodes()
