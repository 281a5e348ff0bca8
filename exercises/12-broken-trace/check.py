#!/usr/bin/env python3
"""Exercise 12's check: what the learner found about a purchase whose order message lost its
trace context (the hop where it was lost, the two traces it became, the correlation id that
joins them), each verified in the trace store; then whether the fault is off and a new
purchase is one whole trace again."""

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import API_SERVICE, WORKER_SERVICE, Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.jaeger import CORRELATION_ID, SpanTree  # noqa: E402
from labkit.questions import Truth, normal, one_of  # noqa: E402

# The hop is the API's publish of the order to the worker, through the broker: any answer that
# names the message, the queue, the broker or both ends of it.
HOP_WORDS = ("publish", "apply_async", "process_order", "broker", "rabbitmq", "amqp", "queue",
             "message", "celery", "producer", "consumer")
OTHER_HOPS = ("gateway", "nginx", "postgres", "database", "sql", "browser", "storefront")
TRACE_ID = re.compile(r"[0-9a-f]{16,32}")


def worker_root(tree: SpanTree) -> bool:
    """The worker's half of a split purchase: a trace of the worker's spans alone, rooted in
    its consumer span, which has no parent at all (not even one in another trace)."""
    return tree.services == {WORKER_SERVICE} and any(
        r.service == WORKER_SERVICE and r.kind == "consumer" and not r.references
        for r in tree.roots)


def api_half(tree: SpanTree) -> bool:
    """The API's half: its spans, down to the publish (a producer span), and no worker span."""
    return tree.services == {API_SERVICE} and any(
        s.kind == "producer" for s in tree.spans if s.service == API_SERVICE)


def correlation_of(tree: SpanTree) -> str:
    return next((str(s.tags[CORRELATION_ID]) for s in tree.spans if CORRELATION_ID in s.tags), "")


def tree_of(lab: Lab, answer: str) -> SpanTree | None:
    """The answered trace, if it is one of the window's."""
    if not TRACE_ID.fullmatch(normal(answer)):
        return None
    try:
        tree = lab.trace_tree(normal(answer))
    except NotYet:
        return None
    return tree if tree.start_us >= lab.since * 1_000_000 else None


def worker_halves(lab: Lab, cid: str = "") -> list[SpanTree]:
    """The worker halves of the window (of one purchase, when its correlation id is given)."""
    tags = {CORRELATION_ID: cid} if cid else None
    return [t for t in lab.trees(service=WORKER_SERVICE, tags=tags, limit=100) if worker_root(t)]


def api_halves(lab: Lab, cid: str) -> list[SpanTree]:
    return [t for t in lab.trees(service=API_SERVICE, tags={CORRELATION_ID: cid}) if api_half(t)]


def splits(lab: Lab) -> list[tuple[SpanTree, SpanTree]]:
    """(API half, worker half) of the window's split purchases, newest first (at most 5)."""
    if "splits" not in lab.memo:
        found = []
        for worker in worker_halves(lab)[:10]:
            cid = correlation_of(worker)
            found += [(api, worker) for api in api_halves(lab, cid)[:1]] if cid else []
            if len(found) >= 5:
                break
        if not found:
            raise NotYet("no purchase of the window is two traces: no worker trace of its own "
                         "whose API half carries its correlation id")
        lab.memo["splits"] = found
    return lab.memo["splits"]


def answered_api_half(lab: Lab) -> SpanTree | None:
    """The API half the learner gave, when it is one (its worker half is a trace apart)."""
    if "api" not in lab.memo:
        tree = tree_of(lab, lab.answers.get("api_trace_id", ""))
        ok = tree is not None and api_half(tree) and bool(correlation_of(tree)) and any(
            w.trace_id != tree.trace_id for w in worker_halves(lab, correlation_of(tree)))
        lab.memo["api"] = tree if ok else None
    return lab.memo["api"]


def hop(lab: Lab) -> Truth:
    api, worker = splits(lab)[0]
    publish = next(s.operation for s in api.spans if s.kind == "producer")
    consume = next(r.operation for r in worker.roots if r.kind == "consumer")

    def accepts(answer: str) -> bool:
        text = normal(answer)
        if any(w in text for w in OTHER_HOPS):
            return False
        both_ends = re.search(r"\bapi\b.*\bworker\b|\bworker\b.*\bapi\b", text)
        return bool(both_ends) or any(w in text for w in HOP_WORDS)
    return Truth(f"the API's {publish} → the worker's {consume}: the order's message, through "
                 "the broker (api→worker)", accepts)


def other_hop(lab: Lab, answer: str) -> str | None:
    if any(w in normal(answer) for w in OTHER_HOPS):
        return ("the spans on both sides of that hop are in one trace: find the last span of "
                "the API's trace and the first of the worker's, and what passes between them")
    return None


def api_trace_id(lab: Lab) -> Truth:
    def accepts(answer: str) -> bool:
        api = answered_api_half(lab)  # Jaeger may pad a 64-bit id: compare them padded
        return api is not None and normal(answer).zfill(32) == api.trace_id.zfill(32)
    return Truth(splits(lab)[0][0].trace_id, accepts)


def not_api_half(lab: Lab, answer: str) -> str | None:
    tree = tree_of(lab, answer)
    if tree is None:
        return None
    if WORKER_SERVICE in tree.services and API_SERVICE in tree.services:
        return ("that trace is one whole purchase, the worker's spans and all: its order left "
                "with its trace context; take a purchase made while trace_context_drop was on")
    if worker_root(tree):
        return ("that is the worker's half (it starts at the worker's consumer span); the "
                "API's half starts at POST /checkout")
    return None


def worker_trace_id(lab: Lab) -> Truth:
    """A worker half of the same purchase as the API half answered (else of any split one):
    a trace apart, rooted in a consumer span with no parent, carrying the same correlation
    id."""
    api = answered_api_half(lab)
    halves = ([w for w in worker_halves(lab, correlation_of(api)) if w.trace_id != api.trace_id]
              if api else [worker for _, worker in splits(lab)])
    if not halves:
        raise NotYet("the API half's worker half has not reached the trace store yet")
    return one_of([w.trace_id for w in halves], shown=halves[0].trace_id)


def other_purchase(lab: Lab, answer: str) -> str | None:
    tree, api = tree_of(lab, answer), answered_api_half(lab)
    if tree is None:
        return None
    if api is not None and tree.trace_id == api.trace_id:
        return "that is the API's half again; the worker's half is a trace of its own"
    if worker_root(tree) and api is not None:
        return ("that is a worker's half, but of another purchase: its "
                f"{CORRELATION_ID} is not the one of the API half you gave; search the "
                "worker's traces by that one")
    return not_api_half(lab, answer) if not worker_root(tree) else None


def correlation_id(lab: Lab) -> Truth:
    api = answered_api_half(lab)
    return one_of([correlation_of(api)] if api else
                  [correlation_of(api) for api, _ in splits(lab)])


def another_purchase(lab: Lab, answer: str) -> str | None:
    if answered_api_half(lab) is not None and any(
            normal(answer) == normal(correlation_of(api)) for api, _ in splits(lab)):
        return ("that one joins the halves of another purchase: read the tag on the spans of "
                "the API half you gave")
    return None


def whole_again(lab: Lab) -> str:
    """A new purchase's trace holds the worker's spans again, under the API's publish."""
    step = lab.shop().checkout(1)
    if not step.ok or not step.trace_id:
        raise NotYet(f"a test checkout answered {step.status or 'nothing'}: {step.error}")
    deadline = time.monotonic() + 15
    while True:
        try:
            tree = lab.trace_tree(step.trace_id)
        except NotYet:
            tree = None
        if tree is not None and any(s.service == WORKER_SERVICE and s.kind == "consumer"
                                    and s.parent is not None for s in tree.spans):
            return (f"test purchase {step.correlation_id}: trace {step.trace_id} holds the "
                    "API's spans and the worker's")
        if time.monotonic() >= deadline:
            raise NotYet(f"test purchase {step.correlation_id}: no worker span joined its "
                         f"trace {step.trace_id} within 15 s")
        time.sleep(1)


QUESTIONS = [
    Question("hop", "Between which two components, at which hop, is the trace context lost?",
             hop, "open the API's trace of a purchase: where does it end? The worker's spans "
             "are somewhere else: what carries the order from one to the other?",
             wrong=other_hop),
    Question("api_trace_id", "The trace id of the API's half of one purchase made while the "
             "fault was on?", api_trace_id,
             "check out with curl -i (X-Trace-ID is the API's trace), or search Jaeger: "
             "service kodekloud-record-store-api, operation POST /checkout; a trace with no "
             "worker span", wrong=not_api_half),
    Question("worker_trace_id", "The trace id of the worker's half of that same purchase?",
             worker_trace_id,
             "search Jaeger: service kodekloud-record-store-worker, tag "
             f"{CORRELATION_ID}=<the purchase's correlation id>: a trace of its own",
             wrong=other_purchase),
    Question("correlation_id", "The correlation id that joins the two halves?", correlation_id,
             f"the {CORRELATION_ID} tag on the spans of both halves (or the X-Correlation-ID "
             "header the checkout answered with)", wrong=another_purchase),
]

STEPS = [
    Step("The fault is off", lambda lab: lab.faults_off(), "switch it off: ./lab chaos reset"),
    Step("A new purchase is one whole trace again", whole_again,
         "switch the fault off (./lab chaos reset) and wait a second: each API process "
         "re-reads the faults once a second"),
]

if __name__ == "__main__":
    main("Exercise 12: a broken trace", STEPS, QUESTIONS)
