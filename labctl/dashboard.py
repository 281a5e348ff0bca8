"""`./lab dashboard`: a provisioned Grafana dashboard, rendered in the terminal.

Natively there is no Grafana, so this evaluates the dashboard JSON's own panel queries against
Prometheus: the JSON under grafana/dashboards/ (read by grafana_json.py) stays the single
source of every panel. Prometheus and the trace store are read through labkit, the
clients the learner-facing scripts use. Standard library only.
"""

import json
import math
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from labctl.config import LabConfig
from labctl.grafana_json import (
    DASHBOARDS,
    JAEGER_UID,
    find,
    is_prometheus,
    load_all,
    logfmt,
    panels,
    parse_overrides,
    prometheus_targets,
    substitute,
    uid,
    variables,
)
from labctl.proc import LabError
from labkit import http
from labkit.jaeger import JaegerError, JaegerQuery, build_tree
from labkit.prometheus import Prometheus, PrometheusError, alert_summary

SPARK_WINDOW_S = 15 * 60
SPARK_POINTS = 30
SPARK_BARS = "▁▂▃▄▅▆▇█"
TRACE_ROWS = 5  # rows of a Jaeger table shown in the terminal
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
T = TypeVar("T")


@dataclass
class Series:
    legend: str
    value: float
    spark: str = ""


@dataclass
class PanelView:
    row: str
    title: str
    type: str
    prometheus: bool
    series: list[Series] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    format: dict = field(default_factory=dict)  # unit, decimals, value mappings of the panel


# ------------------------------------------------------------------ Prometheus


def read(call: Callable[[], T]) -> T:
    """A call to Prometheus or the trace store, with what went wrong as a LabError."""
    try:
        return call()
    except (http.Unreachable, PrometheusError, JaegerError) as exc:
        raise LabError(str(exc)) from exc


def range_query(prometheus: Prometheus, expr: str, window_s: int = SPARK_WINDOW_S,
                points: int = SPARK_POINTS) -> dict[str, list[float]]:
    """Each series' values on a common grid of `points` steps (NaN where it has none)."""
    step = window_s / points
    end = time.time()
    start = end - step * (points - 1)  # the last point is now
    grid = {}
    for series in read(lambda: prometheus.query_range(expr, start, end, step)):
        values = [math.nan] * points
        for ts, value in series["values"]:
            index = round((float(ts) - start) / step)
            if 0 <= index < points:
                values[index] = float(value)
        grid[_key(series["metric"])] = values
    return grid


def legend(fmt: str, metric: dict[str, str]) -> str:
    """Grafana's legend format: {{label}} replaced by the series' label value."""
    if fmt and fmt != "__auto":
        text = LEGEND_LABEL.sub(lambda m: metric.get(m.group(1), ""), fmt).strip()
    else:
        text = ", ".join(f"{k}={v}" for k, v in sorted(metric.items()) if k != "__name__")
    return text or "value"


def sparkline(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(SPARK_BARS[round((v - low) / span * (len(SPARK_BARS) - 1))]
                   if math.isfinite(v) else " " for v in values)


# ------------------------------------------------------------------ values as Grafana shows them


def format_value(value: float, unit: str | None = None, decimals: int | None = None,
                 mappings: list[dict] | None = None) -> str:
    for mapping in mappings or []:
        if mapping.get("type") == "value":
            hit = mapping.get("options", {}).get(_plain(value))
            if hit and hit.get("text"):
                return hit["text"]
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit == "percentunit":
        return f"{_number(value * 100, decimals if decimals is not None else 1)} %"
    if unit == "s":
        if abs(value) < 1 and decimals is None:
            return f"{value * 1000:.0f} ms" if value else "0 s"
        return f"{_number(value, decimals if decimals is not None else 2)} s"
    if unit == "currencyUSD":
        return f"${value:,.{decimals if decimals is not None else 2}f}"
    suffix = {"reqps": " req/s", "ops": " ops/s"}.get(unit or "", "")
    return _number(value, decimals) + suffix


def _plain(value: float) -> str:
    return str(int(value)) if math.isfinite(value) and value == int(value) else str(value)


def _number(value: float, decimals: int | None) -> str:
    if decimals is not None:
        return f"{value:,.{decimals}f}"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


# ------------------------------------------------------------------ evaluating panels


def evaluate(cfg: LabConfig, board: dict, overrides: dict[str, str] | None = None,
             sparklines: bool = True) -> list[PanelView]:
    values = variables(board, overrides)
    prometheus = Prometheus(cfg.url("PROMETHEUS_PORT"))
    views = []
    for row, panel in panels(board):
        view = PanelView(row=substitute(row, values), title=substitute(panel["title"], values),
                         type=panel.get("type", ""), prometheus=is_prometheus(panel))
        if view.prometheus:
            _evaluate_prometheus(prometheus, panel, values, view, sparklines)
        else:
            view.notes.extend(_native_note(cfg, panel, values))
        views.append(view)
    return views


def _evaluate_prometheus(prometheus: Prometheus, panel: dict, values: dict[str, str],
                         view: PanelView, sparklines: bool) -> None:
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    view.format = {"unit": defaults.get("unit"), "decimals": defaults.get("decimals"),
                   "mappings": defaults.get("mappings")}
    for target in prometheus_targets(panel):
        ref, expr = target.get("refId", "?"), substitute(target["expr"], values)
        try:
            result = read(lambda e=expr: prometheus.query(e))
            history = {}
            if sparklines and panel.get("type") == "timeseries":
                history = range_query(prometheus, expr)
        except LabError as exc:
            view.errors.append(f"{ref}: {exc}\n      query: {expr}")
            continue
        if not result:
            view.notes.append(f"{ref}: No data")
        for sample in sorted(result, key=lambda s: sorted(s["metric"].items())):
            points = history.get(_key(sample["metric"]), [])
            view.series.append(Series(
                legend=legend(target.get("legendFormat", ""), sample["metric"]),
                value=float(sample["value"][1]),
                spark=sparkline(points)))


def _key(metric: dict[str, str]) -> str:
    return json.dumps(metric, sort_keys=True)


def _native_note(cfg: LabConfig, panel: dict, values: dict[str, str]) -> list[str]:
    """Where to look natively for what Grafana would show in a non-Prometheus panel."""
    kind = panel.get("type", "")
    source = uid(panel.get("datasource"))
    if source == JAEGER_UID:
        return [line for target in panel.get("targets", [])
                for line in _jaeger_note(cfg, target, values)]
    if kind == "alertlist":
        return ["Alert list (Prometheus rules, Alertmanager): natively ./lab alerts",
                *_alerts_summary(cfg)]
    if kind == "text":
        content = panel.get("options", {}).get("content", "")
        return [re.sub(r"[*`]", "", line).strip() for line in content.splitlines() if line.strip()]
    return [f"{kind} panel: Grafana only (datasource {source or 'none'})"]


def _jaeger_note(cfg: LabConfig, target: dict, values: dict[str, str]) -> list[str]:
    """The Jaeger query as a call to the trace stand-in's API, and what it answers now."""
    query = JaegerQuery(cfg.url("JAEGER_UI_PORT"))
    if target.get("queryType") == "search":
        params = {"service": target.get("service", "")}
        if target.get("operation"):
            params["operation"] = target["operation"]
        tags = logfmt(substitute(target.get("tags", ""), values))
        if tags:
            params["tags"] = json.dumps(tags, separators=(",", ":"))
        params["limit"] = str(target.get("limit", 20))
        url = query.url("/api/traces", params)
        empty = [k for k, v in tags.items() if v == ""]
        if empty:
            return [f"Jaeger search; give it a value: --var {empty[0]}=<value>",
                    f"natively: curl -s '{url}'"]
        return [f"Jaeger search, natively: curl -s '{url}'",
                *_trace_table(lambda: query.search(params))]
    trace_id = urllib.parse.quote(substitute(target.get("query", ""), values))
    if not trace_id:
        return ["Jaeger trace by id; give it a value: --var trace_id=<trace id>"]

    def one() -> list[dict]:
        trace = query.trace(trace_id)
        return [trace] if trace else []

    return [f"Jaeger trace, natively: curl -s '{query.url(f'/api/traces/{trace_id}')}'",
            *_trace_table(one)]


def _trace_table(fetch: Callable[[], list[dict]]) -> list[str]:
    """A few rows of what the trace stand-in answers, errors marked (it may not be running)."""
    try:
        trees = [build_tree(trace) for trace in read(fetch)]
    except LabError as exc:
        return [f"(trace store not answering: {exc})"]
    rows = [f"{len(trees)} trace(s), {sum(1 for t in trees if t.errors)} with errors"]
    for tree in trees[:TRACE_ROWS]:
        root = tree.roots[0].operation if tree.roots else "?"
        # The journey's length: first span's start to last span's end (the worker's included).
        rows.append(f"  {tree.trace_id or '?':<32}  {root:<24} "
                    f"{tree.duration_us / 1000:>9.1f} ms  {len(tree.spans):>3} spans"
                    f"{'  ERROR' if tree.errors else ''}")
    return rows


def _alerts_summary(cfg: LabConfig) -> list[str]:
    try:
        return alert_summary(read(Prometheus(cfg.url("PROMETHEUS_PORT")).alerts))
    except LabError as exc:
        return [str(exc)]


# ------------------------------------------------------------------ rendering


def render(board: dict, views: list[PanelView], overrides: dict[str, str] | None = None) -> str:
    values = variables(board, overrides)
    own = {v["name"]: values[v["name"]] for v in board.get("templating", {}).get("list", [])}
    lines = [f"{board['title']}  (uid {board['uid']}; last {values['__range']}, "
             f"rate window {values['__rate_interval']}; sparklines: last "
             f"{SPARK_WINDOW_S // 60} min)"]
    if own:
        lines.append("variables: " + "  ".join(f"{k}={v!r}" for k, v in own.items()))
    row = None
    for view in views:
        if view.row != row:
            row = view.row
            lines += ["", f"── {row or 'Panels'} " + "─" * max(0, 70 - len(row or 'Panels'))]
        lines.append(f"  {view.title}")
        width = max((len(s.legend) for s in view.series), default=0)
        for s in view.series:
            value = format_value(s.value, **view.format)
            lines.append(f"      {s.legend:<{width}}  {value:>14}  {s.spark}".rstrip())
        lines += [f"      {note}" for note in view.notes]
        lines += [f"      ERROR {err}" for err in view.errors]
    return "\n".join(lines)


def listing(directory: Path = DASHBOARDS) -> str:
    rows = []
    for board in load_all(directory):
        count = sum(1 for _ in panels(board))
        rows.append(f"  {board['title']:<20} uid {board['uid']:<18} {count} panels")
    return "Provisioned dashboards (grafana/dashboards/):\n" + "\n".join(rows)


def main(cfg: LabConfig, name: str, list_only: bool = False,
         var: list[str] | None = None) -> int:
    """Print the dashboard; exit status 1 when a panel's query failed."""
    if list_only:
        print(listing())
        return 0
    board = find(name)
    overrides = parse_overrides(var)
    # Fail early when Prometheus is down.
    read(lambda: Prometheus(cfg.url("PROMETHEUS_PORT")).query("vector(1)"))
    views = evaluate(cfg, board, overrides)
    print(render(board, views, overrides))
    return 1 if any(v.errors for v in views) else 0
