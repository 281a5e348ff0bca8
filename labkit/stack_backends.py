"""scripts/check_stack.py's checks of the gateway, the API (and what its health names: the
database and the broker) and Prometheus (ready, and every scrape target up)."""

from .stack_report import FAIL, OK, Report, get, poll, reason

# The scrape jobs of prometheus/prometheus.yml.
EXPECTED_JOBS = ("api", "worker", "rabbitmq", "postgres", "nginx", "alertmanager", "prometheus")


def check_gateway_and_api(report: Report, base: str) -> bool:
    resp = get(f"{base}/gateway/health")
    if isinstance(resp, str) or resp.status != 200:
        report.add("gateway", f"GET {base}/gateway/health", FAIL, reason(resp))
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
        report.add("prometheus", f"ready at {prometheus}", FAIL, reason(resp))
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
