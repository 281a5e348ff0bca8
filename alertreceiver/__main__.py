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

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/alerts":
                self._send(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": "payload_too_large"})
                return
            try:
                payload = json.loads(self.rfile.read(length))
                if not isinstance(payload, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                self._send(400, {"error": "invalid_json", "detail": str(exc)})
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
