"""The hints of a running game: what the lab's signals say now (never the answer), more pointed
at each of the three levels."""

from gameday.purchase import Outcome, buy, health, pg_up
from labkit.jaeger import HTTP_STATUS, JaegerError, SpanTree
from labkit.probes import Lab
from labkit.questions import busiest
from labkit.shop import Step

LEVELS = ("what a shopper sees", "what the metrics and alerts say",
          "where a purchase's trace points")


def hint(lab: Lab, level: int) -> list[str]:
    """The lines of hint `level` (1..3), read from the lab now."""
    if level == 1:
        browse = lab.shop("gameday").browse()
        got = buy(lab)
        lines = [f"a catalog page answered {browse.error or browse.status} in "
                 f"{browse.latency_ms:.0f} ms",
                 f"a checkout answered {got.checkout.error or got.checkout.status} in "
                 f"{got.checkout.latency_ms:.0f} ms"]
        if got.order:
            reason = got.order.get("failure_reason")
            lines.append(f"its order is {got.status} after {got.waited_s:.1f} s"
                         + (f": {reason}" if reason else ""))
        return lines
    if level == 2:
        firing = sorted({r["metric"]["alertname"] for r in lab.query(
            'ALERTS{alertstate="firing"}')})
        down = sorted({r["metric"].get("job", "?") for r in lab.query("up == 0")})
        status, unhealthy = health(lab)
        queued = lab.value('sum(rabbitmq_queue_messages_ready{queue="orders"})')
        return [f"alerts firing: {', '.join(firing) or 'none (an alert waits for its for:)'}",
                f"Prometheus targets down: {', '.join(down) or 'none'}; "
                f"pg_up is {pg_up(lab)}",
                f"/health answers {status}" + (f", down: {', '.join(unhealthy)}"
                                               if unhealthy else ""),
                "orders waiting in RabbitMQ: " + (f"{queued:.0f}" if queued is not None
                                                  else "unknown (RabbitMQ is not scraped)")]
    browse = lab.shop("gameday").browse()
    got = buy(lab)
    return _catalog_trace(lab, browse) + _purchase_trace(lab, got)


def _catalog_trace(lab: Lab, browse: Step) -> list[str]:
    try:
        raw = lab.jaeger.wait_for_tree(browse.trace_id, lambda t: bool(t.spans), 10)[0] \
            if browse.trace_id else None
    except JaegerError:
        raw = None
    if raw is None:
        return [f"a catalog page answered {browse.error or browse.status}; its trace is not "
                "in the trace store"]
    return [f"a catalog page's trace {browse.trace_id}: {_busiest(raw)}"]


def _purchase_trace(lab: Lab, got: Outcome) -> list[str]:
    trace_id = got.checkout.trace_id
    if not trace_id:
        return [f"a checkout answered {got.checkout.status or got.checkout.error} and "
                f"carried no trace id; grep the logs for {got.checkout.correlation_id}"]
    try:
        tree, _ = lab.jaeger.wait_for_tree(trace_id, lambda t: bool(t.find("checkout_order")) and (
            got.status in ("", "pending") or bool(t.find("process_order"))), timeout_s=10)
    except JaegerError as exc:
        return [f"the trace store did not answer for trace {trace_id}: {exc}"]
    if tree is None:
        return [f"trace {trace_id} has not reached the trace store yet; grep the logs for "
                f"{got.checkout.correlation_id}"]
    lines = [f"trace {trace_id} ({len(tree.spans)} spans; correlation id "
             f"{got.checkout.correlation_id} in the logs)",
             _busiest(tree)]
    errors: dict[str, list[str]] = {}  # the first line of each error, and the spans with it
    for span in tree.errors:
        said = (span.error_message.splitlines() or [""])[0][:160] or (
            f"status {span.tags.get(HTTP_STATUS, '?')}")
        errors.setdefault(said, []).append(f"{span.service.rsplit('-', 1)[-1]} {span.operation}")
    lines += [f"in error: {', '.join(sorted(set(spans)))}: {said}"
              for said, spans in list(errors.items())[:4]]
    return lines


def _busiest(tree: SpanTree) -> str:
    """The span with the most time of its own (not spent in a child span)."""
    span = busiest(tree)
    return (f"the span with the most time of its own is {span.service.rsplit('-', 1)[-1]} "
            f"{span.operation}: {span.self_us / 1000:.0f} of its {span.duration_us / 1000:.0f}"
            " ms")
