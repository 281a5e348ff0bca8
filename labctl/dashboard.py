"""`./lab dashboard`: a provisioned Grafana dashboard, rendered in the terminal.

Natively there is no Grafana, so this evaluates the dashboard JSON's own panel queries against
Prometheus: the JSON under grafana/dashboards/ stays the single source of every panel.
Standard library only.
"""

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from labctl.config import ROOT, LabConfig
from labctl.proc import LabError

DASHBOARDS = ROOT / "grafana" / "dashboards"
PROMETHEUS_UID = "prometheus"
JAEGER_UID = "jaeger"
# What Grafana would put in for its built-in variables, for a "last hour, right now" view.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
SPARK_WINDOW_S = 15 * 60
SPARK_POINTS = 30
SPARK_BARS = "▁▂▃▄▅▆▇█"
TRACE_ROWS = 5  # rows of a Jaeger table shown in the terminal
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


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


# ------------------------------------------------------------------ the dashboard JSON


def load_all(directory: Path = DASHBOARDS) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def find(name: str, directory: Path = DASHBOARDS) -> dict:
    """A dashboard by its title (case-insensitive) or its uid."""
    boards = load_all(directory)
    for board in boards:
        if name.casefold() in (board["title"].casefold(), board["uid"].casefold()):
            return board
    known = ", ".join(f'"{b["title"]}" ({b["uid"]})' for b in boards)
    raise LabError(f"no dashboard named {name!r}; there are: {known}")


def panels(board: dict) -> Iterator[tuple[str, dict]]:
    """(row title, panel) for every non-row panel, in layout order, collapsed rows included."""
    row = ""
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            row = panel.get("title", "")
            for inner in panel.get("panels", []):
                yield row, inner
        else:
            yield row, panel


def _uid(ref: object) -> str | None:
    return ref.get("uid") if isinstance(ref, dict) else None


def is_prometheus(panel: dict) -> bool:
    return any(prometheus_targets(panel))


def prometheus_targets(panel: dict) -> list[dict]:
    """The panel's targets that Prometheus answers (own datasource, or the panel's)."""
    panel_uid = _uid(panel.get("datasource"))
    return [t for t in panel.get("targets", [])
            if (_uid(t.get("datasource")) or panel_uid) == PROMETHEUS_UID and t.get("expr")]


def variables(board: dict, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Built-ins, then each dashboard variable's default ("All" becomes .*), then overrides."""
    values = dict(BUILTINS)
    for var in board.get("templating", {}).get("list", []):
        current = var.get("current") or {}
        value = current.get("value", var.get("query", ""))
        if isinstance(value, list):
            value = "|".join(value)
        if value in ("$__all", "All") or current.get("text") == "All":
            value = var.get("allValue") or ".*"
        values[var["name"]] = str(value if value is not None else "")
    values.update(overrides or {})
    return values


def substitute(text: str, values: dict[str, str]) -> str:
    """Grafana's variable syntaxes ($name, ${name}, ${name:fmt}, [[name]]); unknown ones stay."""
    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        return values.get(name, m.group(0))

    return VARIABLE.sub(one, text)


def queries(board: dict, overrides: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr with variables filled in) for every Prometheus target."""
    values = variables(board, overrides)
    return [(substitute(panel["title"], values), target.get("refId", ""),
             substitute(target["expr"], values))
            for _, panel in panels(board) for target in prometheus_targets(panel)]


# ------------------------------------------------------------------ Prometheus


def _get_json(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:  # Prometheus explains a bad query in the body
        try:
            body = json.load(exc)
        except ValueError:
            body = {}
        raise LabError(body.get("error") or f"HTTP {exc.code} from {url}") from exc
    except (OSError, ValueError) as exc:
        raise LabError(f"cannot read {url}: {exc}") from exc


def instant_query(prometheus: str, expr: str) -> list[dict]:
    """The result vector of an instant query ([] when Prometheus has no data)."""
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    data = _get_json(url)["data"]
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": data["result"]}]
    return data["result"]


def range_query(prometheus: str, expr: str, window_s: int = SPARK_WINDOW_S,
                points: int = SPARK_POINTS) -> dict[str, list[float]]:
    """Each series' values on a common grid of `points` steps (NaN where it has none)."""
    step = window_s / points
    end = time.time()
    start = end - step * (points - 1)  # the last point is now
    params = {"query": expr, "start": start, "end": end, "step": step}
    url = f"{prometheus}/api/v1/query_range?" + urllib.parse.urlencode(params)
    grid = {}
    for series in _get_json(url)["data"]["result"]:
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
    prometheus = cfg.url("PROMETHEUS_PORT")
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


def _evaluate_prometheus(prometheus: str, panel: dict, values: dict[str, str], view: PanelView,
                         sparklines: bool) -> None:
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    view.format = {"unit": defaults.get("unit"), "decimals": defaults.get("decimals"),
                   "mappings": defaults.get("mappings")}
    for target in prometheus_targets(panel):
        ref, expr = target.get("refId", "?"), substitute(target["expr"], values)
        try:
            result = instant_query(prometheus, expr)
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
    uid = _uid(panel.get("datasource"))
    if uid == JAEGER_UID:
        return [line for target in panel.get("targets", [])
                for line in _jaeger_note(cfg, target, values)]
    if kind == "alertlist":
        return ["Alert list (Prometheus rules, Alertmanager): natively ./lab alerts",
                *_alerts_summary(cfg)]
    if kind == "text":
        content = panel.get("options", {}).get("content", "")
        return [re.sub(r"[*`]", "", line).strip() for line in content.splitlines() if line.strip()]
    return [f"{kind} panel: Grafana only (datasource {uid or 'none'})"]


def _jaeger_note(cfg: LabConfig, target: dict, values: dict[str, str]) -> list[str]:
    """The Jaeger query as a call to the trace stand-in's API, and what it answers now."""
    base = cfg.url("JAEGER_UI_PORT")
    if target.get("queryType") == "search":
        params = {"service": target.get("service", "")}
        if target.get("operation"):
            params["operation"] = target["operation"]
        tags = logfmt(substitute(target.get("tags", ""), values))
        if tags:
            params["tags"] = json.dumps(tags, separators=(",", ":"))
        params["limit"] = str(target.get("limit", 20))
        url = f"{base}/api/traces?" + urllib.parse.urlencode(params)
        empty = [k for k, v in tags.items() if v == ""]
        if empty:
            return [f"Jaeger search; give it a value: --var {empty[0]}=<value>",
                    f"natively: curl -s '{url}'"]
        return [f"Jaeger search, natively: curl -s '{url}'", *_trace_table(url)]
    trace_id = substitute(target.get("query", ""), values)
    if not trace_id:
        return ["Jaeger trace by id; give it a value: --var trace_id=<trace id>"]
    url = f"{base}/api/traces/{urllib.parse.quote(trace_id)}"
    return [f"Jaeger trace, natively: curl -s '{url}'", *_trace_table(url)]


def _trace_table(url: str) -> list[str]:
    """A few rows of what the trace stand-in answers, errors marked (it may not be running)."""
    try:
        traces = _get_json(url).get("data") or []
    except LabError as exc:
        return [f"(trace store not answering: {exc})"]
    failed = sum(1 for t in traces if _has_error(t))
    rows = [f"{len(traces)} trace(s), {failed} with errors"]
    for trace in traces[:TRACE_ROWS]:
        spans = trace.get("spans", [])
        root = next((sp for sp in spans if not sp.get("references")), spans[0] if spans else {})
        # The journey's length: first span's start to last span's end (the worker's included).
        start = min((sp["startTime"] for sp in spans), default=0)
        end = max((sp["startTime"] + sp["duration"] for sp in spans), default=0)
        rows.append(f"  {trace.get('traceID', '?'):<32}  {root.get('operationName', '?'):<24} "
                    f"{(end - start) / 1000:>9.1f} ms  {len(spans):>3} spans"
                    f"{'  ERROR' if _has_error(trace) else ''}")
    return rows


def _has_error(trace: dict) -> bool:
    return any(tag.get("key") == "error" and tag.get("value") in (True, "true")
               for span in trace.get("spans", []) for tag in span.get("tags", []))


def _alerts_summary(cfg: LabConfig) -> list[str]:
    try:
        alerts = _get_json(cfg.url("PROMETHEUS_PORT", "/api/v1/alerts"))["data"]["alerts"]
    except LabError as exc:
        return [str(exc)]
    if not alerts:
        return ["no alert pending or firing"]
    return [f"{a['state']:<8} {a['labels'].get('alertname', '?')} "
            f"({a['labels'].get('severity', '-')})" for a in alerts]


def logfmt(text: str) -> dict[str, str]:
    """Grafana's Jaeger tags field (logfmt: key=value key2="quoted value") as a dict."""
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in re.finditer(r'([\w.\-]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))', text)}


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


def parse_overrides(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise LabError(f"--var wants NAME=VALUE, got {pair!r}")
        out[name] = value
    return out


def main(cfg: LabConfig, name: str, list_only: bool = False,
         var: list[str] | None = None) -> int:
    """Print the dashboard; exit status 1 when a panel's query failed."""
    if list_only:
        print(listing())
        return 0
    board = find(name)
    overrides = parse_overrides(var)
    instant_query(cfg.url("PROMETHEUS_PORT"), "vector(1)")  # fail early when Prometheus is down
    views = evaluate(cfg, board, overrides)
    print(render(board, views, overrides))
    return 1 if any(v.errors for v in views) else 0
