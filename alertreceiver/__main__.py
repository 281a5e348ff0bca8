"""`python -m alertreceiver` — standard library only."""

import argparse
import json
import os
import signal
import sys
import threading
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20
KEEP = 1000
# The names Alertmanager reaches it by (natively, compose, Kubernetes); any other Host is a
# page in a browser (DNS rebinding) or a stranger, not the lab's Alertmanager.
LAB_HOSTS = ("127.0.0.1", "localhost", "[::1]", "alert-receiver")


class BadNotification(ValueError):
    """A body that is JSON but not an Alertmanager webhook notification."""


def _notification(payload: object) -> dict:
    """The payload, checked to have the webhook's shape (version 4) where the receiver reads it."""
    if not isinstance(payload, dict):
        raise BadNotification("expected a JSON object")
    alerts = payload.get("alerts", [])
    if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
        raise BadNotification("'alerts' must be a list of objects")
    for alert in alerts:
        for key in ("labels", "annotations"):
            if not isinstance(alert.get(key, {}), dict):
                raise BadNotification(f"an alert's {key!r} must be an object")
    return payload


class Notifications:
    """The latest notifications, newest last, bounded."""

    def __init__(self, keep: int = KEEP):
        self._items: deque[dict] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, payload: dict) -> dict:
        entry = {
            "received_at": datetime.now(UTC).isoformat(),
            "receiver": payload.get("receiver"),
            "status": payload.get("status"),
            "alerts": [
                {
                    "status": a.get("status"),
                    "alertname": a.get("labels", {}).get("alertname"),
                    "severity": a.get("labels", {}).get("severity"),
                    "summary": a.get("annotations", {}).get("summary"),
                    "startsAt": a.get("startsAt"),
                    "endsAt": a.get("endsAt"),
                    "labels": a.get("labels", {}),
                }
                for a in payload.get("alerts", [])
            ],
        }
        with self._lock:
            self._items.append(entry)
        return entry

    def all(self) -> list[dict]:
        with self._lock:
            return list(self._items)


def make_handler(store: Notifications):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path in ("/health", "/"):
                self._send(200, {"status": "ok"})
            elif self.path == "/alerts":
                self._send(200, {"notifications": store.all()})
            else:
                self._send(404, {"error": "not_found"})

        def _refuse(self, status: int, error: str, detail: str) -> None:
            self.close_connection = True  # the body is unread: the stream is out of step
            self._send(status, {"error": error, "detail": detail})

        def _foreign(self) -> str | None:
            """Why this POST does not come from the lab's Alertmanager, or None."""
            if self.headers.get("Origin") is not None:
                return "a web page's request (it has an Origin); Alertmanager sends none"
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
            if host not in LAB_HOSTS:
                return f"Host {host!r} is not a name the lab reaches this receiver by"
            return None

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/alerts":
                self._refuse(404, "not_found", "notifications go to POST /alerts")
                return
            foreign = self._foreign()
            if foreign:
                self._refuse(403, "forbidden", foreign)
                return
            if self.headers.get_content_type() != "application/json":
                self._refuse(415, "unsupported_media_type", "send application/json")
                return
            raw = self.headers.get("Content-Length", "")
            if not (raw.isascii() and raw.isdigit()):
                self._refuse(400, "bad_content_length",
                             f"Content-Length must be a number of bytes, not {raw!r}")
                return
            if int(raw) > MAX_BODY:
                self._refuse(413, "payload_too_large", f"at most {MAX_BODY} bytes")
                return
            try:
                payload = json.loads(self.rfile.read(int(raw)))
            except (ValueError, RecursionError) as exc:
                self._send(400, {"error": "invalid_json", "detail": str(exc)})
                return
            try:
                payload = _notification(payload)
            except BadNotification as exc:
                self._send(400, {"error": "invalid_notification" if isinstance(payload, dict)
                                 else "invalid_json", "detail": str(exc)})
                return
            entry = store.add(payload)
            for alert in entry["alerts"]:
                print(json.dumps({
                    "timestamp": entry["received_at"], "level": "warning",
                    "service": "alert-receiver", "event": "alert_notification",
                    "receiver": entry["receiver"], **{k: alert[k] for k in (
                        "status", "alertname", "severity", "summary")},
                }), flush=True)
            self._send(200, {"status": "received"})

        def log_message(self, *_args) -> None:
            pass  # one JSON line per alert instead of an access log

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m alertreceiver")
    parser.add_argument("--host", default=os.environ.get("ALERT_RECEIVER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("ALERT_RECEIVER_PORT", "9095")))
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(Notifications()))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(json.dumps({"event": "alert_receiver_started", "service": "alert-receiver",
                      "port": server.server_address[1]}), flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
