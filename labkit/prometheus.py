"""Prometheus's HTTP API: instant and range queries, exemplars, and the alerts of its rules."""

import urllib.parse
from typing import Any

from . import http


class PrometheusError(Exception):
    """Prometheus answered, but not with data (a bad query explains itself here)."""


class Prometheus:
    """A client of Prometheus's `/api/v1/...`; `http.Unreachable` when nothing answers."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _data(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        resp = http.get(url, timeout_s=self.timeout_s)
        body = resp.json()
        if resp.status != 200 or not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise PrometheusError(error or f"{url} answered {resp.status}")
        return body.get("data")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's samples, [{"metric": {...}, "value": [ts, "v"]}, ...]; a scalar
        comes as one sample without labels."""
        data = self._data("/api/v1/query", {"query": expr})
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def query_range(self, expr: str, start: float, end: float,
                    step: float) -> list[dict[str, Any]]:
        """[{"metric": {...}, "values": [[ts, "v"], ...]}, ...]"""
        params = {"query": expr, "start": start, "end": end, "step": step}
        return self._data("/api/v1/query_range", params)["result"]

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """Exemplars between start and end: [{"labels": {"trace_id": ...}, "value": ...}]."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        data = self._data("/api/v1/query_exemplars", params) or []
        return [e for series in data for e in series.get("exemplars", [])]

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts of the alerting rules, pending or firing."""
        return self._data("/api/v1/alerts")["alerts"]

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets: labels, health (up, down, unknown), scrapeInterval..."""
        return self._data("/api/v1/targets", {"state": "active"})["activeTargets"]

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule (alerting and recording), each with its group's name added."""
        groups = self._data("/api/v1/rules")["groups"]
        return [{**rule, "group": g["name"]} for g in groups for rule in g["rules"]]

    def rule_groups(self) -> list[dict[str, Any]]:
        """The loaded rule groups as /api/v1/rules gives them: name, file, rules, interval."""
        return self._data("/api/v1/rules")["groups"]

    def alertmanagers(self) -> list[str]:
        """The Alertmanagers Prometheus sends its alerts to (their API URLs)."""
        active = self._data("/api/v1/alertmanagers")["activeAlertmanagers"]
        return [a["url"] for a in active]


def slowest_exemplar(exemplars: list[dict[str, Any]],
                     min_seconds: float = 0.0) -> dict[str, Any] | None:
    """The slowest exemplar that names a trace (at least `min_seconds`), or None: how exercise
    08, exercise 09 and the storefront's "slowest checkout" (trace-view.js) pick one."""
    named = [e for e in exemplars
             if e.get("labels", {}).get("trace_id") and float(e["value"]) >= min_seconds]
    return max(named, key=lambda e: float(e["value"]), default=None)


def alert_summary(alerts: list[dict[str, Any]]) -> list[str]:
    """One line per pending or firing alert: state, name, severity."""
    if not alerts:
        return ["no alert pending or firing"]
    return [f"{a['state']:<8} {a['labels'].get('alertname', '?')} "
            f"({a['labels'].get('severity', '-')})" for a in alerts]
