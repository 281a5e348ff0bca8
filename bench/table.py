"""The table `./lab bench` prints from its JSON document (report.py makes the document)."""

from bench.measure import LATENCY_BOUND_MS
from bench.report import row_at

QUIET_LOAD = 0.5  # a 1-minute load average under this: nothing else was running
NOISY_STEAL_PCT = 5.0  # steal over this: the virtual machine's host was busy


def _f(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def _load_table(title: str, on: list[dict], off: list[dict]) -> list[str]:
    lines = [title,
             f"  {'rate/s':>6} {'sent':>6} | {'telemetry on':^40} | {'telemetry off':^40}",
             f"  {'':>6} {'':>6} | " + " | ".join(
                 [f"{'p50':>6} {'p95':>6} {'p99':>6} {'errors':>7} {'CPU ms/req':>10}"] * 2)]
    for a in on:
        b = row_at(off, a["rate"])
        cells = []
        for row in (a, b):
            err = "-" if row.get("error_rate") is None else f"{100 * row['error_rate']:.1f}%"
            cells.append(f"{_f(row.get('p50_ms')):>6} {_f(row.get('p95_ms')):>6} "
                         f"{_f(row.get('p99_ms')):>6} {err:>7} "
                         f"{_f(row.get('lab_cpu_ms_per_request')):>10}")
        lines.append(f"  {a['rate']:>6.0f} {a['sent']:>6} | " + " | ".join(cells))
    return lines


def _floor_lines(floors: dict) -> list[str]:
    pg, x = floors["pgbench"], floors["ratios"]
    at = pg["at_rate"]
    return [
        f"Floor: the checkout's SQL alone (pgbench, {pg['statements']} statements and the "
        f"commit, {pg['clients']} connections): at {_f(at['rate'], '.0f')}/s latency "
        f"{_f(at['latency_avg_ms'], '.2f')} ms, PostgreSQL "
        f"{_f(at['db_cpu_ms_per_transaction'], '.2f')} ms CPU per checkout; "
        f"as fast as it goes {_f(pg['capacity_tps'], '.0f')}/s",
        f"Checkout against its floors (telemetry on, {x['at_rate']:g}/s): CPU "
        f"{_f(x['checkout_cpu_ms'], '.2f')} ms = x{_f(x['cpu_vs_empty_route'], '.2f')} the empty "
        f"route's, x{_f(x['cpu_vs_sql_alone'], '.1f')} its SQL's alone; capacity "
        f"{_f(x['checkout_capacity_rps'], '.0f')}/s = x{_f(x['capacity_vs_empty_route'], '.2f')} "
        f"the empty route's, x{_f(x['capacity_vs_sql_alone'], '.2f')} its SQL's alone",
    ]


def _split_lines(split: dict) -> list[str]:
    lines = ["Telemetry's CPU, the application (API, worker) apart from the backends' ingest "
             "(natively the trace stand-in and Prometheus; Jaeger in compose), on - off:"]
    for name, unit in (("checkout", "checkout"), ("worker", "order drained")):
        c, on = split[name]["cost_ms"], split[name]["on_ms"]
        lines.append(
            f"  per {unit}: application +{_f(c['application'], '.2f')} ms, backends "
            f"+{_f(c['backends'], '.2f')} ms, the rest {_f(c['rest'], '+.2f')} ms (on: "
            f"{_f(on['application'], '.2f')} / {_f(on['backends'], '.2f')} / "
            f"{_f(on['rest'], '.2f')}); the application's own telemetry alone would cost "
            f"{_f(split[name]['app_only_cost_pct'])} % of throughput")
    return lines


def render(doc: dict) -> str:
    m, on, off, cost = (doc["machine"], doc["modes"]["telemetry_on"],
                        doc["modes"]["telemetry_off"], doc["telemetry_cost"])
    s = doc["settings"]
    lines = [
        f"Record store benchmark, {doc['stack']} stack: {m['cpu_model']}, {m['cores']} cores, "
        f"{m['ram_gib']} GiB, {m['os']}",
        f"API: {doc['lab']['api_processes']} process(es); worker: "
        f"{doc['lab']['worker_processes']} process(es), each a {doc['lab']['worker_pool']} "
        f"pool of {doc['lab']['worker_concurrency']}",
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
                               off["browse"]),
              "", *_load_table(f"Floor: GET {doc['floors']['empty_route']}, an empty route "
                               "through the same gateway and uvicorn processes (no span)",
                               on["empty"], off["empty"])]
    for name, mode in (("on", on), ("off", off)):
        c = mode["empty_capacity"]
        lines.append(f"  highest rate with p95 < {LATENCY_BOUND_MS:.0f} ms and no errors, "
                     f"telemetry {name}: {_f(c['rps'], '.0f')}/s (per round "
                     f"{', '.join(_f(x, '.0f') for x in c['per_round'])})")
    lines += ["", *_floor_lines(doc["floors"]), ""]
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
    lines += _split_lines(doc["telemetry_cost_split"])
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
