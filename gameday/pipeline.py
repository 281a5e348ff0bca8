"""How the game day's causes in the telemetry itself show (causes.py): the shop works, and a
signal does not. Standard library only."""

import json
import time
from collections.abc import Callable
from typing import Any

from gameday.purchase import buy, health
from labkit import http
from labkit.jaeger import CORRELATION_ID, JaegerError
from labkit.links import API_SERVICE, WORKER_SERVICE
from labkit.probes import Lab, NotYet


def eventually(probe: Callable[[], str | None], wait_s: float, not_yet: str) -> str:
    """probe() until it returns what it saw; NotYet(not_yet) at the deadline."""
    deadline = time.monotonic() + wait_s
    while not (seen := probe()):
        if time.monotonic() >= deadline:
            raise NotYet(not_yet)
        time.sleep(0.5)
    return seen


def trace_context_lost(lab: Lab) -> str:
    got = buy(lab)
    if got.status != "confirmed":
        raise NotYet(f"a test order is {got.status or got.checkout.error}, not confirmed")
    cid, api_trace = got.checkout.correlation_id, got.checkout.trace_id

    def apart() -> str | None:
        worker = {t["traceID"] for t in lab.traces(service=WORKER_SERVICE,
                                                   tags={CORRELATION_ID: cid})}
        return (f"order {got.order.get('order_id')} is confirmed, but its worker spans are trace "
                f"{sorted(worker - {api_trace})[0]}, not the checkout's {api_trace}"
                ) if worker - {api_trace} else None

    return eventually(apart, 15, f"the worker's spans of {cid} are in the checkout's trace")


def json_line(line: str) -> dict[str, Any]:
    try:
        parsed = json.loads(line)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def log_correlation_lost(lab: Lab) -> str:
    got = buy(lab)
    if got.status != "confirmed":
        raise NotYet(f"a test order is {got.status or got.checkout.error}, not confirmed")
    order_id = got.order.get("order_id")

    def stripped() -> str | None:
        lines = [line for line in map(json_line, lab.log_lines("worker", f'"order_id": '
                                                                  f"{order_id}"))
                 if line.get("order_id") == order_id]
        if lines and all(CORRELATION_ID.rpartition(".")[2] not in line for line in lines):
            return (f"the worker's {len(lines)} log lines of order {order_id} carry "
                    "no correlation_id")
        return None

    return eventually(stripped, 15, "the worker's log lines of a test order carry its "
                       "correlation id")


def trace_backend_down(lab: Lab) -> str:
    try:
        lab.jaeger.services()
    except (http.Unreachable, JaegerError) as exc:
        step = lab.shop("gameday").checkout(1)
        return (f"the trace store does not answer ({exc}) while a checkout answers "
                f"{step.status}")
    raise NotYet("the trace store answers")


def exporter_down(job: str, what: str) -> Callable[[Lab], str]:
    def detect(lab: Lab) -> str:
        if lab.value(f'up{{job="{job}"}}') != 0:
            raise NotYet(f'Prometheus still scrapes {what} (up{{job="{job}"}} is not 0)')
        status, down = health(lab)
        if down:
            raise NotYet(f"/health names {down}: more than {what} is down")
        return (f'up{{job="{job}"}} is 0 while /health answers {status}: the {what} is '
                "down, not what it watches")
    return detect


def cardinality_bomb(lab: Lab) -> str:
    step = lab.shop("gameday").checkout(1)  # a journey of its own: one more series
    if step.status != 202:
        raise NotYet(f"a checkout answered {step.status}")

    def series() -> str | None:
        n = lab.value("count(recordstore_checkout_journeys_total)")
        return (f"Prometheus holds {n:.0f} series of recordstore_checkout_journeys_total, "
                "one per correlation id") if n else None

    return eventually(series, 15, "no series of recordstore_checkout_journeys_total")


def traces_sampled_away(lab: Lab, checkouts: int = 20) -> str:
    """Prometheus counts the checkouts since the game began; the trace store holds the traces
    of few of them. The first look makes `checkouts` of its own (once per `lab`), so that
    there are some to count."""
    if not lab.memo.get("sampled_checkouts"):
        shop = lab.shop("gameday")
        lab.memo["sampled_checkouts"] = [shop.checkout(1 + i % 10).status
                                         for i in range(checkouts)]
    made = lab.value(f'sum(increase(recordstore_checkouts_total{{job="api"}}{lab.window}))'
                     ) or 0.0
    if made < checkouts:
        raise NotYet(f"Prometheus counts {made:.0f} checkouts since {lab.since_text} "
                     f"(wanted {checkouts})")
    kept = len(lab.traces(service=API_SERVICE, operation="POST /checkout", limit=10_000))
    if kept > made / 2:
        raise NotYet(f"the trace store holds {kept} traces of POST /checkout for the "
                     f"{made:.0f} checkouts Prometheus counts since {lab.since_text}")
    return (f"Prometheus counts {made:.0f} checkouts since {lab.since_text}; the trace store "
            f"holds {kept} traces of POST /checkout")
