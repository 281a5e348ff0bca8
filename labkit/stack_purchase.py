"""scripts/check_stack.py's end-to-end check: one test purchase through the gateway, confirmed,
and its one trace in Jaeger with the spans of every service that should be in it."""

import time

from . import http
from .jaeger import JaegerError, JaegerQuery, SpanTree
from .rules import FINAL_STATUSES, short_service
from .shop import CHECK_PREFIX, Shop, new_correlation_id
from .stack_report import FAIL, OK, REQUEST_TIMEOUT_S, Report, poll


def test_purchase(report: Report, base: str, timeout_s: float) -> tuple[str, str] | None:
    """(correlation id, trace id) of one confirmed purchase through the gateway, or None."""
    cid = new_correlation_id(f"{CHECK_PREFIX}-stack")
    shop = Shop(base, cid, timeout_s=REQUEST_TIMEOUT_S * 2)
    listing = shop.browse(page_size=50)
    items = (listing.body or {}).get("items", []) if isinstance(listing.body, dict) else []
    in_stock = [p for p in items if p.get("stock", 0) > 0]
    if not listing.ok or not in_stock:
        report.add("purchase", "an album in stock", FAIL, listing.error or "none in stock")
        return None
    started = time.monotonic()
    checkout = shop.checkout(in_stock[0]["id"])
    body = checkout.body if isinstance(checkout.body, dict) else {}
    if checkout.status != 202 or "order_id" not in body:
        report.add("purchase", "POST /checkout", FAIL, checkout.error or str(checkout.status))
        return None
    order_id, trace_id = body["order_id"], body.get("trace_id") or checkout.trace_id
    report.add("purchase", "POST /checkout accepted", OK,
               f"order {order_id}, correlation id {cid}")

    def final() -> str | None:
        status = (shop.order(order_id).body or {}).get("status")
        return status if status in FINAL_STATUSES else None

    status = poll(final, timeout_s)
    took = time.monotonic() - started
    if status != "confirmed":
        report.add("purchase", f"order {order_id} confirmed", FAIL,
                   f"{status or 'not final'} after {took:.1f} s")
        return None
    report.add("purchase", f"order {order_id} confirmed", OK, f"in {took:.1f} s")
    return cid, trace_id


def check_trace(report: Report, jaeger: str, trace_id: str, services: list[str],
                timeout_s: float) -> None:
    query = JaegerQuery(jaeger, timeout_s=REQUEST_TIMEOUT_S)

    def complete(tree: SpanTree) -> bool:
        return set(services) <= tree.services and not tree.orphans

    try:
        tree, ready = query.wait_for_tree(trace_id, complete, timeout_s)
    except (JaegerError, http.Unreachable) as exc:
        report.add("jaeger", f"trace {trace_id}", FAIL, str(exc)[:160])
        return
    found = sorted(tree.services) if tree else []
    missing = [s for s in services if s not in found]
    report.add("jaeger", "one trace through " + ", ".join(short_service(s) for s in services),
               OK if not missing else FAIL,
               f"{len(tree.spans)} spans, trace {trace_id}" if tree and not missing
               else f"missing {', '.join(missing)}; has {', '.join(found) or 'nothing'}")
    try:
        known = set(query.services())
    except (JaegerError, http.Unreachable) as exc:
        report.add("jaeger", "knows the services", FAIL, str(exc)[:160])
        return
    missing = [s for s in services if s not in known]
    report.add("jaeger", "knows the services", OK if not missing else FAIL,
               ", ".join(sorted(known)) if not missing else f"missing {', '.join(missing)}")



