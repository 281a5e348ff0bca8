"""Every metric and label value an alert, a dashboard panel or an exercise selects occurs in the
live /metrics of the component that emits it: no alert that can never fire, no "No data" panel
because of a typo in a label value.

Presence is not enough for the lab's own processes: the API and the worker create their label
values at 0 on start-up (so that a panel shows 0), and a value no code path ever counts would
pass. So a second test drives TRAFFIC, real events of every kind (a purchase, a declined
payment, a refused email, a malformed message, a stopped database, a stopped broker), and
requires each value selected from the API's and the worker's series to have counted at least
one of them. A value that needs an event no recipe makes fails it: add a recipe to TRAFFIC
(or, for a value no traffic can make, an entry to NOT_MADE_BY_TRAFFIC with the reason)."""

import json
import re
from collections import defaultdict

import httpx
import pytest
import yaml

from labctl.config import ROOT
from recordstore.broker import PROCESS_ORDER, create_celery
from recordstore.catalog import ALBUMS
from recordstore.config import get_settings
from tests.helpers import lab_command, metric_sum, wait_for, wait_for_order

pytestmark = pytest.mark.stack
# Prometheus job -> the port of the component it scrapes.
SOURCES = {"api": "API_PORT", "worker": "WORKER_METRICS_PORT",
           "rabbitmq": "RABBITMQ_PROMETHEUS_PORT", "postgres": "POSTGRES_EXPORTER_PORT",
           "nginx": "NGINX_EXPORTER_PORT", "alertmanager": "ALERTMANAGER_PORT",
           "prometheus": "PROMETHEUS_PORT", "rabbitmq-queues": "RABBITMQ_PROMETHEUS_PORT"}
PATHS = {"rabbitmq-queues": "/metrics/detailed?family=queue_metrics"}  # else /metrics
# Exported only while a message waits in a queue (RabbitMQ reports no head-message timestamp
# of an empty one): the traffic test's orders_waiting recipe proves them, not a quiet scrape.
ONLY_WITH_A_BACKLOG = {"rabbitmq_detailed_queue_head_message_timestamp"}
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
    """name -> the labels of each of its samples, the sample's value under the key VALUE."""
    series = defaultdict(list)
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][\w:]*)(\{(.*?)\})?\s+(\S+)", line)
        if m:
            labels = {k: v for k, _, v in MATCHER.findall(m.group(3) or "")}
            series[m.group(1)].append({**labels, VALUE: float(m.group(4))})
    return series


VALUE = " value"  # no label can be named so


def scrape_job(lab, job: str) -> dict[str, list[dict]]:
    return parse_exposition(httpx.get(lab.url(SOURCES[job], PATHS.get(job, "/metrics")),
                                      headers={"Accept": "text/plain"}).text)


def scrape(lab) -> dict[str, dict[str, list[dict]]]:
    return {job: scrape_job(lab, job) for job in SOURCES}


# ------------------------------------------------------------------ traffic: real events


def purchases(lab, gateway) -> None:
    """A purchase confirmed, an unknown album, a sold-out one, the catalog, an order's page."""
    sold_out = next(i for i, a in enumerate(ALBUMS, 1) if a.stock == 0)
    order = gateway.post("/checkout", json={"product_id": 4, "payment_method": "paypal"}).json()
    gateway.post("/checkout", json={"product_id": 999999})
    gateway.post("/checkout", json={"product_id": sold_out})
    gateway.get("/products", params={"genre": "Soul"})
    gateway.get("/products/4")
    gateway.get(f"/orders/{order['order_id']}")
    wait_for_order(gateway, order["order_id"])


def worker_count(lab, name: str, **labels: str) -> float:
    return metric_sum(httpx.get(lab.url("WORKER_METRICS_PORT", "/metrics")).text, name, **labels)


def with_faults(lab, *faults: str):
    lab_command(lab, "chaos", "set", *faults)
    return lambda: lab_command(lab, "chaos", "reset")


def declined_payment(lab, gateway) -> None:
    reset = with_faults(lab, "payment_failure_rate=1")
    try:
        order = gateway.post("/checkout", json={"product_id": 4}).json()
        assert wait_for_order(gateway, order["order_id"])["status"] == "failed"
    finally:
        reset()


def refused_email(lab, gateway) -> None:
    """The confirmation is retried, then dead-lettered: the mail server refuses every one."""
    before = worker_count(lab, "recordstore_celery_tasks_total",
                          task="send_order_confirmation", state="dead_lettered")
    reset = with_faults(lab, "email_failure_rate=1")
    try:
        gateway.post("/checkout", json={"product_id": 4})
        wait_for(lambda: worker_count(lab, "recordstore_celery_tasks_total",
                                      task="send_order_confirmation",
                                      state="dead_lettered") > before,
                 60, "the refused confirmation to be dead-lettered")
    finally:
        reset()


def malformed_message(lab, gateway) -> None:
    """A message no order can come of (a poison message): process_order cannot run it."""
    def ended() -> float:
        return worker_count(lab, "recordstore_celery_tasks_total", task=PROCESS_ORDER)

    before = ended()
    create_celery(get_settings()).send_task(PROCESS_ORDER, args=["not-an-order-id"])
    wait_for(lambda: ended() > before, 30, "the malformed message's run to end")


def database_stopped(lab, gateway) -> None:
    lab_command(lab, "stop", "db")
    try:
        assert gateway.post("/checkout", json={"product_id": 4}).status_code == 503
    finally:
        lab_command(lab, "start", "db")
    wait_for(lambda: gateway.get("/health").status_code == 200, 60, "the lab healthy again")


def statement_timed_out(lab, gateway) -> None:
    """A catalog query past the statement timeout: 504 database_timeout, the database up."""
    reset = with_faults(lab, f"slow_query_ms={lab.env.get('DB_STATEMENT_TIMEOUT_MS', '5000')}")
    try:
        assert gateway.get("/products").status_code == 504
    finally:
        reset()


def pool_exhausted(lab, gateway) -> None:
    """A checkout waiting for a connection of a pool the fault holds: 503 database_busy."""
    reset = with_faults(lab, "db_pool_exhaustion=1")
    try:
        wait_for(lambda: gateway.post("/checkout", json={"product_id": 4}).status_code == 503,
                 30, "a checkout refused by the exhausted pool")
    finally:
        reset()


def broker_stopped(lab, gateway) -> None:
    """A checkout accepted while the broker is down: published late, by the outbox relay."""
    lab_command(lab, "stop", "rabbitmq")
    try:
        order = gateway.post("/checkout", json={"product_id": 4})
        assert order.status_code == 202, order.text
    finally:
        lab_command(lab, "start", "rabbitmq")
    wait_for_order(gateway, order.json()["order_id"], timeout_s=90)


def orders_waiting(lab, gateway) -> None:
    """An order waiting in the orders queue with the worker stopped: RabbitMQ reports its
    head-message timestamp (the outbox stamps each message) while it waits."""
    lab_command(lab, "stop", "worker")
    try:
        assert gateway.post("/checkout", json={"product_id": 4}).status_code == 202
        def stamped() -> dict[str, list[dict]] | None:  # the worker is down: this job only
            queues = scrape_job(lab, "rabbitmq-queues")
            return queues if any(s.get("queue") == "orders" for s in queues.get(
                "rabbitmq_detailed_queue_head_message_timestamp", [])) else None

        WAITING.update(wait_for(stamped, 30, "the orders queue's head-message timestamp"))
    finally:
        lab_command(lab, "start", "worker")


WAITING: dict[str, list[dict]] = {}  # what the queues' scrape said while an order waited
# Every kind of event the selected label values count. To count a new one, add its recipe.
# orders_waiting first: it restarts the worker, whose counters start again from 0.
TRAFFIC = [orders_waiting, purchases, declined_payment, refused_email, malformed_message,
           database_stopped, statement_timed_out, pool_exhausted, broker_stopped]
# (metric, label, value) an alert or a panel selects that no traffic can make, and why.
NOT_MADE_BY_TRAFFIC: dict[tuple[str, str, str], str] = {
    ("recordstore_database_errors_total", "reason", "conflict"):
        "a deadlock or serialization failure needs two transactions racing on purpose; "
        "tests/integration/test_database_errors.py makes both in PostgreSQL",
}
# The jobs whose label values the lab creates at 0 on start-up (recordstore.metrics): for
# them, present is not enough. The other components' series appear with what they measure.
COUNTED_JOBS = ("api", "worker")
NOT_EVENTS = {"le"}  # a histogram's bucket bound: every bucket exists from the first observation


@pytest.fixture(scope="module")
def live(lab, gateway):
    """Traffic first, so the label values it produces exist."""
    purchases(lab, gateway)
    return scrape(lab)


PROMQL = re.compile(r"\b(recordstore|http|pg|rabbitmq|up|ALERTS)\w*\{")


def exercise_exprs() -> list[tuple[str, str]]:
    """The PromQL of the exercises: their checks (f-strings unescaped) and their READMEs."""
    out = []
    for path in sorted((ROOT / "exercises").glob("*/check.py")) + [
            ROOT / "labkit" / "checks.py"]:
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


def selections(expr: str):
    """(metric name, the jobs it may come from, [(label, op, value)]) for each selector."""
    for name, matchers in selectors(expr):
        if ":" in name or name in SYNTHETIC:
            continue
        labels = {k: (op, v) for k, op, v in MATCHER.findall(matchers)}
        job = labels.get("job", ("=", None))
        sources = [job[1]] if job[0] == "=" and job[1] in SOURCES else list(SOURCES)
        yield name, sources, [(k, op, v) for k, (op, v) in labels.items()
                              if k != "job" and "$" not in v and op in ("=", "=~")]


def wanted_values(op: str, value: str) -> list[str] | re.Pattern:
    """The values a matcher names one by one, or the pattern of a real regex (e.g. 5..)."""
    if op == "=~" and not WORDS.match(value):
        return re.compile(value)
    return value.split("|") if op == "=~" else [value]


@pytest.mark.parametrize("where,expr", EXPRS, ids=[w for w, _ in EXPRS])
def test_selected_metrics_and_label_values_exist(live, where, expr):
    for name, sources, matchers in selections(expr):
        if name in ONLY_WITH_A_BACKLOG:
            continue  # test_the_backlog_only_metrics_exist_while_orders_wait
        samples = [s for src in sources for s in live[src].get(name, [])]
        assert samples, f"{where}: {name} is not exported by {', '.join(sources)}"
        for label, op, value in matchers:
            wanted = wanted_values(op, value)
            if isinstance(wanted, re.Pattern) or "{" in value:
                continue  # a pattern, or a route template inside a value
            present = {s.get(label, "") for s in samples}
            for one in wanted:
                assert one in present, (
                    f"{where}: {name}{{{label}={one!r}}} never occurs; seen: {sorted(present)}")


@pytest.fixture(scope="module")
def after_traffic(lab, gateway):
    for recipe in TRAFFIC:
        recipe(lab, gateway)
    return scrape(lab)


def uncounted(exprs: list[tuple[str, str]], scraped: dict[str, dict[str, list[dict]]],
              ) -> list[str]:
    """Each label value the expressions select from COUNTED_JOBS whose samples are all 0 (in
    every job the selector may mean: one that names no job is counted by either)."""
    found = set()
    for where, expr in exprs:
        for name, sources, matchers in selections(expr):
            samples = [s for src in sources if src in COUNTED_JOBS
                       for s in scraped[src].get(name, [])]
            for label, op, value in matchers:
                if label in NOT_EVENTS or not samples:
                    continue  # a metric not exported at all fails the presence test
                wanted = wanted_values(op, value)
                counted = {s.get(label, "") for s in samples if s[VALUE] > 0}
                if isinstance(wanted, re.Pattern):
                    missing = [] if any(wanted.fullmatch(v) for v in counted) else [value]
                else:
                    missing = [v for v in wanted if v not in counted]
                found |= {f"{name}{{{label}={v!r}}} ({where})" for v in missing
                          if (name, label, v) not in NOT_MADE_BY_TRAFFIC}
    return sorted(found)


@pytest.mark.disruptive  # it stops the database and switches faults on for everyone
def test_each_selected_label_value_counted_real_events(lab, after_traffic):
    """Not only created at 0 on start-up: counted by an event of TRAFFIC, in the API or the
    worker. One failure lists every value no event counted."""
    missing = uncounted(EXPRS, after_traffic)
    assert not missing, "selected, but no event of TRAFFIC counted them:\n  " + "\n  ".join(
        missing)


@pytest.mark.disruptive
def test_the_backlog_only_metrics_exist_while_orders_wait(after_traffic):
    """What a quiet scrape cannot show: each, labelled by the orders queue, while an order
    waited (the orders_waiting recipe), and each an exercise or a rule names."""
    named = set(exercise_metric_names()) | {name for _, expr in EXPRS
                                            for name, _, _ in selections(expr)}
    assert named >= ONLY_WITH_A_BACKLOG, "a backlog-only metric nothing names: drop it"
    for name in ONLY_WITH_A_BACKLOG:
        assert any(s.get("queue") == "orders" for s in WAITING.get(name, [])), (name, WAITING)


def test_a_value_only_created_at_zero_is_reported():
    """The check can fail: a value that exists at 0 (as start-up makes it) is uncounted."""
    text = ('recordstore_checkouts_total{outcome="accepted"} 2.0\n'
            'recordstore_checkouts_total{outcome="database_unavailable"} 0.0\n'
            'http_requests_total{handler="/checkout",status="202"} 2.0\n')
    scraped = {"api": parse_exposition(text), "worker": {}}
    exprs = [("panel", 'sum(recordstore_checkouts_total{job="api",outcome=~"accepted|'
                       'database_unavailable"})'),
             ("alert", 'sum(rate(http_requests_total{job="api",status=~"5.."}[1m]))')]
    assert uncounted(exprs, scraped) == [
        "http_requests_total{status='5..'} (alert)",
        "recordstore_checkouts_total{outcome='database_unavailable'} (panel)"]


def exercise_metric_names() -> list[str]:
    """Metric names an exercise's README names on their own, in backticks."""
    names = set()
    for path in (ROOT / "exercises").glob("*/README.md"):
        names.update(re.findall(r"`((?:recordstore|http|pg|rabbitmq)_[a-z_]+)`", path.read_text()))
    # PostgreSQL's own names the exercises show, no metrics: the function 05's fault runs, the
    # view of the sessions 08 reads with psql.
    return sorted(names - {"pg_sleep", "pg_stat_activity"})


@pytest.mark.parametrize("name", exercise_metric_names())
def test_every_metric_an_exercise_names_is_exported(live, name):
    if name in ONLY_WITH_A_BACKLOG:
        return  # test_the_backlog_only_metrics_exist_while_orders_wait
    forms = (name, f"{name}_bucket", f"{name}_total")  # a histogram's or a counter's series
    assert any(n in series for series in live.values() for n in forms), name


def test_the_selector_parser_handles_braces_inside_label_values():
    got = selectors('sum(rate(x{handler="/products/{product_id}",job="api"}[1m])) / y{a="b"}')
    assert got == [("x", 'handler="/products/{product_id}",job="api"'), ("y", 'a="b"')]
