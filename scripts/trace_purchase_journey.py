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
import json
import random
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # import labkit as scripts.labkit, like every other importer

from scripts.labkit import http, jaeger, links, loadgen, waterfall  # noqa: E402
from scripts.labkit.shop import (  # noqa: E402
    CORRELATION_ID,
    FINAL_STATUSES,
    PAYMENT_METHODS,
    Shop,
    Step,
    new_correlation_id,
)

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
# Exit statuses (also in --help).
OK, JOURNEY_FAILED, USAGE, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 130
EXIT_STATUSES = """exit status:
  0  the order was confirmed (load-test: the run ended; with --slo, every target was met)
  1  the journey failed: an error answer (e.g. 503 with the database down), a failed order,
     or an order not final in time (load-test with --slo: a target was missed)
  2  bad usage
  3  nothing answered at --base-url (is the lab up?)
"""
# The worker operations the waterfall's time breakdown names, in the lab's guide's words.
BREAKDOWN_OPERATIONS = ["authorize_payment", "reserve_stock", "send_email"]
ORDER_POLL_S = 0.5


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
    parser.add_argument("--pattern", choices=sorted(loadgen.PATTERNS), default="steady",
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


def say(line: str = "") -> None:
    print(line, flush=True)


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


# ---------------------------------------------------------------- one journey


class Journey:
    """One shopper's purchase, step by step, printed as it goes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.cid = args.correlation_id or new_correlation_id()
        self.shop = Shop(args.base_url, self.cid)
        self.steps: list[tuple[str, Step, str]] = []  # (label, step, result text)
        self.order: dict[str, Any] | None = None
        self.checkout: Step | None = None

    def run(self) -> None:
        say(f"Purchase journey through {self.args.base_url}")
        say(f"  correlation id  {self.cid}   (sent as X-Correlation-ID on every request)")
        say()
        say(f"  {'step':<22} {'request':<36} {'status':>6} {'latency':>10}  result")
        product_id = self._browse()
        if product_id is None:
            return
        if self._view(product_id) and self._checkout(product_id):
            self._wait_for_order()

    def _record(self, label: str, step: Step, result: str) -> Step:
        if step.error:
            kind = step.error.split(" ", 1)[1] if step.status else step.error  # status has a column
            result = kind + (f": {step.detail}" if step.detail else "")
        status = str(step.status or "-")
        latency = f"{step.latency_ms:.1f} ms" if step.status else "-"
        request = f"{step.method} {step.path}"
        say(f"  {label:<22} {request[:36]:<36} {status:>6} {latency:>10}  {result}")
        self.steps.append((label, step, result))
        return step

    def _browse(self) -> int | None:
        step = self.shop.browse(page_size=12)
        body = step.body if step.ok and isinstance(step.body, dict) else {}
        items = body.get("items") or []
        self._record("1 browse the catalog", step,
                     f"{len(items)} of {body.get('total', '?')} albums, "
                     f"{len(body.get('genres') or [])} genres")
        if step.status == 0:
            return None
        if self.args.product_id:
            return self.args.product_id
        in_stock = [i for i in items if int(i.get("stock", 0)) >= self.args.quantity]
        # With the catalog unreadable, try album 1, to show how checkout fails too.
        return int(self.rng.choice(in_stock)["id"]) if in_stock else 1

    def _view(self, product_id: int) -> bool:
        step = self.shop.view(product_id)
        album = step.body if step.ok and isinstance(step.body, dict) else {}
        result = (f"\"{album.get('title')}\" by {album.get('artist')}, "
                  f"{money(int(album.get('price_cents', 0)))}, {album.get('stock')} in stock"
                  if album else "")
        self._record("2 view an album", step, result)
        return step.status != 0

    def _checkout(self, product_id: int) -> bool:
        step = self.shop.checkout(product_id, self.args.quantity, self.args.email,
                                  self.args.payment_method)
        self.checkout = step
        body = step.body if step.status == 202 and isinstance(step.body, dict) else {}
        result = (f"order {body.get('order_id')} {body.get('status')}, "
                  f"{money(int(body.get('total_cents', 0)))}" if body else "")
        self._record("3 check out", step, result)
        return bool(body)

    def _wait_for_order(self) -> None:
        assert self.checkout is not None
        order_id = int(self.checkout.body["order_id"])
        seen: list[str] = []
        polls = 0
        started = time.monotonic()
        deadline = started + self.args.order_timeout
        while True:
            step = self.shop.order(order_id)
            polls += 1
            if step.ok and isinstance(step.body, dict):
                self.order = step.body
                status = str(step.body.get("status"))
                if not seen or seen[-1] != status:
                    seen.append(status)
                if status in FINAL_STATUSES:
                    break
            elif step.status in (0, 502, 503, 504):
                pass  # a dependency blinked: a waiting customer reloads the page
            else:
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(ORDER_POLL_S)
        step.latency_ms = (time.monotonic() - started) * 1000  # the wait, not the last poll
        result = " -> ".join(["pending", *[s for s in seen if s != "pending"]])
        if self.order and self.order.get("failure_reason"):
            result += f" ({self.order['failure_reason']})"
        elif not self.order or self.order.get("status") not in FINAL_STATUSES:
            result += f"; not final after {self.args.order_timeout:g} s"
        self._record("4 wait for the order", step, f"{result}   ({polls} polls)")

    @property
    def trace_id(self) -> str:
        if self.checkout is None:
            return ""
        body = self.checkout.body if isinstance(self.checkout.body, dict) else {}
        return str(body.get("trace_id") or self.checkout.trace_id or "")

    @property
    def errors(self) -> list[Step]:
        return [step for _, step, _ in self.steps if step.error]

    @property
    def outcome(self) -> str:
        if self.order:
            return str(self.order.get("status"))
        return "no order" if self.steps and self.steps[0][1].status else "unreachable"

    def exit_status(self) -> int:
        if self.outcome == "unreachable":
            return UNREACHABLE
        return OK if self.outcome == "confirmed" and not self.errors else JOURNEY_FAILED

    def report_outcome(self) -> None:
        say()
        if self.outcome == "unreachable":
            first = self.steps[0][1]
            say(f"  outcome     nothing answered at {self.args.base_url} ({first.error}).")
            say("              Is the lab up?  ./lab up  (native)  or  docker compose up -d")
            return
        order = self.order or {}
        if self.outcome == "confirmed":
            stamps = order.get("timestamps") or {}
            e2e = _seconds_between(stamps.get("pending"), stamps.get("confirmed"))
            say(f"  outcome     confirmed: order {order.get('order_id')}, "
                f"{e2e:.1f} s from created to confirmed")
        elif self.outcome == "failed":
            say(f"  outcome     FAILED: order {order.get('order_id')}: "
                f"{order.get('failure_reason')}")
        elif self.order:
            say(f"  outcome     NOT FINAL: order {order.get('order_id')} is still "
                f"{order.get('status')} after {self.args.order_timeout:g} s")
        else:
            say("  outcome     FAILED: no order was placed")
        if not self.trace_id:
            say("  trace id    (none: the checkout answer carried no trace id)")
        else:
            note = "" if self.order else "   (the refused checkout's)"
            say(f"  trace id    {self.trace_id}{note}")
        if self.errors:
            say()
            say(f"  {len(self.errors)} request(s) answered with an error; each with the "
                "correlation id to grep the logs for:")
            for step in self.errors:
                say(f"    {step.method + ' ' + step.path:<40} {step.error:<28} correlation id "
                    f"{step.correlation_id}")

    def results(self) -> dict[str, Any]:
        return {
            "correlation_id": self.cid, "trace_id": self.trace_id, "outcome": self.outcome,
            "order": self.order,
            "steps": [{"step": label, "request": f"{s.method} {s.path}", "status": s.status,
                       "latency_ms": round(s.latency_ms, 1), "correlation_id": s.correlation_id,
                       "trace_id": s.trace_id, "error": s.error, "result": result}
                      for label, s, result in self.steps],
        }


def _seconds_between(start: str | None, end: str | None) -> float:
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def trace_ready(order: dict[str, Any] | None) -> Callable[[jaeger.SpanTree], bool]:
    """When the trace holds what this journey produced: no span is waiting for its parent,
    and the worker's last task has arrived (for an accepted order)."""
    status = (order or {}).get("status")
    last = {"confirmed": "send_order_confirmation", "failed": "process_order"}.get(status)

    def ready(tree: jaeger.SpanTree) -> bool:
        if not tree.spans or tree.orphans:
            return False
        if order is None:
            return True  # a refused checkout: the API's spans are all there is
        if last is None:
            return links.WORKER_SERVICE in tree.services
        return bool(tree.find(last, links.WORKER_SERVICE))
    return ready


def show_trace(journey: Journey, args: argparse.Namespace) -> dict[str, Any] | None:
    trace_id = journey.trace_id
    if not trace_id:
        return None
    say()
    query = jaeger.JaegerQuery(args.jaeger_url)
    waiting_for = "the worker's spans" if journey.order else "the API's spans"
    say(f"Reading trace {trace_id} from {args.jaeger_url} "
        f"(waiting up to {args.trace_timeout:g} s for {waiting_for})")
    started = time.monotonic()
    try:
        tree, complete = query.wait_for_tree(trace_id, trace_ready(journey.order),
                                             args.trace_timeout)
    except (http.Unreachable, jaeger.JaegerError) as exc:
        say(f"  could not read the trace: {exc}")
        return None
    if tree is None:
        say(f"  the trace did not arrive within {args.trace_timeout:g} s")
        return None
    services = ", ".join(sorted(waterfall.short_service(s) for s in tree.services))
    state = (f"complete after {time.monotonic() - started:.1f} s" if complete else
             f"INCOMPLETE after {args.trace_timeout:g} s: spans may still be arriving")
    say(f"  {len(tree.spans)} spans from {services}; {state}")
    say()
    for line in waterfall.render(tree):
        say("  " + line)
    summary = {"spans": len(tree.spans), "services": sorted(tree.services), "complete": complete}
    if journey.order is None:
        return summary  # a refused checkout: no background work to break down
    say()
    say("Where the time went")
    b = waterfall.breakdown(tree, BREAKDOWN_OPERATIONS)
    client_ms = journey.checkout.latency_ms if journey.checkout else None
    root = tree.roots[0].operation if tree.roots else "the request"
    for line in waterfall.render_breakdown(b, root, client_ms):
        say(line)
    return {**summary, "user_facing_ms": round(b.user_facing_us / 1000, 1),
            "end_to_end_ms": round(b.end_to_end_us / 1000, 1)}


def where_next(args: argparse.Namespace, cid: str, trace_id: str) -> None:
    mode = args.mode or links.detect_mode(REPO)
    say()
    say(f"Where to look next ({mode} mode)")
    for what, where in links.next_steps(mode, args.jaeger_url, args.grafana_url, cid, trace_id):
        say(f"  {what:<52} {where}")


def run_journey(args: argparse.Namespace) -> int:
    journey = Journey(args)
    journey.run()
    journey.report_outcome()
    if journey.outcome == "unreachable":
        return journey.exit_status()
    trace = show_trace(journey, args)
    where_next(args, journey.cid, journey.trace_id)
    if args.json:
        write_json(args.json, {**journey.results(), "trace": trace})
    return journey.exit_status()


# ---------------------------------------------------------------- load test


def run_load_test(args: argparse.Namespace) -> int:
    duration = args.duration if args.duration or args.journeys or args.forever else 60.0
    config = loadgen.LoadConfig(
        base_url=args.base_url, pattern=args.pattern, users=args.users, seed=args.seed,
        think_time_s=max(0.0, args.think_time), duration_s=duration, journeys=args.journeys,
        order_timeout_s=args.order_timeout)
    if not args.forever:
        try:
            http.get(args.base_url.rstrip("/") + "/gateway/health", timeout_s=5)
        except http.Unreachable as exc:
            say(f"nothing answered at {args.base_url} ({exc.reason}). Is the lab up?")
            return UNREACHABLE
    prefix = f"load-{uuid.uuid4().hex[:6]}"
    bound = ("until stopped" if args.forever else f"{args.journeys} journeys" if args.journeys
             else f"{duration:g} s")
    say(f"Load test against {args.base_url}: pattern {args.pattern}, {args.users} users "
        f"({config.describe_rate()}), {bound}, seed {args.seed}, "
        f"correlation ids {prefix}-<n>")
    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())
    test = loadgen.LoadTest(config, prefix)
    test.start()
    progress = Progress(test, quiet=args.quiet)
    while not test.finished() and not stop_requested.wait(0.25):
        progress.tick()
    progress.clear()
    if stop_requested.is_set():
        say("stopping: shoppers leave after their current request")
        test.shutdown()
    summary = test.stats.summary(config)
    for line in render_summary(summary):
        say(line)
    mode = args.mode or links.detect_mode(REPO)
    examples = [e for kind in summary["error_examples"].values() for e in kind]
    say()
    say("Where to look next")
    if mode == "compose":
        say(f"  the dashboard           {links.grafana_url(args.grafana_url)}")
    else:
        say(f'  the dashboard           ./lab dashboard "{links.DASHBOARD_TITLE}"')
    if examples:
        cid = examples[0]["correlation_id"]
        say(f"  a failed shopper's logs {links.log_command(mode, 'api', cid)}")
        say(f"  and traces              {links.correlation_search(mode, args.jaeger_url, cid)}")
    if args.json:
        write_json(args.json, summary)
        say(f"results written to {args.json}")
    if stop_requested.is_set() and not args.forever:
        return INTERRUPTED
    return JOURNEY_FAILED if args.slo and not summary["slo"]["met"] else OK


class Progress:
    """A live line on a terminal, a line every 10 s in a log, one a minute when quiet."""

    WINDOW_S = 15.0  # rates over the last seconds: steadier than per tick, still current

    def __init__(self, test: loadgen.LoadTest, quiet: bool) -> None:
        self.test = test
        self.live = sys.stderr.isatty() and not quiet
        self.quiet = quiet
        self.every_s = 60.0 if quiet else 1.0 if self.live else 10.0
        self.next_at = time.monotonic() + self.every_s
        self.samples: deque[tuple[float, int, int]] = deque([(time.monotonic(), 0, 0)])

    def tick(self) -> None:
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at += self.every_s
        s = self.test.stats.summary()
        journeys, requests = s["journeys"]["started"], s["requests"]["total"]
        while len(self.samples) > 1 and now - self.samples[1][0] >= self.WINDOW_S:
            self.samples.popleft()
        then, journeys_then, requests_then = self.samples[0]
        self.samples.append((now, journeys, requests))
        span = max(now - then, 1e-9)
        p95 = s["latency_ms"]["checkout"]["p95"]
        target = ("no more arrivals" if self.test.arrivals_done.is_set() else
                  f"target {self.test.config.rate_per_s(self.test.elapsed_s()) * 60:.0f}/min")
        line = (f"[{self.test.elapsed_s():5.0f}s] journeys {journeys} "
                f"({(journeys - journeys_then) / span * 60:.0f}/min, {target})  "
                f"requests {requests} ({(requests - requests_then) / span:.1f}/s)  "
                f"errors {s['requests']['errors']}  "
                f"checkout p95 {'-' if p95 is None else f'{p95:.0f} ms'}  "
                f"in flight {self.test.in_flight()}")
        if self.live:
            sys.stderr.write("\r" + line[:160].ljust(160))
            sys.stderr.flush()
        elif self.quiet:
            say(f"{datetime.now(UTC).isoformat(timespec='seconds')} {line}")
        else:
            print(line, file=sys.stderr, flush=True)

    def clear(self) -> None:
        if self.live:
            sys.stderr.write("\r" + " " * 160 + "\r")
            sys.stderr.flush()


def render_summary(s: dict[str, Any]) -> list[str]:
    j = s["journeys"]
    lines = ["", f"Summary after {s['elapsed_s']:g} s: {j['started']} journeys, "
             f"{s['requests']['total']} requests ({s['requests']['per_s']:g}/s)", "",
             f"  {'journey':<22} {'count':>6} {'succeeded':>10} {'success':>9}"]
    for kind, counts in j["by_type"].items():
        lines.append(f"  {loadgen.JOURNEYS[kind][1]:<22} {counts['count']:>6} "
                     f"{counts['succeeded']:>10} {_pct(counts['succeeded'], counts['finished'])}")
    lines.append(f"  {'all':<22} {j['started']:>6} {j['succeeded']:>10} "
                 f"{_pct(j['succeeded'], j['finished'])}")
    if j["in_flight"]:
        lines.append(f"  ({j['in_flight']} still in flight when the run was stopped)")
    c, lat = s["checkouts"], s["latency_ms"]["checkout"]
    lines += ["", f"  checkouts     {c['attempted']} attempted, {c['accepted']} accepted"
              + "".join(f", {n} {k}" for k, n in c["rejected"].items()),
              f"  checkout      p50 {_num(lat['p50'], 'ms')}  p95 {_num(lat['p95'], 'ms')}  "
              f"p99 {_num(lat['p99'], 'ms')}"]
    o, e2e = s["orders"], s["orders"]["end_to_end_s"]
    lines.append(f"  orders        {o['confirmed']} confirmed, {o['failed']} failed, "
                 f"{o['unfinished']} unfinished; end to end p50 {_num(e2e['p50'], 's')}  "
                 f"p95 {_num(e2e['p95'], 's')}")
    if j["sold_out"]:
        lines.append(f"  sold out      {j['sold_out']} albums a shopper wanted had no stock left")
    lines += ["", "  errors by kind"]
    if not s["errors"]:
        lines.append("    none")
    for kind, count in s["errors"].items():
        example = s["error_examples"][kind][0]
        lines.append(f"    {count:>5}  {kind:<36} e.g. {example['request']}, correlation id "
                     f"{example['correlation_id']}")
    lines += ["", "  SLO (the guide's targets)"]
    for check in s["slo"]["checks"]:
        verdict = {True: "met", False: "MISSED", None: "no data"}[check["met"]]
        lines.append(f"    {check['target']:<30} {_num(check['actual'], check['unit']):>10}  "
                     f"{verdict}")
    judged = [c for c in s["slo"]["checks"] if c["met"] is not None]
    verdict = ("SLO BREACHED" if not s["slo"]["met"] else "every target met" if judged
               else "not judged: no data yet")
    lines.append(f"  verdict: {verdict}")
    return lines


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:8.1f}%" if whole else f"{'-':>9}"


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} %" if unit == "%" else f"{value:g} {unit}"


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


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
