"""The questions an exercise's check asks the running lab: `Lab`, one method per probe
(Prometheus, Alertmanager's receiver, Jaeger, the shop, the logs), each returning what it saw
or raising `NotYet`. The steps and the command line that use them are checks.py.
"""

import math
import os
import subprocess
import time
from datetime import datetime
from typing import Any

from . import http
from .jaeger import ORDER_ID, JaegerError, JaegerQuery, SpanTree, build_tree
from .links import API_SERVICE
from .prometheus import Prometheus, PrometheusError
from .rules import FINAL_STATUSES
from .settings import admin_token, lab_home, read_env
from .shop import CHECK_PREFIX, Shop, new_correlation_id

CONTAINERS = "kodekloud-record-store-{service}"
SCRAPE_MARGIN_S = 10


class NotYet(Exception):
    """A step's expected state is not reached; the message says what was seen instead."""


class Lab:
    """The running lab as the checks see it, and the questions they ask it."""

    def __init__(self, *, base_url: str, prometheus_url: str, jaeger_url: str,
                 receiver_url: str, since: float, mode: str) -> None:
        self.base = base_url.rstrip("/")
        self.prometheus = Prometheus(prometheus_url)
        self.jaeger = JaegerQuery(jaeger_url)
        self.receiver = receiver_url.rstrip("/")
        self.since = since
        self.mode = mode
        self.lab_home = lab_home()
        self.memo: dict[str, Any] = {}  # what one step found, for the steps after it
        self.answers: dict[str, str] = {}  # the learner's answers (questions.py)

    # --- Prometheus -------------------------------------------------------------------------
    @property
    def window(self) -> str:
        """The PromQL range from --since until now, e.g. '[125s]', and two scrapes (5 s each)
        before it: increase() needs a sample from before the first change it counts."""
        return f"[{math.ceil(time.time() - self.since) + SCRAPE_MARGIN_S}s]"

    def query(self, expr: str) -> list[dict[str, Any]]:
        try:
            return self.prometheus.query(expr)
        except PrometheusError as exc:
            raise NotYet(f"Prometheus refused {expr}: {exc}") from None

    def value(self, expr: str) -> float | None:
        """The first sample of an instant query (None when it returns nothing)."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def at_least(self, expr: str, minimum: float, what: str) -> str:
        """Holds when the query's value reaches `minimum`; says what it measured."""
        got = self.value(expr) or 0.0
        shown = f"{got:.0f}" if got >= 10 else f"{got:.2g}"  # increase() extrapolates: ~counts
        if got < minimum:
            raise NotYet(f"{what}: {shown} (wanted at least {minimum:g})")
        return f"{what}: {shown}"

    def peak(self, expr: str) -> float | None:
        """The highest value `expr` had in the window (a subquery at the scrape interval)."""
        return self.value(f"max_over_time(({expr}){self.window[:-1]}:5s])")

    def graph(self, expr: str) -> dict[float, float]:
        """`expr`'s first series over the window, a point every 5 s, as a Prometheus graph
        shows it: {Unix time: value}."""
        try:
            series = self.prometheus.query_range(expr, self.since, time.time(), 5)
        except PrometheusError as exc:
            raise NotYet(f"Prometheus refused {expr}: {exc}") from None
        return {float(t): float(v) for s in series[:1] for t, v in s["values"] if v != "NaN"}

    def exemplars(self, expr: str) -> list[dict[str, Any]]:
        """Exemplars of the window: [{"labels": {"trace_id": ...}, "value": ...}, ...]."""
        try:
            return self.prometheus.exemplars(expr, self.since, time.time())
        except PrometheusError as exc:
            raise NotYet(f"Prometheus refused the exemplars of {expr}: {exc}") from None

    def latency_peak(self, handler: str, bound_ms: float) -> str:
        """Holds when the API's p95 latency of `handler`'s successful answers (2xx, over 30 s)
        peaked above `bound_ms`."""
        buckets = (f'http_request_duration_seconds_bucket{{job="api",handler="{handler}",'
                   'status_class="2xx"}')
        p95 = self.peak(f"histogram_quantile(0.95, sum by (le) (rate({buckets}[30s])))") or 0
        if math.isnan(p95):  # the series exists but no request came in the window: 0/0
            p95 = 0.0
        if p95 * 1000 < bound_ms:
            raise NotYet(f"the p95 latency of {handler} peaked at {p95 * 1000:.0f} ms "
                         f"(wanted over {bound_ms:g} ms)")
        return f"the p95 latency of {handler} peaked at {p95 * 1000:.0f} ms"

    def alert_fired(self, name: str) -> str:
        got = self.value(f'max_over_time(ALERTS{{alertname="{name}",alertstate="firing"}}'
                         f'{self.window})')
        if not got:
            raise NotYet(f"{name} has not fired since {self.since_text}")
        return f"{name} fired"

    def alert_not_firing(self, name: str) -> str:
        if self.value(f'ALERTS{{alertname="{name}",alertstate="firing"}}'):
            raise NotYet(f"{name} is still firing")
        return f"{name} is not firing"

    def alert_came_and_went(self, name: str) -> str:
        """Holds when `name` fired in the window, Alertmanager delivered it to the receiver,
        and Prometheus no longer has it pending or firing (resolved after the clean-up)."""
        fired = self.delivered(name)
        if self.value(f'count(ALERTS{{alertname="{name}"}})'):
            raise NotYet(f"{fired}; it has not resolved yet")
        return f"{fired}, and resolved"

    # --- the alert receiver (what Alertmanager delivered) ------------------------------------
    def delivered(self, name: str, status: str = "firing") -> str:
        resp = http.get(f"{self.receiver}/alerts")
        notes = (resp.json() or {}).get("notifications", []) if resp.ok else []
        for note in notes:
            received = datetime.fromisoformat(note["received_at"]).timestamp()
            if received >= self.since and any(
                a.get("alertname") == name and a.get("status") == status
                for a in note.get("alerts", [])
            ):
                return f"{name} ({status}) reached the alert receiver"
        raise NotYet(f"no {status} notification of {name} has reached the receiver")

    # --- Jaeger -------------------------------------------------------------------------------
    def traces(self, service: str = API_SERVICE, operation: str = "",
               tags: dict[str, str] | None = None, min_duration: str = "",
               limit: int = 50) -> list[dict[str, Any]]:
        try:
            return self.jaeger.find_traces(service, tags, limit, operation=operation,
                                           start_us=int(self.since * 1_000_000),
                                           min_duration=min_duration)
        except JaegerError as exc:
            raise NotYet(str(exc)) from None

    def trees(self, **search: Any) -> list[SpanTree]:
        return [build_tree(t) for t in self.traces(**search)]

    def trace_tree(self, trace_id: str) -> SpanTree:
        try:
            raw = self.jaeger.trace(trace_id)
        except JaegerError as exc:
            raise NotYet(str(exc)) from None
        if raw is None:
            raise NotYet(f"Jaeger does not know trace {trace_id}")
        return build_tree(raw)

    # --- the shop and the logs ----------------------------------------------------------------
    def shop(self, prefix: str = CHECK_PREFIX) -> Shop:
        return Shop(self.base, new_correlation_id(prefix))

    def catalog_fast(self, bound_ms: float = 300.0) -> str:
        """Holds when a catalog page answers within `bound_ms`."""
        step = self.shop().browse()
        if not step.ok:
            raise NotYet(f"the catalog answered {step.status or 'nothing'}: {step.error}")
        if step.latency_ms > bound_ms:
            raise NotYet(f"a catalog page took {step.latency_ms:.0f} ms (over {bound_ms:g} ms)")
        return f"a catalog page took {step.latency_ms:.0f} ms"

    def faults_off(self) -> str:
        """Holds when no runtime fault is switched on (asks the admin endpoint, with the lab's
        own token)."""
        token = admin_token({**read_env(), **os.environ})
        resp = http.get(f"{self.base}/admin/chaos", headers={"Authorization": f"Bearer {token}"})
        if not resp.ok:
            raise NotYet(f"the admin endpoint answered {resp.status}")
        active = (resp.json() or {}).get("active") or {}
        if active:
            shown = ", ".join(f"{k}={v:g}" for k, v in sorted(active.items()))
            raise NotYet(f"faults still on: {shown}")
        return "no fault is switched on"

    def api_healthy(self) -> str:
        """Holds when /health answers 200: the API reaches the database and the broker."""
        resp = http.get(f"{self.base}/health")
        if resp.status != 200:
            checks = (resp.json() or {}).get("checks") or {}
            failing = [f"{name} {c.get('status')}" for name, c in checks.items()
                       if c.get("status") != "up"] or ["?"]
            raise NotYet(f"/health answers {resp.status}: {', '.join(failing)}")
        return "/health answers 200"

    def purchase(self, timeout_s: float = 60.0, product_id: int = 1) -> str:
        """A test purchase through the gateway: holds when it is confirmed."""
        shop = self.shop()
        step = shop.checkout(product_id)
        if not step.ok:
            raise NotYet(f"checkout answered {step.status or 'nothing'}: {step.error} "
                         f"(correlation id {step.correlation_id})")
        order_id = step.body["order_id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            order = shop.order(order_id)
            status = order.body.get("status") if order.ok else None
            if status in FINAL_STATUSES:
                if status != "confirmed":
                    raise NotYet(f"test order {order_id} {status}: "
                                 f"{order.body.get('failure_reason')}")
                return f"test order {order_id} confirmed (correlation id {shop.correlation_id})"
            time.sleep(0.5)
        raise NotYet(f"test order {order_id} not final after {timeout_s:g}s")

    def orders_in_traces(self) -> dict[int, str]:
        """Every order a checkout span of the window created, with its status now."""
        ids: set[int] = set()
        for tree in self.trees(operation="checkout_order", limit=1000):
            for span in tree.find("checkout_order"):
                if ORDER_ID in span.tags:
                    ids.add(int(span.tags[ORDER_ID]))
        statuses = {}
        shop = self.shop()
        for order_id in sorted(ids):
            step = shop.order(order_id)
            statuses[order_id] = step.body.get("status") if step.ok else f"error {step.status}"
        return statuses

    def orders_final(self) -> str:
        """Holds when every order a checkout of the window accepted is confirmed or failed."""
        statuses = self.orders_in_traces()
        waiting = {o: s for o, s in statuses.items() if s not in FINAL_STATUSES}
        if waiting:
            shown = ", ".join(f"{o} {s}" for o, s in list(waiting.items())[:5])
            raise NotYet(f"{len(waiting)} of {len(statuses)} order(s) not final yet: {shown}")
        counts = {s: list(statuses.values()).count(s) for s in sorted(set(statuses.values()))}
        return f"{len(statuses)} order(s) accepted, all final: " + (
            ", ".join(f"{n} {s}" for s, n in counts.items()) or "none yet")

    def found(self, key: str, step: int) -> Any:
        """What an earlier step remembered under `key`; NotYet when that step found nothing."""
        if not self.memo.get(key):
            raise NotYet(f"nothing to follow: step {step} found no {key.replace('_', ' ')}")
        return self.memo[key]

    def orders_queue_empty(self) -> str:
        """Holds when RabbitMQ's orders queue holds no message, ready or being worked on."""
        queue = '{job="rabbitmq",queue="orders"}'
        ready = self.value(f"rabbitmq_queue_messages_ready{queue}")
        unacked = self.value(f"rabbitmq_queue_messages_unacked{queue}")
        if ready is None or ready > 0 or (unacked or 0) > 0:
            raise NotYet(f"the orders queue still holds {ready or 0:.0f} ready and "
                         f"{unacked or 0:.0f} unacknowledged message(s)")
        return "the orders queue is empty"

    def was_down(self, up_expr: str, what: str) -> str:
        """Holds when `up_expr` (1 up, 0 down) was 0 at some scrape of the window."""
        got = self.value(f"min_over_time(({up_expr}){self.window[:-1]}:5s])")
        if got is None or got > 0:
            raise NotYet(f"{what} never went down since {self.since_text} ({up_expr} stayed 1)")
        return f"{what} went down ({up_expr} was 0)"

    def is_up(self, up_expr: str, what: str) -> str:
        if self.value(up_expr) != 1:
            raise NotYet(f"{what} is not back yet ({up_expr} is not 1)")
        return f"{what} is up ({up_expr} is 1)"

    def log_lines(self, service: str, needle: str) -> list[str]:
        """A component's log lines that contain `needle` (the log files natively, docker logs
        in compose, kubectl logs on Kubernetes, in the current context's namespace)."""
        if self.mode == "native":
            path = self.lab_home / "logs" / f"{service}.log"
            text = path.read_text(errors="replace") if path.is_file() else ""
        else:
            argv = (["kubectl", "logs", f"deploy/{service}"] if self.mode == "kubernetes"
                    else ["docker", "logs", CONTAINERS.format(service=service)])
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            text = proc.stdout + proc.stderr
        return [line for line in text.splitlines() if needle in line]

    @property
    def since_text(self) -> str:
        return datetime.fromtimestamp(self.since).strftime("%H:%M:%S")
