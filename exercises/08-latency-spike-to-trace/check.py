#!/usr/bin/env python3
"""Exercise 08's check: what the learner found following a checkout latency spike from its
exemplar to its trace, to the statement that waited, to that very request's log line, and when
SlowCheckout fired; then whether the fault is off and checkouts are fast again."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import API_SERVICE, Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.jaeger import DB_QUERY  # noqa: E402
from labkit.questions import (  # noqa: E402
    Truth,
    answered_trees,
    busiest,
    fired_at,
    normal,
    number,
    slow_request,
    slow_request_trace,
)

SLOW_MS = 500
SERVER_SPAN = "POST /checkout"
QUOTED_AT_LEAST = 12  # characters of a statement's text that name it, answered for its span
slow = slow_request(SERVER_SPAN, SLOW_MS)


def statement(lab: Lab) -> Truth:
    """The span with the most time of its own in the trace answered (else in each slow
    checkout of the window): its name, or its statement quoted (12 characters at least)."""
    spans = [busiest(t, API_SERVICE) for t in answered_trees(
        lab, "slow_trace_id", slow, operation=SERVER_SPAN, min_duration=f"{SLOW_MS}ms",
        limit=20)]
    if not spans:
        raise NotYet(f"no checkout trace over {SLOW_MS} ms yet")
    names = {normal(s.operation) for s in spans}
    texts = [normal(str(s.tags[DB_QUERY])) for s in spans if DB_QUERY in s.tags]

    def accepts(answer: str) -> bool:
        said = normal(answer)
        return said in names or (len(said) >= QUOTED_AT_LEAST and any(said in t for t in texts))
    return Truth(" or ".join(sorted({s.operation for s in spans})), accepts)


def request_ms(lab: Lab) -> Truth:
    """The duration_ms of the request_finished line of the trace answered, in the API's log."""
    given = normal(lab.answers.get("slow_trace_id", ""))
    if not (given and slow_request_trace(lab, SERVER_SPAN, SLOW_MS).accepts(given)):
        raise NotYet("answer slow_trace_id with a slow checkout's trace id first")
    for line in lab.log_lines("api", given):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "request_finished" and "duration_ms" in entry:
            return number(float(entry["duration_ms"]), 5, " ms", relative=0.02)
    raise NotYet(f"no request_finished line of trace {given} in the API's log yet")


def checkout_fast(lab: Lab, bound_ms: float = 300.0) -> str:
    step = lab.shop().checkout(1)
    if not step.ok:
        raise NotYet(f"a checkout answered {step.status or 'nothing'}: {step.error}")
    if step.latency_ms > bound_ms:
        raise NotYet(f"a checkout took {step.latency_ms:.0f} ms (over {bound_ms:g} ms)")
    return f"a checkout took {step.latency_ms:.0f} ms"


QUESTIONS = [
    Question("slow_trace_id", f"The trace id of a checkout slower than {SLOW_MS} ms, as an "
             "exemplar of /checkout names it?",
             lambda lab: slow_request_trace(lab, SERVER_SPAN, SLOW_MS),
             "make checkouts wait (./lab chaos set stock_lock_ms=1500) and buy; then list the "
             "exemplars of http_request_duration_seconds_bucket{job=\"api\",handler="
             "\"/checkout\"} (the README's step 4, or the store's link to the slowest checkout) "
             f"and take one over {SLOW_MS} ms"),
    Question("statement", "In that trace, which span holds nearly all the time (its name, or "
             "its statement)?", statement,
             "open the trace: below the request's span and the checkout's, compare the spans' "
             "durations with their children's; a statement is in its span's db.query.text"),
    Question("request_ms", "How long did that request take, as the duration_ms of its "
             "request_finished line in the API's log says?", request_ms,
             "grep the API's log for the trace id (natively: ./lab logs api; compose: docker "
             "logs kodekloud-record-store-api) and read request_finished's duration_ms"),
    Question("fired_at", "At what time (UTC, HH:MM:SS) did SlowCheckout start firing?",
             lambda lab: fired_at(lab, "SlowCheckout"),
             "keep buying for about three minutes while the fault is on; when its "
             "notification came: ./lab alerts"),
]

STEPS = [
    Step("The checkout's latency spiked", lambda lab: lab.latency_peak("/checkout", SLOW_MS),
         "make checkouts wait, ./lab chaos set stock_lock_ms=1500, and buy: "
         "python3 scripts/trace_purchase_journey.py"),
    Step("The fault is off and checkouts are fast again",
         lambda lab: f"{lab.faults_off()}; {checkout_fast(lab)}",
         "switch it off: ./lab chaos reset"),
    Step("SlowCheckout fired, reached the receiver, and resolved",
         lambda lab: lab.alert_came_and_went("SlowCheckout"),
         "keep buying for about three minutes while the fault is on; after the clean-up it "
         "resolves within about 2 minutes"),
]

if __name__ == "__main__":
    main("Exercise 08: from a latency spike to its trace to its logs", STEPS, QUESTIONS)
