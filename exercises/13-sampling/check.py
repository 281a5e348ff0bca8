#!/usr/bin/env python3
"""Exercise 13's check: what the learner measured while head sampling kept one trace in ten
(`./lab sampling 0.1`): the share of checkouts that kept a trace, an exemplar that names a
trace never kept, and how many of the orders that failed left a trace; then sampling off
again, and a new checkout's trace kept.

The questions look at the last period of the window in which a ratio below 1 held, as
`./lab sampling` recorded it in the lab's home (labkit/sampling.py): from the moment it was
set until it was switched back (or now). The truths are the signals' own: Prometheus counts
every request and order, the trace store holds the traces that were kept."""

import math
import re
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit import sampling  # noqa: E402
from labkit.checks import API_SERVICE, WORKER_SERVICE, Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.jaeger import JaegerError  # noqa: E402
from labkit.prometheus import PrometheusError  # noqa: E402
from labkit.questions import Truth, between, normal, number, one_of  # noqa: E402

SERVER_SPAN = "POST /checkout"
CHECKOUTS = 'recordstore_checkouts_total{job="api"}'  # every outcome; 0 from the API's start
FAILED = 'recordstore_orders_completed_total{job="worker",status="failed"}'
EXEMPLARS = 'http_request_duration_seconds_bucket{job="api",handler="/checkout"}'
MIN_CHECKOUTS = 50
SHARE_POINTS = 5  # the share's tolerance, in percentage points
KEEP_WITHIN_S = 20  # a kept trace is in the trace store by then (the SDK exports every 5 s)


def period(lab: Lab) -> tuple[float, float, float]:
    """(from, until, ratio): the last period of the window that kept fewer than every trace."""
    if "period" not in lab.memo:
        found = [(start, until, ratio) for start, until, ratio in sampling.periods(lab.lab_home)
                 if ratio < 1 and (until is None or until > lab.since)]
        if not found:
            raise NotYet(f"no trace sampling below 1 since {lab.since_text} (./lab sampling "
                         "0.1 sets one; natively and in compose)")
        start, until, ratio = found[-1]
        lab.memo["period"] = (max(start, lab.since), until or time.time(), ratio)
    return lab.memo["period"]


def clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S")


def counted(lab: Lab, selector: str, start: float, until: float) -> float:
    """How much the counters of `selector` rose between `start` and `until`, from their raw
    samples (no extrapolation; a restart's reset counts what came after it)."""
    span = math.ceil(until - start) + 15  # a scrape from before the start: the base
    total = 0.0
    for series in lab.query(f"{selector}[{span}s] @ {until:.3f}"):
        samples = [(float(t), float(v)) for t, v in series.get("values", [])]
        base = [v for t, v in samples if t <= start]
        last = base[-1] if base else 0.0
        for t, v in samples:
            if t > start:
                total += v - last if v >= last else v
                last = v
    return total


def kept_checkouts(lab: Lab, start: float, until: float) -> list[dict]:
    """The traces of the period with a checkout's server span (the root: the API decides)."""
    traces = lab.traces(service=API_SERVICE, operation=SERVER_SPAN, limit=10_000)
    return [t for t in traces
            if start * 1e6 <= min(s["startTime"] for s in t["spans"]) <= until * 1e6]


def share(lab: Lab) -> Truth:
    """Traces of POST /checkout in the trace store ÷ checkouts Prometheus counted, in %."""
    start, until, ratio = period(lab)
    made = counted(lab, CHECKOUTS, start, until)
    if made < MIN_CHECKOUTS:
        raise NotYet(f"Prometheus counts {made:.0f} checkouts between {clock(start)} and "
                     f"{clock(until)}, while {ratio:g} of the traces were kept: make at least "
                     f"{MIN_CHECKOUTS}")
    kept = 100 * len(kept_checkouts(lab, start, until)) / made
    return between(kept - SHARE_POINTS, kept + SHARE_POINTS, shown=f"{kept:.1f} %",
                   tolerance=f"± {SHARE_POINTS} percentage points")


def unkept_exemplar(lab: Lab) -> Truth:
    """Any exemplar trace id of the period that the trace store does not hold."""
    start, until, _ = period(lab)
    try:
        exemplars = lab.prometheus.exemplars(EXEMPLARS, start, until)
    except PrometheusError as exc:
        raise NotYet(f"Prometheus refused the exemplars of {EXEMPLARS}: {exc}") from None
    ids = {e.get("labels", {}).get("trace_id") for e in exemplars} - {None}
    if not ids:
        raise NotYet(f"no exemplar of /checkout between {clock(start)} and {clock(until)}")
    unkept = sorted(i for i in ids if not known(lab, i))
    if not unkept:
        raise NotYet(f"every one of the {len(ids)} exemplars of the period names a kept trace")
    truth = one_of(unkept, shown=unkept[0])
    return Truth(truth.shown, lambda answer: normal(answer) in ids and truth.accepts(answer))


def known(lab: Lab, trace_id: str) -> bool:
    try:
        return lab.jaeger.trace(trace_id) is not None
    except JaegerError as exc:
        raise NotYet(f"the trace store refused trace {trace_id}: {exc}") from None


def failures(lab: Lab) -> tuple[float, int]:
    """(orders that failed in the period, by Prometheus; traces of them in the trace store)."""
    if "failures" not in lab.memo:
        start, until, ratio = period(lab)
        failed = counted(lab, FAILED, start, until)
        if failed < 1:
            raise NotYet(f"no order failed between {clock(start)} and {clock(until)}, while "
                         f"{ratio:g} of the traces were kept: ./lab chaos set "
                         "payment_failure_rate=0.01 and make a few hundred checkouts")
        traced = lab.traces(service=WORKER_SERVICE, operation="process_order",
                            tags={"error": "true"}, limit=10_000)
        in_period = [t for t in traced
                     if start * 1e6 <= min(s["startTime"] for s in t["spans"]) <= until * 1e6]
        lab.memo["failures"] = (failed, len(in_period))
    return lab.memo["failures"]


def failed_orders(lab: Lab) -> Truth:
    return number(failures(lab)[0], 1)


def failed_traced(lab: Lab) -> Truth:
    traced = failures(lab)[1]
    return between(traced, traced, shown=str(traced))


def not_a_trace_id(lab: Lab, answer: str) -> str | None:
    if not re.fullmatch(r"[0-9a-f]{32}", normal(answer)):
        return "a trace id is 32 hex digits, as an exemplar's trace_id label holds it"
    return None


def sampled_checkouts(lab: Lab) -> str:
    start, until, ratio = period(lab)
    made = counted(lab, CHECKOUTS, start, until)
    if made < MIN_CHECKOUTS:
        raise NotYet(f"{made:.0f} checkouts counted since {clock(start)} at {ratio:g} "
                     f"(wanted {MIN_CHECKOUTS})")
    return f"{made:.0f} checkouts counted between {clock(start)} and {clock(until)} at {ratio:g}"


def new_checkouts_kept(lab: Lab, count: int = 3) -> str:
    """Checkouts made now: each one's trace is in the trace store within KEEP_WITHIN_S (three
    of them: at one in ten, all three are kept once in a thousand)."""
    lab.faults_off()
    shop = lab.shop()
    trace_ids = []
    for _ in range(count):
        step = shop.checkout(1)
        trace_id = (step.body or {}).get("trace_id") if step.ok else None
        if not trace_id:
            raise NotYet(f"a checkout answered {step.status or 'nothing'}: {step.error}")
        trace_ids.append(trace_id)
    deadline = time.monotonic() + KEEP_WITHIN_S
    while missing := [t for t in trace_ids if not known(lab, t)]:
        if time.monotonic() >= deadline:
            raise NotYet(f"{len(missing)} of {count} new checkouts' traces are not in the trace "
                         f"store {KEEP_WITHIN_S} s later (e.g. {missing[0]}): not kept")
        time.sleep(1)
    return f"no fault is on; {count} new checkouts kept their traces ({trace_ids[0]}, ...)"


QUESTIONS = [
    Question("kept_share", "While sampling was on, what share of the checkouts kept a trace, "
             "in %?", share,
             "count the traces of POST /checkout in the trace store since you set the ratio "
             "(search service kodekloud-record-store-api, operation POST /checkout, with a "
             "limit above the count) and divide by the checkouts Prometheus counted, "
             'sum(increase(recordstore_checkouts_total{job="api"}[...])) over the same '
             "seconds"),
    Question("unkept_trace_id", "The trace id of an exemplar of /checkout whose trace was "
             "never kept?", unkept_exemplar,
             "ask Prometheus for the exemplars of http_request_duration_seconds_bucket"
             '{job="api",handler="/checkout"} since you set the ratio, and look each trace id '
             "up in the trace store: one it does not know", wrong=not_a_trace_id),
    Question("failed_orders", "How many orders failed while sampling was on?", failed_orders,
             "Prometheus counts them: recordstore_orders_completed_total{status=\"failed\"}, "
             "its increase since you set the ratio"),
    Question("failed_traced", "How many of those failed orders left a trace in the trace "
             "store?", failed_traced,
             "search the trace store: service kodekloud-record-store-worker, operation "
             "process_order, tag error=true, since you set the ratio"),
]

STEPS = [
    Step("Checkouts were made while sampling kept a share of the traces", sampled_checkouts,
         f"./lab sampling 0.1, then make at least {MIN_CHECKOUTS} checkouts (the README's "
         "step 3)"),
    Step("Sampling is off, no fault is on, and a new checkout keeps its trace",
         new_checkouts_kept, "./lab chaos reset, then ./lab sampling off"),
]

if __name__ == "__main__":
    main("Exercise 13: head sampling, what it keeps and what it loses", STEPS, QUESTIONS)
