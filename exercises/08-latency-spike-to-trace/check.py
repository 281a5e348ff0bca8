#!/usr/bin/env python3
"""Exercise 08's check: from a checkout latency spike on a graph, to the exemplar that names its
trace, to the trace, to the log lines of that very request."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import Lab, NotYet, Step, main  # noqa: E402
from labkit.prometheus import slowest_exemplar  # noqa: E402

SLOW_MS = 500
HISTOGRAM = 'http_request_duration_seconds_bucket{job="api",handler="/checkout"}'


def slow_exemplar(lab: Lab) -> str:
    worst = slowest_exemplar(lab.exemplars(HISTOGRAM), SLOW_MS / 1000)
    if worst is None:
        raise NotYet(f"no exemplar of a checkout over {SLOW_MS} ms")
    lab.memo["trace_id"] = worst["labels"]["trace_id"]
    return (f"an exemplar of {float(worst['value']) * 1000:.0f} ms names trace "
            f"{lab.memo['trace_id']}")


def trace_found(lab: Lab) -> str:
    tree = lab.trace_tree(lab.found("trace_id", 2))
    below = [s for s in tree.spans if s.parent is not None]
    if not below:
        raise NotYet(f"trace {tree.trace_id} holds only the request's own span so far")
    slowest = max(below, key=lambda s: s.duration_us)
    return (f"the trace has {len(tree.spans)} spans; below the request, the slowest is "
            f"{slowest.operation} ({slowest.duration_us / 1000:.0f} ms)")


def logs_found(lab: Lab) -> str:
    trace_id = lab.found("trace_id", 2)
    lines = lab.log_lines("api", trace_id)
    if not lines:
        raise NotYet(f"no line of the API's log carries trace_id {trace_id}")
    return f"{len(lines)} line(s) of the API's log carry trace_id {trace_id}"


def checkout_fast(lab: Lab, bound_ms: float = 300.0) -> str:
    step = lab.shop().checkout(1)
    if not step.ok:
        raise NotYet(f"a checkout answered {step.status or 'nothing'}: {step.error}")
    if step.latency_ms > bound_ms:
        raise NotYet(f"a checkout took {step.latency_ms:.0f} ms (over {bound_ms:g} ms)")
    return f"a checkout took {step.latency_ms:.0f} ms"


STEPS = [
    Step("The checkout's latency spiked", lambda lab: lab.latency_peak("/checkout", SLOW_MS),
         "make checkouts wait, ./lab chaos set stock_lock_ms=1500, and buy: "
         "python3 scripts/trace_purchase_journey.py"),
    Step("Prometheus keeps an exemplar of a slow request", slow_exemplar,
         "buy again while the fault is on; exemplars come with each scrape (5 s)"),
    Step("The exemplar's trace is in Jaeger", trace_found,
         "the trace arrives a moment after the request: check again"),
    Step("The API's logs carry the same trace id", logs_found,
         "every log line carries trace_id; check the API's log: ./lab logs api"),
    Step("The fault is off and checkouts are fast again",
         lambda lab: f"{lab.faults_off()}; {checkout_fast(lab)}",
         "switch it off: ./lab chaos reset"),
]

if __name__ == "__main__":
    main("Exercise 08: from a latency spike to its trace to its logs", STEPS)
