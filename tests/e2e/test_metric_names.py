"""Every metric and label value an alert or a dashboard panel selects occurs in the live
/metrics of the component that emits it: no alert that can never fire, no "No data" panel
because of a typo in a label value."""

import json
import re
from collections import defaultdict

import httpx
import pytest
import yaml

from labctl.config import ROOT
from recordstore.catalog import ALBUMS
from tests.helpers import wait_for_order

pytestmark = pytest.mark.stack
# Prometheus job -> the port of the component it scrapes.
SOURCES = {"api": "API_PORT", "worker": "WORKER_METRICS_PORT",
           "rabbitmq": "RABBITMQ_PROMETHEUS_PORT", "postgres": "POSTGRES_EXPORTER_PORT",
           "nginx": "NGINX_EXPORTER_PORT", "alertmanager": "ALERTMANAGER_PORT",
           "prometheus": "PROMETHEUS_PORT"}
SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds",
             "scrape_samples_scraped"}  # made by Prometheus itself, not by a component
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
WORDS = re.compile(r"^[\w/{}-]+(\|[\w/{}-]+)*$")  # no regex metacharacters


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, matcher text) for each `name{...}` in a PromQL expression."""
    found, i = [], 0
    for m in re.finditer(r"(?<![\w:.])([a-zA-Z_][a-zA-Z0-9_:]*)\s*\{", expr):
        if m.start() < i:
            continue
        depth, j, quoted = 1, m.end(), False
        while depth and j < len(expr):
            ch = expr[j]
            if ch == '"' and expr[j - 1] != "\\":
                quoted = not quoted
            elif not quoted:
                depth += {"{": 1, "}": -1}.get(ch, 0)
            j += 1
        if depth:
            break  # unbalanced: the rest of a line of code, not PromQL
        found.append((m.group(1), expr[m.end():j - 1]))
        i = j
    return found


def alert_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out.append((rule.get("alert") or rule["record"], rule["expr"]))
    return out


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []

    def walk(panels, board):
        for panel in panels:
            walk(panel.get("panels", []), board)
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((f"{board} / {panel.get('title')}", target["expr"]))

    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        walk(board.get("panels", []), board["title"])
    return out


def parse_exposition(text: str) -> dict[str, list[dict]]:
    series = defaultdict(list)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(\{(.*?)\})?\s", line)
        if m:
            series[m.group(1)].append(dict(MATCHER.findall(m.group(3) or "") and
                                           [(k, v) for k, _, v in MATCHER.findall(m.group(3))]))
    return series


@pytest.fixture(scope="module")
def live(lab, gateway):
    """Traffic of every kind first, so the label values it produces exist."""
    sold_out = next(i for i, a in enumerate(ALBUMS, 1) if a.stock == 0)
    order = gateway.post("/checkout", json={"product_id": 4, "payment_method": "paypal"}).json()
    gateway.post("/checkout", json={"product_id": 999999})
    gateway.post("/checkout", json={"product_id": sold_out})
    gateway.get("/products", params={"genre": "Soul"})
    gateway.get("/products/4")
    gateway.get(f"/orders/{order['order_id']}")
    wait_for_order(gateway, order["order_id"])
    return {job: parse_exposition(httpx.get(lab.url(port, "/metrics"),
                                            headers={"Accept": "text/plain"}).text)
            for job, port in SOURCES.items()}


PROMQL = re.compile(r"\b(recordstore|http|pg|rabbitmq|up|ALERTS)\w*\{")


def exercise_exprs() -> list[tuple[str, str]]:
    """The PromQL of the exercises: their checks (f-strings unescaped) and their READMEs."""
    out = []
    for path in sorted((ROOT / "exercises").glob("*/check.py")) + [
            ROOT / "scripts" / "labkit" / "checks.py"]:
        source = path.read_text().replace("{{", "{").replace("}}", "}")
        for line in source.splitlines():
            if PROMQL.search(line) and selectors(line):
                out.append((str(path.relative_to(ROOT)), line.strip()))
    for path in sorted((ROOT / "exercises").glob("*/README.md")):
        for snippet in re.findall(r"`([^`\n]+)`", path.read_text()):
            if PROMQL.search(snippet) and selectors(snippet):
                out.append((str(path.relative_to(ROOT)), snippet))
    return out


EXPRS = alert_exprs() + dashboard_exprs() + exercise_exprs()


@pytest.mark.parametrize("where,expr", EXPRS, ids=[w for w, _ in EXPRS])
def test_selected_metrics_and_label_values_exist(live, where, expr):
    for name, matchers in selectors(expr):
        if ":" in name or name in SYNTHETIC:
            continue
        labels = {k: (op, v) for k, op, v in MATCHER.findall(matchers)}
        job = labels.get("job", ("=", None))
        sources = [job[1]] if job[0] == "=" and job[1] in SOURCES else list(SOURCES)
        samples = [s for src in sources for s in live[src].get(name, [])]
        assert samples, f"{where}: {name} is not exported by {', '.join(sources)}"
        for label, (op, value) in labels.items():
            if label == "job" or "$" in value or "{" in value or op not in ("=", "=~"):
                continue
            if op == "=~" and not WORDS.match(value):
                continue  # a real pattern (e.g. 5..), not a list of values
            present = {s.get(label, "") for s in samples}
            for wanted in value.split("|"):
                assert wanted in present, (
                    f"{where}: {name}{{{label}={wanted!r}}} never occurs; seen: {sorted(present)}")


def exercise_metric_names() -> list[str]:
    """Metric names an exercise's README names on their own, in backticks."""
    names = set()
    for path in (ROOT / "exercises").glob("*/README.md"):
        names.update(re.findall(r"`((?:recordstore|http|pg|rabbitmq)_[a-z_]+)`", path.read_text()))
    return sorted(names - {"pg_sleep"})  # the PostgreSQL function exercise 05 shows, no metric


@pytest.mark.parametrize("name", exercise_metric_names())
def test_every_metric_an_exercise_names_is_exported(live, name):
    forms = (name, f"{name}_bucket", f"{name}_total")  # a histogram's or a counter's series
    assert any(n in series for series in live.values() for n in forms), name


def test_the_selector_parser_handles_braces_inside_label_values():
    got = selectors('sum(rate(x{handler="/products/{product_id}",job="api"}[1m])) / y{a="b"}')
    assert got == [("x", 'handler="/products/{product_id}",job="api"'), ("y", 'a="b"')]
