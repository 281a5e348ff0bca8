"""The provisioned Grafana dashboards' JSON (grafana/dashboards/): panels, their targets, the
variables and the queries with the variables filled in, as Grafana would. Standard library only.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

from labctl.config import ROOT
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
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


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


def uid(ref: object) -> str | None:
    return ref.get("uid") if isinstance(ref, dict) else None


def is_prometheus(panel: dict) -> bool:
    return any(prometheus_targets(panel))


def prometheus_targets(panel: dict) -> list[dict]:
    """The panel's targets that Prometheus answers (own datasource, or the panel's)."""
    panel_uid = uid(panel.get("datasource"))
    return [t for t in panel.get("targets", [])
            if (uid(t.get("datasource")) or panel_uid) == PROMETHEUS_UID and t.get("expr")]


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


def logfmt(text: str) -> dict[str, str]:
    """Grafana's Jaeger tags field (logfmt: key=value key2="quoted value") as a dict."""
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in re.finditer(r'([\w.\-]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))', text)}


def parse_overrides(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise LabError(f"--var wants NAME=VALUE, got {pair!r}")
        out[name] = value
    return out
