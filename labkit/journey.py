"""One traced purchase through the gateway, as trace_purchase_journey.py prints it.

A shopper's steps (browse the catalog, view an album, check out, poll the order until it is
confirmed or failed), each with its latency; then the purchase's trace from the Jaeger query
API as a waterfall, the user-facing versus end-to-end time, and where to look next.
"""

import argparse
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import http, jaeger, links, rules, waterfall
from .output import JOURNEY_FAILED, OK, UNREACHABLE, say, write_json
from .rules import FINAL_STATUSES
from .shop import Shop, Step, new_correlation_id

# The worker operations the waterfall's time breakdown names, in the lab's guide's words.
BREAKDOWN_OPERATIONS = ["authorize_payment", "reserve_stock", "send_email"]
ORDER_POLL_S = 0.5


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class Journey:
    """One shopper's purchase, step by step, printed as it goes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.cid = args.correlation_id or new_correlation_id()
        self.shop = Shop(args.base_url, self.cid)
        self.steps: list[tuple[str, Step, str]] = []  # (label, step, result text)
        self.order: dict[str, Any] | None = None
        self.checkout: Step | None = None

    def run(self) -> None:
        say(f"Purchase journey through {self.args.base_url}")
        say(f"  correlation id  {self.cid}   (sent as X-Correlation-ID on every request)")
        say()
        say(f"  {'step':<22} {'request':<36} {'status':>6} {'latency':>10}  result")
        product_id = self._browse()
        if product_id is None:
            return
        if self._view(product_id) and self._checkout(product_id):
            self._wait_for_order()

    def _record(self, label: str, step: Step, result: str) -> Step:
        if step.error:
            kind = step.error.split(" ", 1)[1] if step.status else step.error  # status has a column
            result = kind + (f": {step.detail}" if step.detail else "")
        status = str(step.status or "-")
        latency = f"{step.latency_ms:.1f} ms" if step.status else "-"
        request = f"{step.method} {step.path}"
        say(f"  {label:<22} {request[:36]:<36} {status:>6} {latency:>10}  {result}")
        self.steps.append((label, step, result))
        return step

    def _browse(self) -> int | None:
        step = self.shop.browse(page_size=12)
        body = step.body if step.ok and isinstance(step.body, dict) else {}
        items = body.get("items") or []
        self._record("1 browse the catalog", step,
                     f"{len(items)} of {body.get('total', '?')} albums, "
                     f"{len(body.get('genres') or [])} genres")
        if step.status == 0:
            return None
        if self.args.product_id:
            return self.args.product_id
        in_stock = [i for i in items if int(i.get("stock", 0)) >= self.args.quantity]
        # With the catalog unreadable, try album 1, to show how checkout fails too.
        return int(self.rng.choice(in_stock)["id"]) if in_stock else 1

    def _view(self, product_id: int) -> bool:
        step = self.shop.view(product_id)
        album = step.body if step.ok and isinstance(step.body, dict) else {}
        result = (f"\"{album.get('title')}\" by {album.get('artist')}, "
                  f"{money(int(album.get('price_cents', 0)))}, {album.get('stock')} in stock"
                  if album else "")
        self._record("2 view an album", step, result)
        return step.status != 0

    def _checkout(self, product_id: int) -> bool:
        step = self.shop.checkout(product_id, self.args.quantity, self.args.email,
                                  self.args.payment_method)
        self.checkout = step
        body = step.body if step.status == 202 and isinstance(step.body, dict) else {}
        result = (f"order {body.get('order_id')} {body.get('status')}, "
                  f"{money(int(body.get('total_cents', 0)))}" if body else "")
        self._record("3 check out", step, result)
        return bool(body)

    def _wait_for_order(self) -> None:
        assert self.checkout is not None
        order_id = int(self.checkout.body["order_id"])
        seen: list[str] = []
        polls = 0
        started = time.monotonic()
        deadline = started + self.args.order_timeout
        while True:
            step = self.shop.order(order_id)
            polls += 1
            if step.ok and isinstance(step.body, dict):
                self.order = step.body
                status = str(step.body.get("status"))
                if not seen or seen[-1] != status:
                    seen.append(status)
                if status in FINAL_STATUSES:
                    break
            elif step.status in (0, 502, 503, 504):
                pass  # a dependency blinked: a waiting customer reloads the page
            else:
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(ORDER_POLL_S)
        step.latency_ms = (time.monotonic() - started) * 1000  # the wait, not the last poll
        result = " -> ".join(["pending", *[s for s in seen if s != "pending"]])
        if self.order and self.order.get("failure_reason"):
            result += f" ({self.order['failure_reason']})"
        elif not self.order or self.order.get("status") not in FINAL_STATUSES:
            result += f"; not final after {self.args.order_timeout:g} s"
        self._record("4 wait for the order", step, f"{result}   ({polls} polls)")

    @property
    def trace_id(self) -> str:
        if self.checkout is None:
            return ""
        body = self.checkout.body if isinstance(self.checkout.body, dict) else {}
        return str(body.get("trace_id") or self.checkout.trace_id or "")

    @property
    def errors(self) -> list[Step]:
        return [step for _, step, _ in self.steps if step.error]

    @property
    def outcome(self) -> str:
        if self.order:
            return str(self.order.get("status"))
        return "no order" if self.steps and self.steps[0][1].status else "unreachable"

    def exit_status(self) -> int:
        if self.outcome == "unreachable":
            return UNREACHABLE
        return OK if self.outcome == "confirmed" and not self.errors else JOURNEY_FAILED

    def report_outcome(self) -> None:
        say()
        if self.outcome == "unreachable":
            first = self.steps[0][1]
            say(f"  outcome     nothing answered at {self.args.base_url} ({first.error}).")
            say("              Is the lab up?  ./lab up  (native)  or  docker compose up -d")
            return
        order = self.order or {}
        if self.outcome == "confirmed":
            stamps = order.get("timestamps") or {}
            e2e = _seconds_between(stamps.get("pending"), stamps.get("confirmed"))
            say(f"  outcome     confirmed: order {order.get('order_id')}, "
                f"{e2e:.1f} s from created to confirmed")
        elif self.outcome == "failed":
            say(f"  outcome     FAILED: order {order.get('order_id')}: "
                f"{order.get('failure_reason')}")
        elif self.order:
            say(f"  outcome     NOT FINAL: order {order.get('order_id')} is still "
                f"{order.get('status')} after {self.args.order_timeout:g} s")
        else:
            say("  outcome     FAILED: no order was placed")
        if not self.trace_id:
            say("  trace id    (none: the checkout answer carried no trace id)")
        else:
            note = "" if self.order else "   (the refused checkout's)"
            say(f"  trace id    {self.trace_id}{note}")
        if self.errors:
            say()
            say(f"  {len(self.errors)} request(s) answered with an error; each with the "
                "correlation id to grep the logs for:")
            for step in self.errors:
                say(f"    {step.method + ' ' + step.path:<40} {step.error:<28} correlation id "
                    f"{step.correlation_id}")

    def results(self) -> dict[str, Any]:
        return {
            "correlation_id": self.cid, "trace_id": self.trace_id, "outcome": self.outcome,
            "order": self.order,
            "steps": [{"step": label, "request": f"{s.method} {s.path}", "status": s.status,
                       "latency_ms": round(s.latency_ms, 1), "correlation_id": s.correlation_id,
                       "trace_id": s.trace_id, "error": s.error, "result": result}
                      for label, s, result in self.steps],
        }


def _seconds_between(start: str | None, end: str | None) -> float:
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def trace_ready(order: dict[str, Any] | None) -> Callable[[jaeger.SpanTree], bool]:
    """When the trace holds what this journey produced: no span is waiting for its parent,
    and the worker's last task has arrived (for an accepted order)."""
    status = (order or {}).get("status")
    last = {"confirmed": "send_order_confirmation", "failed": "process_order"}.get(status)

    def ready(tree: jaeger.SpanTree) -> bool:
        if not tree.spans or tree.orphans:
            return False
        if order is None:
            return True  # a refused checkout: the API's spans are all there is
        if last is None:
            return links.WORKER_SERVICE in tree.services
        return bool(tree.find(last, links.WORKER_SERVICE))
    return ready


def show_trace(journey: Journey, args: argparse.Namespace) -> dict[str, Any] | None:
    trace_id = journey.trace_id
    if not trace_id:
        return None
    say()
    query = jaeger.JaegerQuery(args.jaeger_url)
    waiting_for = "the worker's spans" if journey.order else "the API's spans"
    say(f"Reading trace {trace_id} from {args.jaeger_url} "
        f"(waiting up to {args.trace_timeout:g} s for {waiting_for})")
    started = time.monotonic()
    try:
        tree, complete = query.wait_for_tree(trace_id, trace_ready(journey.order),
                                             args.trace_timeout)
    except (http.Unreachable, jaeger.JaegerError) as exc:
        say(f"  could not read the trace: {exc}")
        return None
    if tree is None:
        say(f"  the trace did not arrive within {args.trace_timeout:g} s")
        return None
    services = ", ".join(sorted(rules.short_service(s) for s in tree.services))
    state = (f"complete after {time.monotonic() - started:.1f} s" if complete else
             f"INCOMPLETE after {args.trace_timeout:g} s: spans may still be arriving")
    say(f"  {len(tree.spans)} spans from {services}; {state}")
    say()
    for line in waterfall.render(tree):
        say("  " + line)
    summary = {"spans": len(tree.spans), "services": sorted(tree.services), "complete": complete}
    if journey.order is None:
        return summary  # a refused checkout: no background work to break down
    say()
    say("Where the time went")
    b = waterfall.breakdown(tree, BREAKDOWN_OPERATIONS)
    client_ms = journey.checkout.latency_ms if journey.checkout else None
    root = tree.roots[0].operation if tree.roots else "the request"
    for line in waterfall.render_breakdown(b, root, client_ms):
        say(line)
    return {**summary, "user_facing_ms": round(b.user_facing_us / 1000, 1),
            "end_to_end_ms": round(b.end_to_end_us / 1000, 1)}


def where_next(args: argparse.Namespace, cid: str, trace_id: str) -> None:
    mode = links.hint_mode(args.mode)
    say()
    say(f"Where to look next ({mode} mode)")
    for what, where in links.next_steps(mode, args.jaeger_url, args.grafana_url, cid, trace_id):
        say(f"  {what:<52} {where}")


def run_journey(args: argparse.Namespace) -> int:
    journey = Journey(args)
    journey.run()
    journey.report_outcome()
    if journey.outcome == "unreachable":
        return journey.exit_status()
    trace = show_trace(journey, args)
    where_next(args, journey.cid, journey.trace_id)
    if args.json:
        write_json(args.json, {**journey.results(), "trace": trace})
    return journey.exit_status()
