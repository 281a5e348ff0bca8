"""python -m tracestore: OTLP/HTTP in, Jaeger query API out, until SIGTERM or SIGINT."""

import argparse
import json
import os
import signal
import sys
import threading
from datetime import UTC, datetime

from tracestore.server import serve


def _log(event: str, level: str = "info", **fields: object) -> None:
    timestamp = datetime.now(UTC).isoformat()
    line = {"timestamp": timestamp, "level": level, "logger": "tracestore", "event": event}
    print(json.dumps({**line, **fields}), flush=True)


def _at_least_one(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m tracestore", description=__doc__)
    parser.add_argument("--host", default=env("TRACESTORE_HOST", "127.0.0.1"))
    parser.add_argument("--otlp-port", type=int, default=env("TRACESTORE_OTLP_PORT", "4318"))
    parser.add_argument("--query-port", type=int, default=env("TRACESTORE_QUERY_PORT", "16686"))
    parser.add_argument(
        "--max-traces", type=_at_least_one, default=env("TRACESTORE_MAX_TRACES", "20000")
    )
    parser.add_argument("--max-spans-per-trace", type=_at_least_one,
                        default=env("TRACESTORE_MAX_SPANS_PER_TRACE", "2000"))
    parser.add_argument("--max-mib", type=_at_least_one, default=env("TRACESTORE_MAX_MIB", "128"),
                        help="spans kept in all, in MiB as sent; the oldest traces go first")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        running = serve(args.host, args.otlp_port, args.query_port, args.max_traces,
                        max_spans_per_trace=args.max_spans_per_trace,
                        max_bytes=args.max_mib * 1024 * 1024)
    except OSError as exc:
        _log("tracestore.failed", level="error", error=str(exc))
        sys.exit(1)
    _log(
        "tracestore.started",
        host=args.host,
        otlp_port=running.otlp_port,
        query_port=running.query_port,
        max_traces=args.max_traces,
        max_spans_per_trace=args.max_spans_per_trace,
        max_mib=args.max_mib,
    )
    stop.wait()
    running.close()
    _log("tracestore.stopped")


if __name__ == "__main__":
    main()
