"""Jaeger's command line over the lab's trace stand-in: `--config FILE` in Jaeger v2's layout.

The ports come from the file itself (the OTLP/HTTP receiver, jaeger_query, healthcheckv2), and
the file is refused, as Jaeger refuses it, when a pipeline names a component it does not define.
"""

import argparse
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from tracestore.server import serve

MAX_TRACES = 20000


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def undefined_components(config: dict) -> list[str]:
    service = config.get("service") or {}
    missing = [f"extensions/{e}" for e in service.get("extensions", [])
               if e not in (config.get("extensions") or {})]
    for name, pipeline in (service.get("pipelines") or {}).items():
        for kind in ("receivers", "processors", "exporters"):
            defined = config.get(kind) or {}
            missing += [f"{kind}/{c} (pipeline {name})" for c in pipeline.get(kind, [])
                        if c not in defined]
    return missing


class _Status(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        ok = self.path.split("?")[0] == "/status"
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status":"StatusOK"}\n' if ok else b"{}\n")

    def log_message(self, *_: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(prog="jaeger (stand-in)")
    parser.add_argument("--config", required=True)
    with open(parser.parse_args().config) as f:
        config = yaml.safe_load(f)
    missing = undefined_components(config)
    if missing:
        sys.exit(f"invalid configuration: not defined: {', '.join(missing)}")
    extensions = config["extensions"]
    otlp = port_of(config["receivers"]["otlp"]["protocols"]["http"]["endpoint"])
    query = port_of(extensions["jaeger_query"]["http"]["endpoint"])
    health = port_of(extensions["healthcheckv2"]["http"]["endpoint"])
    running = serve("0.0.0.0", otlp, query, MAX_TRACES)
    status = ThreadingHTTPServer(("0.0.0.0", health), _Status)
    threading.Thread(target=status.serve_forever, daemon=True).start()
    print(f"jaeger stand-in: OTLP/HTTP :{otlp}, query API :{query}, status :{health}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    running.close()
    status.shutdown()


if __name__ == "__main__":
    main()
