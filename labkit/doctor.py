"""`./lab doctor`: follow each signal from where it is made to where a learner reads it, and
name the first place it breaks.

One request of its own (GET /products with a correlation id `doctor-...`) is the thing each
signal must carry:

- traces: the API gives the request a trace id (emitter); the trace store answers (backend);
  the request's trace arrives there (stored); the search by correlation id, as the lab's links
  run it, finds it (query);
- metrics: Prometheus answers (backend); it scrapes the API (scrape); the API's request counter
  for /products counts the request (stored); a Service Health panel's query returns data (query);
- logs: the API writes a line carrying the correlation id where `./lab logs api` reads it;
- alerts: Prometheus has its alerting rules loaded and healthy (rules), and sends what fires to
  an Alertmanager (delivery), which hands notifications to the alert receiver (receiver).

A hop is only tried when the ones before it hold: the first failure of a signal is its
diagnosis, and the hops after it are `skipped`. Standard library only.
"""

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from . import http
from .jaeger import CORRELATION_ID, JaegerError, JaegerQuery
from .links import API_SERVICE
from .prometheus import Prometheus, PrometheusError
from .readiness import PANEL_SCRAPES, seconds
from .settings import REPO
from .shop import new_correlation_id

OK, BROKEN, SKIPPED = "ok", "broken", "skipped"
STORED_WITHIN_S = 20.0  # the SDK's batch delay (5 s by default) and the store's write
SCRAPES_TO_WAIT = 3
PANEL_DASHBOARD = REPO / "grafana" / "dashboards" / "service-health.json"
PANEL_METRIC = "http_requests_total"  # the API traffic panel's counter
POLL_S = 0.5


class Broken(Exception):
    """This hop does not hold; the message says what was seen and where to look."""


@dataclass
class Hop:
    signal: str
    hop: str
    status: str  # ok, broken, skipped
    detail: str


def poll(check: Callable[[], object], timeout_s: float, what: str) -> object:
    """check() until it returns something truthy, else Broken(what) at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Broken(what)
        time.sleep(POLL_S)


def panel_query(dashboard: Path = PANEL_DASHBOARD, metric: str = PANEL_METRIC) -> tuple[str, str]:
    """(title, expr) of the first panel whose query reads the API's `metric`: a query a
    learner's dashboard really runs."""
    for panel in json.loads(dashboard.read_text())["panels"]:
        for target in panel.get("targets", []):
            if f'{metric}{{job="api"' in target.get("expr", ""):
                return panel["title"], target["expr"]
    raise LookupError(f"no panel of {dashboard.name} reads {metric}")


class Doctor:
    """The lab's signals, followed hop by hop. `log_lines(service, needle)` reads a component's
    log as the run mode keeps it (labkit.probes.Lab.log_lines)."""

    def __init__(self, base_url: str, prometheus_url: str, jaeger_url: str, receiver_url: str,
                 log_lines: Callable[[str, str], list[str]]) -> None:
        self.base = base_url.rstrip("/")
        self.prometheus = Prometheus(prometheus_url, timeout_s=5.0)
        self.jaeger = JaegerQuery(jaeger_url)
        self.receiver = receiver_url.rstrip("/")
        self.log_lines = log_lines
        self.hops: list[Hop] = []
        self.correlation_id = new_correlation_id("doctor")
        self.trace_id = ""
        self.interval_s = 15.0

    def follow(self, signal: str, hops: list[tuple[str, Callable[[], str]]]) -> None:
        broken = False
        for name, hop in hops:
            if broken:
                self.hops.append(Hop(signal, name, SKIPPED, "after the break above"))
                continue
            try:
                self.hops.append(Hop(signal, name, OK, hop()))
            except (Broken, http.Unreachable, PrometheusError, JaegerError, LookupError) as exc:
                self.hops.append(Hop(signal, name, BROKEN, str(exc)))
                broken = True

    def run(self) -> list[Hop]:
        before = self._counted()
        self.follow("request", [("through the gateway", self.request)])
        made = self.hops[-1].status == OK
        self.follow("traces", [("emitter", self.trace_made), ("backend", self.trace_backend),
                               ("stored", self.trace_stored), ("query", self.trace_found)]
                    if made else [("emitter", self._no_request)])
        self.follow("metrics", [("backend", self.prometheus_ready), ("scrape", self.api_scraped),
                                ("stored", lambda: self.counted(before)),
                                ("query", self.panel_has_data)])
        self.follow("logs", [("emitter", self.logged) if made else ("emitter", self._no_request)])
        self.follow("alerts", [("rules", self.rules_loaded), ("delivery", self.alertmanager),
                               ("receiver", self.receiver_answers)])
        return self.hops

    # --- the request every signal must carry --------------------------------------------------
    def request(self) -> str:
        resp = http.get(f"{self.base}/products?page_size=1",
                        headers={"X-Correlation-ID": self.correlation_id})
        if not resp.ok:
            raise Broken(f"GET {self.base}/products answered {resp.status}: the API or the "
                         "gateway is not healthy (./lab status)")
        self.trace_id = resp.headers.get("x-trace-id", "")
        return f"GET /products, correlation id {self.correlation_id}"

    def _no_request(self) -> str:
        raise Broken("no request reached the API to follow")

    # --- traces -------------------------------------------------------------------------------
    def trace_made(self) -> str:
        if not self.trace_id:
            raise Broken("the API answered without an X-Trace-Id: it traced nothing (is "
                         "OTEL_SDK_DISABLED or OTEL_TRACES_SAMPLER set in its environment?)")
        return f"trace id {self.trace_id}"

    def trace_backend(self) -> str:
        try:
            self.jaeger.services()
        except http.Unreachable as exc:
            raise Broken(f"the trace store does not answer at {self.jaeger.base_url} "
                         f"({exc.reason}): is it running? (./lab status)") from None
        return f"the trace store answers at {self.jaeger.base_url}"

    def trace_stored(self) -> str:
        started = time.monotonic()
        poll(lambda: self.jaeger.trace(self.trace_id), STORED_WITHIN_S,
             f"trace {self.trace_id} did not arrive within {STORED_WITHIN_S:.0f} s: the API's "
             "OTLP exporter does not reach the store (the API's log names the export error; "
             "OTEL_EXPORTER_OTLP_ENDPOINT)")
        return f"arrived within {time.monotonic() - started:.1f} s"

    def trace_found(self) -> str:
        found = self.jaeger.find_traces(API_SERVICE, {CORRELATION_ID: self.correlation_id},
                                        lookback="1h")
        if self.trace_id not in {t.get("traceID") for t in found}:
            raise Broken(f"the search by {CORRELATION_ID}={self.correlation_id} does not find "
                         "it: the span lacks the attribute, or the store does not index tags")
        return f"the search by {CORRELATION_ID} finds it"

    # --- metrics ------------------------------------------------------------------------------
    def prometheus_ready(self) -> str:
        try:
            resp = http.get(f"{self.prometheus.base_url}/-/ready", timeout_s=5)
        except http.Unreachable as exc:
            raise Broken(f"Prometheus does not answer at {self.prometheus.base_url} "
                         f"({exc.reason}): is it running? (./lab status)") from None
        if not resp.ok:
            raise Broken(f"Prometheus at {self.prometheus.base_url} answered {resp.status}")
        return f"Prometheus answers at {self.prometheus.base_url}"

    def api_scraped(self) -> str:
        api = [t for t in self.prometheus.targets() if t["labels"].get("job") == "api"]
        if not api:
            raise Broken("Prometheus has no scrape target of job api (prometheus.yml)")
        self.interval_s = max(seconds(t.get("scrapeInterval", "15s")) for t in api)
        down = [t for t in api if t.get("health") != "up"]
        if down:
            why = down[0].get("lastError") or "not scraped yet"
            raise Broken(f"the api target {down[0].get('scrapeUrl')} is "
                         f"{down[0].get('health')}: {why}")
        return f"{len(api)} api target(s) up, scraped every {self.interval_s:.0f} s"

    def _counted(self) -> float | None:
        try:
            found = self.prometheus.query(f'sum({PANEL_METRIC}{{job="api",handler="/products"}})')
        except (http.Unreachable, PrometheusError):
            return None
        return float(found[0]["value"][1]) if found else 0.0

    def counted(self, before: float | None) -> str:
        base = before or 0.0
        poll(lambda: (self._counted() or 0.0) > base, self.interval_s * SCRAPES_TO_WAIT,
             f"{PANEL_METRIC}{{handler=\"/products\"}} did not rise within {SCRAPES_TO_WAIT} "
             "scrapes: the API does not count its requests (METRICS_ENABLED?)")
        return f"{PANEL_METRIC}{{handler=\"/products\"}} counted it"

    def panel_has_data(self) -> str:
        title, expr = panel_query()
        rate_window = f"{int(self.interval_s * PANEL_SCRAPES)}s"
        if not self.prometheus.query(expr.replace("$__rate_interval", rate_window)):
            raise Broken(f"Service Health's panel {title!r} returns no data: {expr}")
        return f"Service Health's panel {title!r} has data"

    # --- logs ---------------------------------------------------------------------------------
    def logged(self) -> str:
        poll(lambda: self.log_lines("api", self.correlation_id), 10.0,
             f"the API's log has no line with {self.correlation_id} (./lab logs api)")
        return f"the API's log carries {self.correlation_id}"

    # --- alerts -------------------------------------------------------------------------------
    def rules_loaded(self) -> str:
        alerting = [r for r in self.prometheus.rules() if r.get("type") == "alerting"]
        if not alerting:
            raise Broken("Prometheus has no alerting rule loaded (rule_files in prometheus.yml)")
        failing = [r for r in alerting if r.get("health") == "err"]
        if failing:
            raise Broken(f"rule {failing[0]['name']} fails: {failing[0].get('lastError')}")
        return f"{len(alerting)} alerting rules loaded, none failing"

    def alertmanager(self) -> str:
        managers = self.prometheus.alertmanagers()
        if not managers:
            raise Broken("Prometheus sends its alerts to no Alertmanager (the alerting section "
                         "of prometheus.yml)")
        # Configured is not reachable: Prometheus's own scrape of it says whether it answers.
        up = self.prometheus.query('max(up{job="alertmanager"})')
        if not up or float(up[0]["value"][1]) != 1:
            raise Broken(f"Prometheus sends alerts to {', '.join(managers)}, but it does not "
                         'answer (up{job="alertmanager"} is not 1): is it running?')
        return f"Prometheus sends alerts to {', '.join(managers)}, which answers"

    def receiver_answers(self) -> str:
        resp = http.get(f"{self.receiver}/alerts", timeout_s=5)
        if not resp.ok:
            raise Broken(f"the alert receiver at {self.receiver} answered {resp.status}")
        return f"the alert receiver answers at {self.receiver}"


def report(hops: list[Hop]) -> list[str]:
    marks = {OK: "ok", BROKEN: "BROKEN", SKIPPED: "skipped"}
    lines = [f"{h.signal:<8} {h.hop:<20} {marks[h.status]:<8} {h.detail}" for h in hops]
    first = {}
    for h in hops:
        if h.status == BROKEN:
            first.setdefault(h.signal, h)
    if first:
        lines.append("")
        lines += [f"{s} breaks at its {h.hop}: {h.detail}" for s, h in first.items()]
    else:
        lines.append("\nevery signal arrives where a learner reads it")
    return lines


def as_json(hops: list[Hop]) -> str:
    return json.dumps({"ok": all(h.status == OK for h in hops),
                       "hops": [asdict(h) for h in hops]}, indent=2)
