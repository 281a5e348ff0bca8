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

The defaults are the ports and the Grafana login in the repository's .env, and the lab's run mode
(labkit/settings.py). The checks themselves are labkit/stack_*.py, one module
per part. Standard library only: run it with a bare `python3`.
"""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the repository, where labkit lives

from labkit.links import API_SERVICE, GATEWAY_SERVICE, WORKER_SERVICE  # noqa: E402
from labkit.settings import SettingsError, default_url, read_env, run_mode  # noqa: E402
from labkit.stack_backends import check_gateway_and_api, check_prometheus  # noqa: E402
from labkit.stack_grafana import check_grafana, grafana_not_applicable  # noqa: E402
from labkit.stack_purchase import check_trace, test_purchase  # noqa: E402
from labkit.stack_report import FAIL, NA, OK, Report  # noqa: E402

# What a stack may lack and still be checked (--not-covered), and what the report says then.
NOT_COVERABLE = {"grafana": "not covered: this stack runs no Grafana",
                 "gateway-span": "not covered: this gateway has no OpenTelemetry module"}



# --- the command line -------------------------------------------------------------------------

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
                        "takes the lab's run mode: LAB_MODE, else native while ./lab runs a "
                        "stack, else compose when a Docker engine answers")
    p.add_argument("--not-covered", action="append", default=[], choices=NOT_COVERABLE,
                   metavar="PART", help="report the checks of PART (grafana, gateway-span) as "
                   "not covered, for a stack whose stand-ins lack it; repeatable")
    p.add_argument("--timeout", type=float, default=90.0, metavar="S",
                   help="how long to wait for the order and for its trace (default: 90)")
    p.add_argument("--json", action="store_true", help="print the results as JSON only")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser(read_env())
    args = p.parse_args(argv)
    base, prometheus = args.base_url.rstrip("/"), args.prometheus_url.rstrip("/")
    grafana, jaeger = args.grafana_url.rstrip("/"), args.jaeger_url.rstrip("/")
    try:
        mode = run_mode() if args.mode == "auto" else args.mode
    except SettingsError as exc:
        p.error(str(exc))
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
            print("See docs/compose.md for what each component needs.")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
