"""`./lab bench`: how fast the purchase journey is, and what observability costs."""

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import floors, report, spans, table
from bench.floors import pgbench_floor
from bench.measure import Bench, Plan
from bench.stack import BENCH_HOME, Stack
from labctl.config import ROOT
from labctl.proc import LabError
from labctl.stack import down
from labkit.links import API_SERVICE

DEFAULT_JSON = ROOT / "artifacts" / "benchmark.json"


DESCRIPTION = (
    "Benchmark the native stack: checkout and catalog latency at fixed arrival rates (open "
    "loop), the highest checkout rate with p95 under 100 ms, the pipeline's overhead, the "
    "worker's throughput, `./lab up` time and memory; with telemetry on and off, alternated. "
    "Starts its own stack under .lab-bench/, so a running lab is not disturbed."
)


def configure_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", description=DESCRIPTION, help="benchmark the native stack: "
                       "latency, throughput, and what telemetry costs (on a stack of its own)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: one rate, 2 s per run, one round, small batches")
    p.add_argument("--use-running", action="store_true",
                   help="measure the running stack of this environment instead of starting one "
                        "(its API and worker are restarted; meant for the test suite's stack)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="FILE",
                   help=f"where to write the figures (default {DEFAULT_JSON.relative_to(ROOT)})")
    p.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")],
                   help="arrival rates per second, comma-separated (default 25,50,100,200)")
    p.add_argument("--duration", type=float, help="seconds per rate (default 10)")
    p.add_argument("--rounds", type=int, help="telemetry on/off rounds (default 2)")
    p.add_argument("--keep", action="store_true", help="leave the bench stack running")
    return p


def plan_from(args: argparse.Namespace) -> Plan:
    quick = args.quick
    return Plan(
        rates=args.rates or ([25.0] if quick else [25.0, 50.0, 100.0, 200.0]),
        duration_s=args.duration or (2.0 if quick else 10.0),
        rounds=args.rounds or (1 if quick else 2),
        search_steps=0 if quick else 4,
        pipeline_orders=5 if quick else 50,
        backlog=20 if quick else 500,
        warmup_s=1.0 if quick else 3.0,
    )


def say(msg: str) -> None:
    print(f"bench: {msg}", flush=True)


def _command() -> str:
    argv = sys.argv[1:]
    return shlex.join(["./lab", "bench", *(argv[1:] if argv[:1] == ["bench"] else argv)])


def run(args: argparse.Namespace) -> int:
    plan = plan_from(args)
    started, t0, load_before = datetime.now(UTC), time.monotonic(), os.getloadavg()
    cpu_before = report.cpu_times()
    lab_up = None
    try:
        stack = Stack.running() if args.use_running else Stack.own()
    except LabError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    try:
        if stack.own:
            say(f"starting the bench stack under {BENCH_HOME} (timing ./lab up)")
            lab_up = stack.up(measure_restart=not args.quick)
        after_up = stack.processes()
        stack.prepare()
        say("measuring what a span costs")
        span_cost = spans.sdk_span_cost(1000 if args.quick else 5000)
        per_checkout = spans.spans_per_checkout(stack.url(), stack.base.url("JAEGER_UI_PORT"))
        try:
            bench = Bench(stack, plan, say)
            rounds = [bench.mode_round(telemetry)
                      for _ in range(plan.rounds) for telemetry in (True, False)]
            say("the checkout's SQL alone (pgbench)")
            rate = report.TARGET_RATE if report.TARGET_RATE in plan.rates else max(plan.rates)
            pgbench = pgbench_floor(stack, rate, plan.duration_s)
            after_load = stack.processes()
        finally:
            stack.restore()
    except LabError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if stack.own and not args.keep:
            down(stack.base)
    modes = {name: report.mode_summary([r for r in rounds if r.telemetry is telemetry])
             for name, telemetry in report.MODES.items()}
    cost = report.telemetry_cost(modes["telemetry_on"], modes["telemetry_off"], rate)
    doc = {
        "command": _command(),
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "stack": "running" if args.use_running else "own (.lab-bench)",
        "machine": report.machine(),
        "lab": report.lab_settings(stack.base.env),
        "load_average_before": [round(x, 2) for x in load_before],
        "cpu_steal_pct": report.steal_pct(cpu_before, report.cpu_times()),
        "settings": {"rates": plan.rates, "duration_s": plan.duration_s, "rounds": plan.rounds,
                     "latency_bound_ms": report.LATENCY_BOUND_MS, "quick": args.quick,
                     "pipeline_orders": plan.pipeline_orders, "backlog": plan.backlog,
                     "load": "open loop; latency from the intended send time"},
        "lab_up": lab_up,
        "spans": {**span_cost, "per_checkout": per_checkout, "api_service": API_SERVICE},
        "modes": modes,
        "telemetry_cost": cost,
        "telemetry_cost_split": report.telemetry_split(modes["telemetry_on"],
                                                       modes["telemetry_off"], rate),
        "floors": {"empty_route": floors.EMPTY_ROUTE, "pgbench": pgbench,
                   "ratios": report.floor_ratios(modes["telemetry_on"], pgbench, rate)},
        "targets": report.targets(modes["telemetry_on"], cost, lab_up),
        "memory": {"after_up": report.memory(after_up), "after_load": report.memory(after_load)},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(table.render(doc))
    say(f"figures written to {args.json}")
    if stack.own and args.keep:
        say(f"the bench stack runs on: env $(cat {stack.env_file}) ./lab status (or down)")
    return 0
