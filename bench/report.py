"""Figures out of the raw runs: the parts of one JSON document (table.py prints it)."""

import os
import platform
import statistics
from collections import Counter
from pathlib import Path

from bench.httpload import percentile
from bench.measure import KINDS, LATENCY_BOUND_MS, ModeRound, Run
from bench.stack import Proc

MODES = {"telemetry_on": True, "telemetry_off": False}
TARGET_RATE = 100.0  # the targets are stated at 100 checkouts per second
# Whose CPU telemetry costs: the application's own processes, and the backends that ingest
# what they send (natively the trace stand-in and Prometheus; in compose, Jaeger instead).
APPLICATION = ("api", "worker")
BACKENDS = ("jaeger", "prometheus")
CHECKOUT_CPU_TARGET_MS = 8.0
ORDER_CPU_TARGET_MS = 15.0


def machine() -> dict:
    def first(path: str, key: str) -> str:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1]
        return ""

    mem_kib = int(first("/proc/meminfo", "MemTotal").split()[0])
    return {
        "cpu_model": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kib / 2**20, 1),
        "os": first("/etc/os-release", "PRETTY_NAME").strip('"'),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def cpu_times() -> list[int]:
    """The machine's CPU time so far, by kind (the first line of /proc/stat, in ticks)."""
    return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def steal_pct(before: list[int], after: list[int]) -> float | None:
    """The share of the machine's CPU time the hypervisor gave to other guests meanwhile
    (steal, the 8th field): on a virtual machine, the part of a slow run that is not the lab's."""
    spent = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(spent[:8])  # user..steal; guest time is counted in user already
    return round(100 * spent[7] / total, 1) if total and len(spent) > 7 else None


def lab_settings(env: dict[str, str]) -> dict:
    """How the measured lab was sized (.env): what a reader needs to reproduce the figures."""
    return {"api_processes": int(env.get("API_WORKERS", "2")),
            "worker_processes": int(env.get("WORKER_PROCESSES", "2")),
            "worker_pool": env.get("WORKER_POOL", "threads"),
            "worker_concurrency": int(env.get("WORKER_CONCURRENCY", "8"))}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def load_summary(runs: list[Run]) -> dict:
    """Runs of one kind at one rate (from every round), pooled."""
    latencies = [v for r in runs for v in r.load.latencies_ms]
    sent = sum(r.load.sent for r in runs)
    ok = sum(r.load.ok for r in runs)
    errors: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    for r in runs:
        errors.update(r.load.errors)
        cpu.update(r.cpu_s)
    wall = sum(r.load.wall_s for r in runs)
    p95 = percentile(latencies, 95)
    return {
        "rate": runs[0].load.rate,
        "runs": len(runs),
        "sent": sent,
        "ok": ok,
        "errors": dict(errors),
        "error_rate": round(sum(errors.values()) / sent, 4) if sent else None,
        "p50_ms": _ms(percentile(latencies, 50)),
        "p95_ms": _ms(p95),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(max(latencies, default=None)),
        "answered_per_s": round(len(latencies) / wall, 1) if wall else None,
        "max_send_lag_ms": _ms(max(r.load.max_send_lag_ms for r in runs)),
        "generator_cpu_pct": round(100 * sum(r.load.generator_cpu_s for r in runs) / wall, 1)
        if wall else None,
        "connections": max(r.load.connections for r in runs),
        "lab_cpu_s": {k: round(v, 3) for k, v in sorted(cpu.items())},
        "lab_cpu_ms_per_request": round(1000 * sum(cpu.values()) / ok, 2) if ok else None,
        "within_bound": not errors and p95 is not None and p95 < LATENCY_BOUND_MS,
    }


def mode_summary(rounds: list[ModeRound]) -> dict:
    summary: dict = {}
    for kind in KINDS:
        by_rate: dict[float, list[Run]] = {}
        for rnd in rounds:
            for run in rnd.sweeps[kind]:
                by_rate.setdefault(run.load.rate, []).append(run)
        summary[kind] = [load_summary(runs) for _, runs in sorted(by_rate.items())]
    capacities = [r.capacity or 0.0 for r in rounds]
    summary["checkout_capacity"] = {
        "rps": statistics.median(capacities),
        "per_round": capacities,
        "first_failing_rate_per_round": [r.capacity_failed_at for r in rounds],
        "probes": [{"rate": p.load.rate, "p95_ms": _ms(percentile(p.load.latencies_ms, 95)),
                    "errors": p.load.error_count, "within_bound": p.passed}
                   for r in rounds for p in r.probes],
    }
    floors = [r.floor_capacity or 0.0 for r in rounds]
    summary["empty_capacity"] = {
        "rps": statistics.median(floors), "per_round": floors,
        "first_failing_rate_per_round": [r.floor_failed_at for r in rounds],
    }
    pipeline = [v for r in rounds for v in r.pipeline_ms]
    summary["pipeline"] = {
        "confirmed": len(pipeline),
        "failed": sum(r.pipeline_failed for r in rounds),
        **{f"p{q}_ms": _ms(percentile(pipeline, q)) for q in (50, 95, 99)},
        "max_ms": _ms(max(pipeline, default=None)),
    }
    drains = [{"placed": r.backlog_placed, "confirmed": r.backlog_confirmed,
               "drain_s": round(r.drain_s, 3),
               "orders_per_s": round(r.backlog_confirmed / r.drain_s, 1) if r.drain_s else 0.0,
               "lab_cpu_s": {k: round(v, 3) for k, v in sorted(r.drain_cpu_s.items())},
               "orders": r.drain_cpu_orders,
               "lab_cpu_ms_per_order": round(1000 * sum(r.drain_cpu_s.values())
                                             / r.drain_cpu_orders, 2)
               if r.drain_cpu_orders else None}
              for r in rounds]
    per_order = [d["lab_cpu_ms_per_order"] for d in drains if d["lab_cpu_ms_per_order"]]
    summary["worker"] = {"orders_per_s": statistics.median(d["orders_per_s"] for d in drains),
                         "lab_cpu_ms_per_order": statistics.median(per_order) if per_order
                         else None,
                         "per_round": drains}
    return summary


def row_at(rows: list[dict], rate: float) -> dict:
    """The row of one arrival rate ({} when it was not measured)."""
    return next((r for r in rows if r["rate"] == rate), {})


def _ratio(on: float | None, off: float | None) -> float | None:
    return round(on / off, 3) if on and off else None


def telemetry_cost(on: dict, off: dict, rate: float) -> dict:
    """Telemetry on divided by telemetry off, figure by figure (1.0: no cost)."""
    cost: dict = {"at_rate": rate}
    for kind in ("checkout", "browse"):
        a, b = row_at(on[kind], rate), row_at(off[kind], rate)
        for key, name in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"),
                          ("lab_cpu_ms_per_request", "cpu_per_request")):
            cost[f"{kind}_{name}_ratio"] = _ratio(a.get(key), b.get(key))
    cap_on, cap_off = on["checkout_capacity"]["rps"], off["checkout_capacity"]["rps"]
    cost["capacity_ratio"] = _ratio(cap_on, cap_off)
    cost["throughput_cost_pct"] = (round(100 * (1 - cap_on / cap_off), 1) if cap_off else None)
    cost["pipeline_p95_ratio"] = _ratio(on["pipeline"]["p95_ms"], off["pipeline"]["p95_ms"])
    cost["worker_throughput_ratio"] = _ratio(on["worker"]["orders_per_s"],
                                             off["worker"]["orders_per_s"])
    cost["worker_cpu_per_order_ratio"] = _ratio(on["worker"]["lab_cpu_ms_per_order"],
                                                off["worker"]["lab_cpu_ms_per_order"])
    return cost


def _split(cpu_s: dict[str, float], count: int | None) -> dict[str, float | None]:
    """CPU ms per request (or order) of the application, the telemetry backends and the rest."""
    if not count:
        return {"application": None, "backends": None, "rest": None}
    app = sum(v for k, v in cpu_s.items() if k in APPLICATION)
    backends = sum(v for k, v in cpu_s.items() if k in BACKENDS)
    rest = sum(cpu_s.values()) - app - backends
    return {k: round(1000 * v / count, 2)
            for k, v in (("application", app), ("backends", backends), ("rest", rest))}


def _delta(on: dict, off: dict) -> dict[str, float | None]:
    return {k: None if on[k] is None or off[k] is None else round(on[k] - off[k], 2) for k in on}


def telemetry_split(on: dict, off: dict, rate: float) -> dict:
    """What telemetry costs in CPU, the application's processes apart from the backends'
    ingest: per checkout at `rate`, and per order the worker drains. `app_only_cost_pct` is
    the throughput a CPU-bound lab would lose to the application's own telemetry, if the
    backends ran elsewhere (as Jaeger does in compose)."""
    result: dict = {}
    pairs = {"checkout": (row_at(on["checkout"], rate), row_at(off["checkout"], rate))}
    for name, (a, b) in pairs.items():
        split_on = _split(a.get("lab_cpu_s", {}), a.get("ok"))
        split_off = _split(b.get("lab_cpu_s", {}), b.get("ok"))
        result[name] = {"on_ms": split_on, "off_ms": split_off, "cost_ms": _delta(split_on,
                                                                                 split_off)}
    orders_on, orders_off = (
        [_split(d["lab_cpu_s"], d["orders"]) for d in mode["worker"]["per_round"]]
        for mode in (on, off))
    result["worker"] = {"on_ms": _median_split(orders_on), "off_ms": _median_split(orders_off)}
    result["worker"]["cost_ms"] = _delta(result["worker"]["on_ms"], result["worker"]["off_ms"])
    for figures in result.values():
        total_off = _sum(figures["off_ms"])
        app_on = _sum({k: v for k, v in figures["on_ms"].items() if k != "backends"})
        figures["app_only_cost_pct"] = (round(100 * (1 - total_off / app_on), 1)
                                        if total_off and app_on else None)
    return result


def _sum(split: dict[str, float | None]) -> float | None:
    return None if any(v is None for v in split.values()) else sum(split.values())


def _median_split(splits: list[dict]) -> dict[str, float | None]:
    return {k: (round(statistics.median(vals), 2)
                if (vals := [s[k] for s in splits if s[k] is not None]) else None)
            for k in ("application", "backends", "rest")}


def floor_ratios(on: dict, pgbench: dict | None, rate: float) -> dict:
    """The checkout against its floors, telemetry on: the empty route through the same web
    stack, and its SQL alone (pgbench). CPU: the lab's per checkout over the floor's per
    request (PostgreSQL's alone per transaction, for pgbench); capacity: the checkout's over
    the floor's (>= 1 would be a free checkout)."""
    checkout, empty = row_at(on["checkout"], rate), row_at(on["empty"], rate)
    cpu = checkout.get("lab_cpu_ms_per_request")
    cap = on["checkout_capacity"]["rps"]
    pg_cpu = (pgbench or {}).get("at_rate", {}).get("db_cpu_ms_per_transaction")
    return {
        "at_rate": rate,
        "checkout_cpu_ms": cpu, "checkout_capacity_rps": cap,
        "empty_route_cpu_ms": empty.get("lab_cpu_ms_per_request"),
        "empty_route_capacity_rps": on["empty_capacity"]["rps"],
        "pgbench_db_cpu_ms": pg_cpu,
        "pgbench_capacity_tps": (pgbench or {}).get("capacity_tps"),
        "cpu_vs_empty_route": _ratio(cpu, empty.get("lab_cpu_ms_per_request")),
        "capacity_vs_empty_route": _ratio(cap, on["empty_capacity"]["rps"]),
        "cpu_vs_sql_alone": _ratio(cpu, pg_cpu),
        "capacity_vs_sql_alone": _ratio(cap, (pgbench or {}).get("capacity_tps")),
    }


def targets(on: dict, cost: dict, lab_up: dict | None) -> list[dict]:
    at100 = row_at(on["checkout"], TARGET_RATE)
    checkout_cpu = at100.get("lab_cpu_ms_per_request")
    order_cpu = on["worker"]["lab_cpu_ms_per_order"]
    up_s = max(lab_up.values()) if lab_up else None
    rows = [
        ("checkout p95 <= 50 ms at 100 req/s, no errors",
         at100.get("p95_ms"), bool(at100) and at100["p95_ms"] <= 50 and not at100["errors"]),
        ("telemetry's throughput cost <= 15 % (p95 < 100 ms)", cost["throughput_cost_pct"],
         cost["throughput_cost_pct"] is not None and cost["throughput_cost_pct"] <= 15),
        ("pipeline overhead p95 <= 150 ms", on["pipeline"]["p95_ms"],
         on["pipeline"]["p95_ms"] is not None and on["pipeline"]["p95_ms"] <= 150),
        ("worker drains >= 50 orders/s", on["worker"]["orders_per_s"],
         on["worker"]["orders_per_s"] >= 50),
        ("./lab up <= 30 s", None if up_s is None else round(up_s, 1),
         None if up_s is None else up_s <= 30),
        (f"lab CPU per checkout <= {CHECKOUT_CPU_TARGET_MS:g} ms at 100 req/s", checkout_cpu,
         checkout_cpu is not None and checkout_cpu <= CHECKOUT_CPU_TARGET_MS),
        (f"lab CPU per order drained <= {ORDER_CPU_TARGET_MS:g} ms", order_cpu,
         order_cpu is not None and order_cpu <= ORDER_CPU_TARGET_MS),
    ]
    return [{"target": t, "value": v, "met": None if v is None else met} for t, v, met in rows]


def memory(procs: list[Proc]) -> dict:
    by: dict[str, dict] = {}
    for p in procs:
        row = by.setdefault(p.component, {"processes": 0, "rss_mib": 0.0, "pss_mib": 0.0})
        row["processes"] += 1
        row["rss_mib"] += p.rss_kib / 1024
        row["pss_mib"] += (p.pss_kib or 0) / 1024
    return {
        "by_component": {k: {"processes": v["processes"], "rss_mib": round(v["rss_mib"], 1),
                             "pss_mib": round(v["pss_mib"], 1)} for k, v in sorted(by.items())},
        "total_pss_mib": round(sum(v["pss_mib"] for v in by.values()), 1),
        "processes": [{"pid": p.pid, "component": p.component, "command": p.command,
                       "rss_mib": round(p.rss_kib / 1024, 1),
                       "pss_mib": None if p.pss_kib is None else round(p.pss_kib / 1024, 1)}
                      for p in sorted(procs, key=lambda p: (p.component, p.pid))],
    }
