#!/usr/bin/env python3
"""Check the running lab, component by component, and say what works.

Run it after `docker compose up -d` (or `./lab up`): it asks each component through its own
HTTP API, then makes one test purchase through the gateway and follows it into Jaeger.

  - the gateway answers, and the API's health names the database and the broker;
  - Prometheus is ready and every scrape target is up;
  - Grafana (compose only) is healthy, each datasource passes Grafana's own health check,
    and the dashboards are provisioned;
  - a test purchase is confirmed, and its one trace holds spans of the gateway (compose: nginx
    has the OpenTelemetry module there), the API and the worker; Jaeger lists those services.

The defaults are the ports and the Grafana login in the repository's .env. Standard library
only: run it with a bare `python3`.
"""

import argparse
import base64
import json
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # import labkit as scripts.labkit, like every other importer

from scripts.labkit import http  # noqa: E402
from scripts.labkit.jaeger import JaegerError, JaegerQuery, SpanTree  # noqa: E402
from scripts.labkit.links import API_SERVICE, DASHBOARD_UID, GATEWAY_SERVICE, WORKER_SERVICE  # noqa: E402
from scripts.labkit.settings import default_url, read_env  # noqa: E402
from scripts.labkit.shop import FINAL_STATUSES, Shop, new_correlation_id  # noqa: E402

OK, FAIL, NA = "ok", "fail", "n/a"
# The scrape jobs of prometheus/prometheus.yml.
EXPECTED_JOBS = ("api", "worker", "rabbitmq", "postgres", "nginx", "alertmanager", "prometheus")
# A status page of each backend, asked through Grafana when its plugin has no health check.
PROXY_PROBES = {"prometheus": "/api/v1/status/buildinfo", "jaeger": "/api/services",
                "alertmanager": "/api/v2/status"}
# What a stack may lack and still be checked (--not-covered), and what the report says then.
NOT_COVERABLE = {"grafana": "not covered: this stack runs no Grafana",
                 "gateway-span": "not covered: this gateway has no OpenTelemetry module"}
REQUEST_TIMEOUT_S = 5.0
POLL_S = 0.5


@dataclass
class Result:
    component: str
    check: str
    status: str  # ok, fail, n/a
    detail: str = ""


class Report:
    def __init__(self, live: bool) -> None:
        self.results: list[Result] = []
        self.live = live

    def add(self, component: str, check: str, status: str, detail: str = "") -> Result:
        result = Result(component, check, status, detail)
        self.results.append(result)
        if self.live:
            print(format_row(result), flush=True)
        return result

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.status == FAIL]


def symbols() -> dict[str, str]:
    """✓ ✗ where the terminal can print them, plain words where it cannot."""
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
    except (LookupError, UnicodeEncodeError):
        return {OK: "OK  ", FAIL: "FAIL", NA: "n.a."}
    return {OK: "✓", FAIL: "✗", NA: "n.a."}


def format_row(r: Result) -> str:
    mark = symbols()[r.status]
    detail = f"  ({r.detail})" if r.detail else ""
    return f"  {mark:<4}  {r.component:<12} {r.check}{detail}"


def get(url: str, headers: dict[str, str] | None = None) -> http.Response | str:
    """The answer, or why there was none (a string), never an exception."""
    try:
        return http.get(url, headers=headers, timeout_s=REQUEST_TIMEOUT_S)
    except http.Unreachable as exc:
        return f"unreachable: {exc.reason}"


def poll(check: Callable[[], Any], timeout_s: float) -> Any:
    """check() until it returns something truthy or the deadline passes (then its last value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(POLL_S)


# --- the checks -------------------------------------------------------------------------------

def check_gateway_and_api(report: Report, base: str) -> bool:
    resp = get(f"{base}/gateway/health")
    if isinstance(resp, str) or resp.status != 200:
        report.add("gateway", f"GET {base}/gateway/health", FAIL, _why(resp))
        return False
    report.add("gateway", "answers on /gateway/health", OK)
    resp = get(f"{base}/health")
    if isinstance(resp, str):
        report.add("api", "GET /health through the gateway", FAIL, resp)
        return False
    body = resp.json() if isinstance(resp.json(), dict) else {}
    status = OK if resp.status == 200 else FAIL
    report.add("api", "GET /health through the gateway", status, f"{resp.status}")
    for name, state in (body.get("checks") or {}).items():
        ok = state.get("status") == "up"
        report.add(name, "reachable from the API", OK if ok else FAIL,
                   f"{state.get('latency_ms')} ms" if ok else str(state.get("error", "down")))
    return resp.status == 200


def check_prometheus(report: Report, prometheus: str, wait_s: float) -> None:
    resp = get(f"{prometheus}/-/ready")
    if isinstance(resp, str) or resp.status != 200:
        report.add("prometheus", f"ready at {prometheus}", FAIL, _why(resp))
        return
    report.add("prometheus", "ready", OK)

    def settled() -> list[dict] | None:
        r = get(f"{prometheus}/api/v1/targets?state=active")
        if isinstance(r, str) or r.status != 200:
            return None
        targets = (r.json() or {}).get("data", {}).get("activeTargets", [])
        # Right after a start a target is "unknown" until its first scrape.
        if not targets or any(t.get("health") == "unknown" for t in targets):
            return None
        return targets

    targets = poll(settled, wait_s)
    if targets is None:
        report.add("prometheus", "scrape targets", FAIL, f"none settled within {wait_s:.0f} s")
        return
    by_job: dict[str, list[dict]] = {}
    for target in targets:
        by_job.setdefault(target.get("labels", {}).get("job", "?"), []).append(target)
    for job in [*EXPECTED_JOBS, *sorted(set(by_job) - set(EXPECTED_JOBS))]:
        found = by_job.get(job, [])
        down = [t for t in found if t.get("health") != "up"]
        if not found:
            report.add("prometheus", f"target {job}", FAIL, "no such scrape target")
        elif down:
            report.add("prometheus", f"target {job} up", FAIL,
                       f"{down[0].get('scrapeUrl')}: {down[0].get('lastError') or 'down'}")
        else:
            report.add("prometheus", f"target {job} up", OK, found[0].get("scrapeUrl", ""))


def check_grafana(report: Report, grafana: str, user: str, password: str) -> None:
    resp = get(f"{grafana}/api/health")
    if isinstance(resp, str) or resp.status != 200:
        report.add("grafana", f"healthy at {grafana}", FAIL, _why(resp))
        return
    report.add("grafana", "healthy", OK, f"version {(resp.json() or {}).get('version', '?')}")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    resp = get(f"{grafana}/api/datasources", auth)
    if isinstance(resp, str) or resp.status != 200:
        report.add("grafana", f"datasources (logged in as {user})", FAIL, _why(resp))
        return
    sources = resp.json() or []
    if not sources:
        report.add("grafana", "datasources provisioned", FAIL, "none")
    for source in sources:
        ok, detail = datasource_health(grafana, auth, source)
        report.add("grafana", f"datasource {source.get('name')} ({source.get('type')})",
                   OK if ok else FAIL, detail[:200])
    resp = get(f"{grafana}/api/search?type=dash-db", auth)
    if isinstance(resp, str) or resp.status != 200:
        report.add("grafana", "dashboards", FAIL, _why(resp))
        return
    dashboards = resp.json() or []
    titles = ", ".join(sorted(str(d.get("title")) for d in dashboards))
    report.add("grafana", f"{len(dashboards)} dashboards provisioned",
               OK if dashboards else FAIL, titles[:120])
    journey = any(d.get("uid") == DASHBOARD_UID for d in dashboards)
    report.add("grafana", f"dashboard uid {DASHBOARD_UID}", OK if journey else FAIL,
               "" if journey else "not provisioned")


def datasource_health(grafana: str, auth: dict[str, str], source: dict) -> tuple[bool, str]:
    """Grafana's own health check of a datasource; for a datasource whose plugin has none,
    a request through Grafana's datasource proxy to the backend's own status page."""
    uid = urllib.parse.quote(str(source.get("uid", "")))
    health = get(f"{grafana}/api/datasources/uid/{uid}/health", auth)
    body = health.json() if not isinstance(health, str) else None
    if isinstance(body, dict) and body.get("status") == "OK":
        return True, str(body.get("message", ""))
    why = str(body.get("message", "")) if isinstance(body, dict) else _why(health)
    probe = PROXY_PROBES.get(str(source.get("type")))
    if probe is None:
        return False, why
    proxied = get(f"{grafana}/api/datasources/proxy/uid/{uid}{probe}", auth)
    if not isinstance(proxied, str) and proxied.status == 200:
        return True, f"reached through Grafana's proxy ({probe})"
    return False, f"{why}; via Grafana's proxy: {_why(proxied)}"


def grafana_not_applicable(report: Report, why: str) -> None:
    for check in ("healthy", "datasources healthy", "dashboards provisioned"):
        report.add("grafana", check, NA, why)


def test_purchase(report: Report, base: str, timeout_s: float) -> tuple[str, str] | None:
    """(correlation id, trace id) of one confirmed purchase through the gateway, or None."""
    cid = new_correlation_id("check-stack")
    shop = Shop(base, cid, timeout_s=REQUEST_TIMEOUT_S * 2)
    listing = shop.browse(page_size=50)
    items = (listing.body or {}).get("items", []) if isinstance(listing.body, dict) else []
    in_stock = [p for p in items if p.get("stock", 0) > 0]
    if not listing.ok or not in_stock:
        report.add("purchase", "an album in stock", FAIL, listing.error or "none in stock")
        return None
    started = time.monotonic()
    checkout = shop.checkout(in_stock[0]["id"])
    body = checkout.body if isinstance(checkout.body, dict) else {}
    if checkout.status != 202 or "order_id" not in body:
        report.add("purchase", "POST /checkout", FAIL, checkout.error or str(checkout.status))
        return None
    order_id, trace_id = body["order_id"], body.get("trace_id") or checkout.trace_id
    report.add("purchase", "POST /checkout accepted", OK,
               f"order {order_id}, correlation id {cid}")

    def final() -> str | None:
        status = (shop.order(order_id).body or {}).get("status")
        return status if status in FINAL_STATUSES else None

    status = poll(final, timeout_s)
    took = time.monotonic() - started
    if status != "confirmed":
        report.add("purchase", f"order {order_id} confirmed", FAIL,
                   f"{status or 'not final'} after {took:.1f} s")
        return None
    report.add("purchase", f"order {order_id} confirmed", OK, f"in {took:.1f} s")
    return cid, trace_id


def check_trace(report: Report, jaeger: str, trace_id: str, services: list[str],
                timeout_s: float) -> None:
    query = JaegerQuery(jaeger, timeout_s=REQUEST_TIMEOUT_S)

    def complete(tree: SpanTree) -> bool:
        return set(services) <= tree.services and not tree.orphans

    try:
        tree, ready = query.wait_for_tree(trace_id, complete, timeout_s)
    except (JaegerError, http.Unreachable) as exc:
        report.add("jaeger", f"trace {trace_id}", FAIL, str(exc)[:160])
        return
    found = sorted(tree.services) if tree else []
    missing = [s for s in services if s not in found]
    report.add("jaeger", "one trace through " + ", ".join(_short(s) for s in services),
               OK if not missing else FAIL,
               f"{len(tree.spans)} spans, trace {trace_id}" if tree and not missing
               else f"missing {', '.join(missing)}; has {', '.join(found) or 'nothing'}")
    try:
        known = set(query.services())
    except (JaegerError, http.Unreachable) as exc:
        report.add("jaeger", "knows the services", FAIL, str(exc)[:160])
        return
    missing = [s for s in services if s not in known]
    report.add("jaeger", "knows the services", OK if not missing else FAIL,
               ", ".join(sorted(known)) if not missing else f"missing {', '.join(missing)}")


def _short(service: str) -> str:
    return service.removeprefix("kodekloud-record-store-")


def _why(resp: http.Response | str) -> str:
    return resp if isinstance(resp, str) else f"answered {resp.status}"


# --- the command line -------------------------------------------------------------------------

def detect_mode(grafana: str) -> str:
    """compose when Grafana answers (only compose runs it), native otherwise."""
    resp = get(f"{grafana}/api/health")
    return "compose" if not isinstance(resp, str) and resp.status == 200 else "native"


def parser(env: dict[str, str]) -> argparse.ArgumentParser:
    def url(port_name: str, default: str) -> str:
        return default_url(env, port_name, default)

    p = argparse.ArgumentParser(
        prog="check_stack.py", description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 every check passed, 1 a check failed, 2 bad usage")
    p.add_argument("--base-url", default=url("GATEWAY_PORT", "8000"),
                   help="the gateway (default: %(default)s)")
    p.add_argument("--prometheus-url", default=url("PROMETHEUS_PORT", "9090"),
                   help="Prometheus (default: %(default)s)")
    p.add_argument("--grafana-url", default=url("GRAFANA_PORT", "3000"),
                   help="Grafana, compose only (default: %(default)s)")
    p.add_argument("--jaeger-url", default=url("JAEGER_UI_PORT", "16686"),
                   help="Jaeger's query API (default: %(default)s)")
    p.add_argument("--grafana-user", default=env.get("GRAFANA_ADMIN_USER", "admin"))
    p.add_argument("--grafana-password", default=env.get("GRAFANA_ADMIN_PASSWORD", "admin"))
    p.add_argument("--mode", choices=("auto", "compose", "native"), default="auto",
                   help="compose checks Grafana and the gateway's span; auto (the default) "
                        "picks compose when Grafana answers")
    p.add_argument("--not-covered", action="append", default=[], choices=NOT_COVERABLE,
                   metavar="PART", help="report the checks of PART (grafana, gateway-span) as "
                   "not covered, for a stack whose stand-ins lack it; repeatable")
    p.add_argument("--timeout", type=float, default=90.0, metavar="S",
                   help="how long to wait for the order and for its trace (default: 90)")
    p.add_argument("--json", action="store_true", help="print the results as JSON only")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser(read_env()).parse_args(argv)
    base, prometheus = args.base_url.rstrip("/"), args.prometheus_url.rstrip("/")
    grafana, jaeger = args.grafana_url.rstrip("/"), args.jaeger_url.rstrip("/")
    mode = detect_mode(grafana) if args.mode == "auto" else args.mode
    report = Report(live=not args.json)
    if not args.json:
        print(f"Checking the record store lab ({mode} mode)\n"
              f"  gateway {base}  prometheus {prometheus}  jaeger {jaeger}"
              + (f"  grafana {grafana}" if mode == "compose" else "") + "\n", flush=True)

    gateway_ok = check_gateway_and_api(report, base)
    check_prometheus(report, prometheus, wait_s=min(args.timeout, 30.0))
    skip = {part: NOT_COVERABLE[part] for part in args.not_covered}
    if mode != "compose":
        skip = {"grafana": "native mode has no Grafana; try ./lab dashboard",
                "gateway-span": "native nginx has no OpenTelemetry module"}
    if "grafana" in skip:
        grafana_not_applicable(report, skip["grafana"])
    else:
        check_grafana(report, grafana, args.grafana_user, args.grafana_password)
    services = [API_SERVICE, WORKER_SERVICE]
    if "gateway-span" in skip:
        report.add("gateway", "span in the trace", NA, skip["gateway-span"])
    else:
        services.insert(0, GATEWAY_SERVICE)
    purchase = test_purchase(report, base, args.timeout) if gateway_ok else None
    if purchase is None:
        report.add("jaeger", "one trace through the stack", FAIL,
                   "no confirmed purchase to follow")
    else:
        check_trace(report, jaeger, purchase[1], services, args.timeout)

    passed = sum(r.status == OK for r in report.results)
    skipped = sum(r.status == NA for r in report.results)
    if args.json:
        print(json.dumps({"mode": mode, "ok": not report.failed,
                          "results": [asdict(r) for r in report.results]}, indent=2))
    else:
        print(f"\n{passed} passed, {len(report.failed)} failed, {skipped} not applicable")
        if report.failed:
            print("See README.md (Run it with Docker Compose) for what each component needs.")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
