"""Game day: one hidden fault, to be found from the signals (`./lab gameday`, exercise 09).

What is here is what both `./lab gameday` and exercise 09's check need, standard library only:
the pick of a cause from a seed (the causes, and how each shows in the lab's own signals, are
gameday_causes.py), graded hints read from the signals (never from the answer), the grading,
and the record of the games played (`gameday.json` in the lab's home). labctl/gameday.py
switches the faults on and off.
"""

import json
import random
from pathlib import Path
from typing import Any

from .gameday_causes import BY_CAUSE, CAUSES, Cause, Outcome, buy, health, pg_up
from .jaeger import HTTP_STATUS, JaegerError, SpanTree
from .probes import Lab
from .shop import Step

__all__ = ["BY_CAUSE", "CAUSES", "Cause", "cause", "grade", "hint", "load", "pick", "save"]

RECORD = "gameday.json"
HINT_LEVELS = ("what a shopper sees", "what the metrics and alerts say",
               "where a purchase's trace points")


def pick(seed: int) -> Cause:
    """The cause a seed picks: the same one for the same seed, on every machine."""
    return random.Random(seed).choice(CAUSES)


def seed_for(name: str) -> int:
    """The smallest seed that picks the cause `name`."""
    return next(s for s in range(10_000) if pick(s).name == name)


def cause(answer: str) -> Cause:
    """The cause an answer names (any case); ValueError listing the causes otherwise."""
    found = BY_CAUSE.get(answer.strip().lower())
    if found is None:
        raise ValueError(f"no cause {answer!r}; the causes are: {', '.join(BY_CAUSE)}")
    return found


def grade(game: dict[str, Any], answer: str, now: float) -> dict[str, Any]:
    """The verdict on an answer to a running game (ValueError for an unknown cause)."""
    said = cause(answer)
    return {**game, "answer": said.name, "right": said.name == game["cause"],
            "answered_at": now, "seconds": round(now - game["started_at"], 1)}


# --- hints: what the signals say now, more pointed at each level ----------------------------
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
    span = max(tree.spans, key=lambda s: s.self_us)
    return (f"the span with the most time of its own is {span.service.rsplit('-', 1)[-1]} "
            f"{span.operation}: {span.self_us / 1000:.0f} of its {span.duration_us / 1000:.0f}"
            " ms")


# --- the record of the games (gameday.json in the lab's home) -------------------------------
def load(home: Path) -> dict[str, Any]:
    path = home / RECORD
    if not path.is_file():
        return {"current": None, "played": []}
    return json.loads(path.read_text())


def save(home: Path, record: dict[str, Any]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(home / RECORD)
