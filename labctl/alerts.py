"""`./lab alerts`: what Prometheus fires, what Alertmanager does with it, what was delivered."""

from labctl.config import LabConfig
from labctl.proc import LabError
from labkit import http


def _get(url: str):
    try:
        resp = http.get(url, timeout_s=5)
    except http.Unreachable as exc:
        raise LabError(f"cannot read {url}: {exc.reason}") from exc
    body = resp.json()
    if not resp.ok or body is None:
        raise LabError(f"cannot read {url}: it answered {resp.status}")
    return body


def collect(cfg: LabConfig) -> dict:
    rules = _get(cfg.url("PROMETHEUS_PORT", "/api/v1/alerts"))["data"]["alerts"]
    managed = _get(cfg.url("ALERTMANAGER_PORT", "/api/v2/alerts"))
    delivered = _get(cfg.url("ALERT_RECEIVER_PORT", "/alerts"))["notifications"]
    state_in_am = {a["labels"]["alertname"]: a["status"] for a in managed}
    return {
        "prometheus": [
            {"alertname": a["labels"]["alertname"], "state": a["state"],
             "severity": a["labels"].get("severity"), "summary": a["annotations"].get("summary"),
             "since": a.get("activeAt"),
             "alertmanager": _am_state(state_in_am.get(a["labels"]["alertname"]))}
            for a in sorted(rules, key=lambda a: a["labels"]["alertname"])
        ],
        "delivered": [
            {"received_at": n["received_at"], "receiver": n["receiver"], **alert}
            for n in delivered for alert in n["alerts"]
        ],
    }


def _am_state(status: dict | None) -> str:
    if status is None:
        return "-"
    if status.get("inhibitedBy"):
        return "inhibited"
    if status.get("silencedBy"):
        return "silenced"
    return status.get("state", "-")


def render(report: dict) -> str:
    lines = ["Alerts in Prometheus (pending or firing):"]
    if not report["prometheus"]:
        lines.append("  none")
    for a in report["prometheus"]:
        lines.append(f"  {a['state']:<8} {a['alertname']:<28} {a['severity'] or '':<9} "
                     f"alertmanager: {a['alertmanager']:<10} {a['summary']}")
    lines.append("")
    lines.append("Notifications delivered to the alert receiver (newest last):")
    if not report["delivered"]:
        lines.append("  none")
    for n in report["delivered"][-20:]:
        lines.append(f"  {n['received_at'][:19]}  {n['status']:<8} {n['alertname']:<28} "
                     f"{n['severity'] or '':<9} {n['summary']}")
    return "\n".join(lines)
