"""A played game's timeline, for the debrief and the postmortem: the fault's start, the first
alert pending and firing (Prometheus's ALERTS series), each hint, the answer and the recovery;
and, in compose, the fault's window as an annotation on Grafana's dashboards (its HTTP API).
Standard library only."""

import base64
import json
import time
from typing import Any

from gameday.causes import BY_CAUSE
from labkit import http
from labkit.prometheus import Prometheus, PrometheusError
from labkit.settings import REPO

STEP_S = 5  # the ALERTS series is read at the scrape interval


def clock(ts: float) -> str:
    """HH:MM:SS UTC, as the checks ask for times."""
    return time.strftime("%H:%M:%S", time.gmtime(ts))


def alert_starts(prometheus: Prometheus, start: float, end: float) -> dict[str, Any]:
    """The first alert that went pending and the first that went firing between `start` and
    `end`: {"pending": [name, at], "firing": [name, at]} (a state absent when none went into
    it; an alert already in a state at `start` does not count). {"error": ...} when Prometheus
    does not answer."""
    # One step past `end`: the graph's last point before `end` may precede an alert that went
    # into its state a moment before it (answered as soon as it fired).
    end = max(end, start) + STEP_S
    try:
        series = prometheus.query_range("ALERTS", start - 2 * STEP_S, end, STEP_S)
    except (PrometheusError, http.Unreachable) as exc:
        return {"error": str(exc)}
    first: dict[str, Any] = {}
    for s in series:
        state, name = s["metric"].get("alertstate"), s["metric"].get("alertname", "?")
        stamps = [float(t) for t, _ in s["values"]]
        # rising edges: a sample with none a step before it; one before `start` was there
        # before the fault
        edges = [t for i, t in enumerate(stamps)
                 if (i == 0 or t - stamps[i - 1] > STEP_S * 1.5) and start <= t <= end]
        if state in ("pending", "firing") and edges and (
                state not in first or edges[0] < first[state][1]):
            first[state] = [name, edges[0]]
    return first


def events(game: dict[str, Any]) -> list[tuple[float, str]]:
    """The recorded timeline of a played game (`gameday.json`), oldest first."""
    cause = BY_CAUSE[game["cause"]]
    out = [(game["started_at"], f"the fault started: {cause.title} ({cause.name})")]
    alerts = game.get("alerts") or {}
    for state in ("pending", "firing"):
        if state in alerts:
            name, at = alerts[state]
            out.append((at, f"first alert {state}: {name}"))
    out += [(at, f"hint {n} taken") for n, at in enumerate(game.get("hint_at") or [], 1)]
    if "answered_at" in game:
        out.append((game["answered_at"], f"answered {game['answer']}: "
                    f"{'right' if game['right'] else 'wrong'}, {game.get('points', 0)} points; "
                    "the fault switched off"))
    if game.get("recovered_at"):
        out.append((game["recovered_at"], "recovered: /health answers 200, no fault on"))
    return sorted(out, key=lambda e: e[0])


def lines(game: dict[str, Any]) -> list[str]:
    """The timeline as the debrief prints it and the postmortem records it."""
    out = [f"{clock(at)} UTC  {what}" for at, what in events(game)]
    alerts = game.get("alerts") or {}
    if "error" in alerts:
        out.append(f"(no alert read: Prometheus did not answer: {alerts['error']})")
    elif "firing" not in alerts:
        out.append("(no alert went firing during the game)")
    return out


def dashboards() -> list[str]:
    """The uids of the lab's Grafana dashboards (grafana/dashboards/): each shows the
    annotations made on it (their built-in "Annotations & Alerts")."""
    return sorted(json.loads(p.read_text())["uid"]
                  for p in (REPO / "grafana" / "dashboards").glob("*.json"))


def annotation(game: dict[str, Any], dashboard: str) -> dict[str, Any]:
    """The fault's window on one dashboard, as Grafana's POST /api/annotations takes it."""
    cause = BY_CAUSE[game["cause"]]
    end = game.get("recovered_at") or game.get("answered_at") or time.time()
    verdict = ("right" if game.get("right") else "wrong") if "answer" in game else "given up"
    return {"dashboardUID": dashboard, "time": int(game["started_at"] * 1000),
            "timeEnd": int(end * 1000), "tags": ["gameday", cause.name],
            "text": f"game day: {cause.title} ({cause.name}); answered "
                    f"{game.get('answer', 'nothing')}: {verdict}"}


def annotate(grafana_url: str, user: str, password: str, game: dict[str, Any],
             boards: list[str] | None = None) -> str:
    """Mark the game's fault window on each of Grafana's dashboards; one line saying what
    happened (Grafana unreachable or refusing is said, never raised: the debrief carries on)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    url = f"{grafana_url.rstrip('/')}/api/annotations"
    boards = dashboards() if boards is None else boards
    for board in boards:
        try:
            resp = http.post(url, annotation(game, board),
                             headers={"Authorization": f"Basic {token}"}, timeout_s=5)
        except http.Unreachable as exc:
            return f"Grafana did not answer ({exc.reason}): no annotation on the dashboards"
        if not resp.ok:
            return (f"Grafana refused the annotation on {board} ({resp.status}: "
                    f"{resp.body[:120].decode(errors='replace')})")
    return (f"the fault's window is marked on Grafana's dashboards ({', '.join(boards)}): an "
            f"annotation tagged gameday, {game['cause']}")
