#!/usr/bin/env python3
"""Follow one purchase through the record store, or load it with virtual shoppers.

  trace_purchase_journey.py [options]            one traced purchase (the default)
  trace_purchase_journey.py load-test [options]  virtual shoppers, a summary, an SLO verdict

One journey goes through the gateway like a shopper: browse the catalog, view an album, check
out, and poll the order until it is confirmed or failed. It prints the correlation id, the
trace id, each step's latency and the outcome; then it reads the purchase's trace from the
Jaeger query API (Jaeger in compose, the stand-in natively), prints it as a waterfall with
the user-facing versus end-to-end time, and says where to look next.

Standard library only: run it with a bare `python3`.
"""

import argparse
import random
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository, where labkit lives

from labkit import links, patterns, ramp  # noqa: E402
from labkit.journey import run_journey  # noqa: E402
from labkit.loadtest import run_load_test  # noqa: E402
from labkit.output import INTERRUPTED, OK, say  # noqa: E402
from labkit.shop import CORRELATION_ID, PAYMENT_METHODS  # noqa: E402

DEFAULT_BASE_URL = "http://localhost:8000"
DEFAULT_JAEGER_URL = "http://localhost:16686"
DEFAULT_GRAFANA_URL = "http://localhost:3000"
JOURNEY_HELP = """\
One traced purchase through the gateway: browse the catalog, view an album, check out, and
poll the order until it is confirmed or failed. Prints the correlation id, the trace id, each
step's latency and the outcome; then reads the purchase's trace from the Jaeger query API
(Jaeger in compose, the stand-in natively), prints it as a waterfall with the user-facing
versus end-to-end time, and says where to look next: Jaeger, Grafana, the logs.
"""
LOAD_TEST_HELP = """\
Virtual shoppers with realistic behaviour: journeys weighted browse only 35 %, view an album
30 %, abandon at checkout 15 %, buy one 15 %, buy several 5 %; think time between steps; a
favourite genre each. Shoppers arrive at a rate that a pattern shapes; at its baseline each
user starts about 3 journeys a minute. A live progress line, then a summary and a verdict
against the guide's SLO targets: checkout p95 < 500 ms, success > 99.9 %, order processing
p95 < 10 s.
"""
EXIT_STATUSES = """exit status:
  0  the order was confirmed (load-test: the run ended; with --slo, every target was met)
  1  the journey failed: an error answer (e.g. 503 with the database down), a failed order,
     or an order not final in time (load-test with --slo: a target was missed)
  2  bad usage
  3  nothing answered at --base-url (is the lab up?)
"""


def correlation_id(value: str) -> str:
    if not CORRELATION_ID.fullmatch(value):
        raise argparse.ArgumentTypeError(
            "must be 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit "
            "(the gateway refuses anything else with 400)")
    return value


def positive(kind: type) -> Any:
    def parse(value: str) -> Any:
        number = kind(value)
        if number <= 0:
            raise argparse.ArgumentTypeError("must be greater than 0")
        return number
    parse.__name__ = kind.__name__
    return parse


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL,
                        help=f"the gateway (default {DEFAULT_BASE_URL})")
    parser.add_argument("--jaeger-url", default=DEFAULT_JAEGER_URL,
                        help=f"Jaeger's UI and query API (default {DEFAULT_JAEGER_URL})")
    parser.add_argument("--grafana-url", default=DEFAULT_GRAFANA_URL,
                        help=f"Grafana, compose only (default {DEFAULT_GRAFANA_URL})")
    parser.add_argument("--seed", type=int,
                        help="make the random choices reproducible (default: a new seed each run)")
    parser.add_argument("--mode", choices=links.MODES,
                        help="how the lab runs, for the log commands it prints (default: native "
                             "when .lab/run/api.pid exists, else compose)")
    parser.add_argument("--json", metavar="FILE", type=Path,
                        help="also write the results to FILE as JSON")


def journey_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trace_purchase_journey.py",
        usage="%(prog)s [options]\n       %(prog)s load-test [options]   (see load-test --help)",
        description=JOURNEY_HELP, epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--correlation-id", type=correlation_id,
                        help="the X-Correlation-ID to send on every request "
                             "(default: a new journey-<hex> id)")
    parser.add_argument("--product-id", type=positive(int),
                        help="the album to buy (default: an in-stock album of the first page)")
    parser.add_argument("--quantity", type=int, default=1, choices=range(1, 11), metavar="1-10")
    parser.add_argument("--payment-method", choices=PAYMENT_METHODS, default="credit_card")
    parser.add_argument("--email", default="learner@example.com", help="the customer's e-mail")
    parser.add_argument("--order-timeout", type=positive(float), default=60.0, metavar="S",
                        help="how long to wait for the order to be confirmed or failed (60)")
    parser.add_argument("--trace-timeout", type=positive(float), default=30.0, metavar="S",
                        help="how long to wait for the worker's spans to reach Jaeger (30)")
    common_options(parser)
    return parser


def load_test_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trace_purchase_journey.py load-test",
        description=LOAD_TEST_HELP, epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pattern", choices=sorted(patterns.PATTERNS), default="steady",
                        help="steady; flash-sale: a ramp from 30 to 300 journeys/min (at 10 "
                             "users); business-hours: a shop day (night, morning, lunch peak, "
                             "evening) per --duration, or per 10 minutes without one")
    parser.add_argument("--users", type=positive(int), default=10, metavar="N",
                        help="scales the traffic: each user is ~3 journeys/min at the "
                             "pattern's baseline (default 10)")
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument("--duration", type=positive(float), metavar="S",
                       help="start journeys for S seconds (default 60 without another bound)")
    bound.add_argument("--journeys", type=positive(int), metavar="N",
                       help="start N journeys, then stop")
    bound.add_argument("--forever", action="store_true",
                       help="run until SIGTERM or Ctrl-C (background traffic)")
    bound.add_argument("--ramp", type=ramp.parse_ramp, metavar="FROM:TO:STEP",
                       help="journeys a minute from FROM to TO, STEP more every --step seconds "
                            "(instead of --pattern and --users); then a table per step: "
                            "checkouts/s accepted, checkout p95, orders p95, errors, SLO")
    parser.add_argument("--step", type=positive(float), default=30.0, metavar="S",
                        help="how long each step of --ramp lasts (default 30)")
    parser.add_argument("--think-time", type=float, default=2.0, metavar="S",
                        help="a shopper's mean pause between steps (default 2)")
    parser.add_argument("--order-timeout", type=positive(float), default=60.0, metavar="S",
                        help="how long a buyer waits for an order to become final (60)")
    parser.add_argument("--slo", action="store_true",
                        help="exit 1 when a target is missed")
    parser.add_argument("--quiet", action="store_true",
                        help="no live progress line; one summary line per minute instead")
    common_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["load-test"]:
        args = load_test_parser().parse_args(argv[1:])
        if args.seed is None:
            args.seed = random.SystemRandom().randrange(1_000_000)
        return run_load_test(args)
    args = journey_parser().parse_args(argv)
    try:
        return run_journey(args)
    except KeyboardInterrupt:
        say("\ninterrupted")
        return INTERRUPTED


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into head: the reader has seen enough
        sys.exit(OK)
