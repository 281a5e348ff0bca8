"""Figures out of the raw runs: one JSON document, and the table printed from it."""

import os
import platform
import statistics
from collections import Counter
from pathlib import Path

from bench.httpload import percentile
from bench.measure import LATENCY_BOUND_MS, ModeRound, Run
from bench.stack import Proc

MODES = {"telemetry_on": True, "telemetry_off": False}
TARGET_RATE = 100.0  # the targets are stated at 100 checkouts per second
QUIET_LOAD = 0.5  # a 1-minute load average under this: nothing else was running
NOISY_STEAL_PCT = 5.0  # steal over this: the virtual machine's host was busy


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
            "worker_pool": env.get("WORKER_POOL", "threads"),
            "worker_concurrency": int(env.get("WORKER_CONCURRENCY", "16"))}


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
    for kind in ("checkout", "browse"):
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


def _at(rows: list[dict], rate: float) -> dict:
    return next((r for r in rows if r["rate"] == rate), {})


def _ratio(on: float | None, off: float | None) -> float | None:
    return round(on / off, 3) if on and off else None


def telemetry_cost(on: dict, off: dict, rate: float) -> dict:
    """Telemetry on divided by telemetry off, figure by figure (1.0: no cost)."""
    cost: dict = {"at_rate": rate}
    for kind in ("checkout", "browse"):
        a, b = _at(on[kind], rate), _at(off[kind], rate)
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


def targets(on: dict, cost: dict, lab_up: dict | None) -> list[dict]:
    at100 = _at(on["checkout"], TARGET_RATE)
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


# --- the table ---------------------------------------------------------------------------------


def _f(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def _load_table(title: str, on: list[dict], off: list[dict]) -> list[str]:
    lines = [title,
             f"  {'rate/s':>6} {'sent':>6} | {'telemetry on':^40} | {'telemetry off':^40}",
             f"  {'':>6} {'':>6} | " + " | ".join(
                 [f"{'p50':>6} {'p95':>6} {'p99':>6} {'errors':>7} {'CPU ms/req':>10}"] * 2)]
    for a in on:
        b = _at(off, a["rate"])
        cells = []
        for row in (a, b):
            err = "-" if row.get("error_rate") is None else f"{100 * row['error_rate']:.1f}%"
            cells.append(f"{_f(row.get('p50_ms')):>6} {_f(row.get('p95_ms')):>6} "
                         f"{_f(row.get('p99_ms')):>6} {err:>7} "
                         f"{_f(row.get('lab_cpu_ms_per_request')):>10}")
        lines.append(f"  {a['rate']:>6.0f} {a['sent']:>6} | " + " | ".join(cells))
    return lines


def render(doc: dict) -> str:
    m, on, off, cost = (doc["machine"], doc["modes"]["telemetry_on"],
                        doc["modes"]["telemetry_off"], doc["telemetry_cost"])
    s = doc["settings"]
    lines = [
        f"Record store benchmark, {doc['stack']} stack: {m['cpu_model']}, {m['cores']} cores, "
        f"{m['ram_gib']} GiB, {m['os']}",
        f"API: {doc['lab']['api_processes']} process(es); worker: a "
        f"{doc['lab']['worker_pool']} pool of {doc['lab']['worker_concurrency']}",
        f"Load average before the run {doc['load_average_before']}"
        + ("" if doc["load_average_before"][0] < QUIET_LOAD else
           ": the machine was busy, so these figures are distorted"),
        f"CPU stolen by the hypervisor during the run: {_f(doc['cpu_steal_pct'])} %"
        + ("" if (doc["cpu_steal_pct"] or 0) < NOISY_STEAL_PCT else
           ": other guests took a share of the cores, so these figures are distorted"),
        f"Open loop: requests leave on a fixed schedule, latency counted from the intended send "
        f"time (no coordinated omission). {s['duration_s']:g} s per rate, {s['rounds']} "
        f"round(s) of telemetry on/off alternated; latencies in ms; CPU = the whole lab's, per "
        f"request.",
        "",
        *_load_table("Checkout: POST /checkout through the gateway (the worker stopped meanwhile)",
                     on["checkout"], off["checkout"]),
    ]
    for name, mode in (("on", on), ("off", off)):
        c = mode["checkout_capacity"]
        lines.append(f"  highest rate with p95 < {LATENCY_BOUND_MS:.0f} ms and no errors, "
                     f"telemetry {name}: {_f(c['rps'], '.0f')}/s (per round "
                     f"{', '.join(_f(x, '.0f') for x in c['per_round'])}; first failing "
                     f"{', '.join(_f(x, '.0f') for x in c['first_failing_rate_per_round'])})")
    lines += ["", *_load_table("Catalog: GET /products through the gateway", on["browse"],
                               off["browse"]), ""]
    for name, mode in (("on", on), ("off", off)):
        p, w = mode["pipeline"], mode["worker"]
        lines.append(f"Telemetry {name:<3}: pipeline created -> confirmed (delays 0) p50 "
                     f"{_f(p['p50_ms'])} ms, p95 {_f(p['p95_ms'])} ms ({p['confirmed']} orders); "
                     f"worker drains {_f(w['orders_per_s'], '.0f')} orders/s, "
                     f"{_f(w['lab_cpu_ms_per_order'])} ms CPU per order")
    x = {k: _f(v, ".2f") for k, v in cost.items() if k.endswith("_ratio")}
    gen = [r["generator_cpu_pct"] for r in on["checkout"] + off["checkout"]]
    lines += [
        "",
        f"Telemetry on / off at {cost['at_rate']:g}/s: checkout p50 x{x['checkout_p50_ratio']}, "
        f"p95 x{x['checkout_p95_ratio']}, CPU per checkout "
        f"x{x['checkout_cpu_per_request_ratio']}; browse p95 x{x['browse_p95_ratio']}, "
        f"CPU per page x{x['browse_cpu_per_request_ratio']}",
        f"  throughput within the bound x{x['capacity_ratio']} "
        f"(cost {_f(cost['throughput_cost_pct'])} %), pipeline p95 x{x['pipeline_p95_ratio']}, "
        f"worker throughput x{x['worker_throughput_ratio']}, "
        f"CPU per order x{x['worker_cpu_per_order_ratio']}",
        f"Load generator CPU: {_f(min(gen, default=None))}-{_f(max(gen, default=None))} % "
        "of one core",
    ]
    sp = doc["spans"]
    lines.append(
        f"One span (OpenTelemetry Python SDK, here): {sp['create_end_us']:g} us of CPU to "
        f"create and end, {sp['encode_us']:g} us to encode for export; a checkout makes "
        f"{(sp['per_checkout'] or {}).get(sp['api_service'], '?')} spans in the API")
    if doc["lab_up"]:
        lines.append("./lab up until all healthy: " + ", ".join(
            f"{k.removesuffix('_s').replace('_', ' ')} {v:.1f} s"
            for k, v in doc["lab_up"].items()))
    mem = doc["memory"]["after_load"]
    lines += [
        "",
        f"Memory after the load (PSS, MiB; total {mem['total_pss_mib']:.0f}): " + ", ".join(
            f"{k} {v['pss_mib']:.0f} ({v['processes']} proc)"
            for k, v in mem["by_component"].items()),
        "",
        "Targets (telemetry on):",
    ]
    for t in doc["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        lines.append(f"  {verdict:<12} {t['target']}: {_f(t['value'])}")
    return "\n".join(lines)
