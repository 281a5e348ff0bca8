"""The load test as trace_purchase_journey.py load-test runs and shows it: the run, a live
progress line, the summary and the SLO verdict, and where to look next."""

import argparse
import signal
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from . import http, links
from .loadgen import LoadTest
from .output import INTERRUPTED, JOURNEY_FAILED, OK, UNREACHABLE, say, write_json
from .patterns import JOURNEYS, LoadConfig
from .ramp import RampConfig, RampLoadTest, render_steps
from .shop import LOAD_PREFIX


def run_load_test(args: argparse.Namespace) -> int:
    duration = args.duration if args.duration or args.journeys or args.forever else 60.0
    common = {"base_url": args.base_url, "pattern": args.pattern, "users": args.users,
              "seed": args.seed, "think_time_s": max(0.0, args.think_time),
              "order_timeout_s": args.order_timeout}
    config: LoadConfig
    if args.ramp:
        config = RampConfig(**common, ramp=args.ramp, step_s=args.step)
        config = replace(config, duration_s=config.ramp_duration_s)
        duration = config.ramp_duration_s
    else:
        config = LoadConfig(**common, duration_s=duration, journeys=args.journeys)
    if not args.forever:
        try:
            http.get(args.base_url.rstrip("/") + "/gateway/health", timeout_s=5)
        except http.Unreachable as exc:
            say(f"nothing answered at {args.base_url} ({exc.reason}). Is the lab up?")
            return UNREACHABLE
    prefix = f"{LOAD_PREFIX}-{uuid.uuid4().hex[:6]}"
    bound = ("until stopped" if args.forever else f"{args.journeys} journeys" if args.journeys
             else f"{duration:g} s")
    shape = "" if args.ramp else f"pattern {args.pattern}, {args.users} users "
    say(f"Load test against {args.base_url}: {shape}({config.describe_rate()}), {bound}, "
        f"seed {args.seed}, correlation ids {prefix}-<n>")
    stop_requested = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_requested.set())
    test = RampLoadTest(config, prefix) if isinstance(config, RampConfig) else LoadTest(
        config, prefix)
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
    if isinstance(test, RampLoadTest):
        summary["steps"] = test.step_summaries()
        for line in render_steps(summary["steps"]):
            say(line)
    mode = links.hint_mode(args.mode)
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

    def __init__(self, test: LoadTest, quiet: bool) -> None:
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
        lines.append(f"  {JOURNEYS[kind].description:<22} {counts['count']:>6} "
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
