"""The alert receiver at its edges: a clear 400 for a bad body, never a traceback, and no
notification from outside the lab (a web page, another host name)."""

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from labctl.config import ROOT


@pytest.fixture
def receiver() -> Iterator[tuple[int, subprocess.Popen]]:
    proc = subprocess.Popen([sys.executable, "-m", "alertreceiver", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = json.loads(proc.stdout.readline())["port"]
    yield port, proc
    proc.terminate()
    proc.wait(timeout=10)


def send(port: int, body: bytes, **headers: str) -> tuple[int, dict]:
    """A POST /alerts as raw bytes (clients normalise Content-Length); the answer's status and
    JSON body. The socket stays open after the body, as a keep-alive client's would."""
    fields = {"Host": f"127.0.0.1:{port}", "Content-Type": "application/json",
              "Content-Length": str(len(body)), **headers}
    head = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in fields.items())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"POST /alerts HTTP/1.1\r\n{head}\r\n".encode() + body)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(rest)


ALERT = {"receiver": "lab", "status": "firing",
         "alerts": [{"status": "firing", "labels": {"alertname": "Test", "severity": "page"},
                     "annotations": {"summary": "s"}, "startsAt": "2026-01-01T00:00:00Z"}]}


@pytest.mark.parametrize("body,headers,status,error", [
    (b"{}", {"Content-Length": "-1"}, 400, "bad_content_length"),
    (b"{}", {"Content-Length": "abc"}, 400, "bad_content_length"),
    (b"{}", {"Content-Length": "+2"}, 400, "bad_content_length"),
    (b'{"alerts": [1]}', {}, 400, "invalid_notification"),
    (b'{"alerts": "x"}', {}, 400, "invalid_notification"),
    (b'{"alerts": [{"labels": 3}]}', {}, 400, "invalid_notification"),
    (b"[1]", {}, 400, "invalid_json"),
    (json.dumps(ALERT).encode(), {"Origin": "http://evil.example"}, 403, "forbidden"),
    (json.dumps(ALERT).encode(), {"Host": "evil.example:9095"}, 403, "forbidden"),
    (json.dumps(ALERT).encode(), {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
])
def test_bad_or_foreign_posts_get_a_clear_error_and_no_traceback(receiver, body, headers,
                                                                   status, error):
    port, proc = receiver
    got_status, got = send(port, body, **headers)
    assert (got_status, got["error"]) == (status, error)
    assert got["detail"]
    assert send(port, json.dumps(ALERT).encode()) == (200, {"status": "received"})
    proc.terminate()
    _, stderr = proc.communicate(timeout=10)
    assert "Traceback" not in stderr


def test_alertmanagers_post_is_received(receiver):
    port, _ = receiver
    assert send(port, json.dumps(ALERT).encode(), User_Agent="Alertmanager/0.25.0") == (
        200, {"status": "received"})
