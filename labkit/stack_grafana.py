"""scripts/check_stack.py's checks of Grafana (compose only): healthy, each datasource passes
Grafana's own health check (or answers through its proxy), and the dashboards are provisioned."""

import base64
import urllib.parse

from .links import DASHBOARD_UID
from .stack_report import FAIL, NA, OK, Report, get, reason

# A status page of each backend, asked through Grafana when its plugin has no health check.
PROXY_PROBES = {"prometheus": "/api/v1/status/buildinfo", "jaeger": "/api/services",
                "alertmanager": "/api/v2/status"}


def check_grafana(report: Report, grafana: str, user: str, password: str) -> None:
    resp = get(f"{grafana}/api/health")
    if isinstance(resp, str) or resp.status != 200:
        report.add("grafana", f"healthy at {grafana}", FAIL, reason(resp))
        return
    report.add("grafana", "healthy", OK, f"version {(resp.json() or {}).get('version', '?')}")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    resp = get(f"{grafana}/api/datasources", auth)
    if isinstance(resp, str) or resp.status != 200:
        report.add("grafana", f"datasources (logged in as {user})", FAIL, reason(resp))
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
        report.add("grafana", "dashboards", FAIL, reason(resp))
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
    why = str(body.get("message", "")) if isinstance(body, dict) else reason(health)
    probe = PROXY_PROBES.get(str(source.get("type")))
    if probe is None:
        return False, why
    proxied = get(f"{grafana}/api/datasources/proxy/uid/{uid}{probe}", auth)
    if not isinstance(proxied, str) and proxied.status == 200:
        return True, f"reached through Grafana's proxy ({probe})"
    return False, f"{why}; via Grafana's proxy: {reason(proxied)}"


def grafana_not_applicable(report: Report, why: str) -> None:
    for check in ("healthy", "datasources healthy", "dashboards provisioned"):
        report.add("grafana", check, NA, why)
