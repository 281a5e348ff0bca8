#!/usr/bin/env python3
"""Exercise 09's check: what the learner found following a slow checkout from its exemplar to
its trace, where a long span has time no child span accounts for, to the CPU profile that
names the function; then whether the fault is off again."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit import profiles  # noqa: E402
from labkit.checks import API_SERVICE, Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.jaeger import SpanTree  # noqa: E402
from labkit.questions import (  # noqa: E402
    Truth,
    answered_trees,
    any_of,
    busiest,
    normal,
    number,
    one_of,
    slow_request,
    slow_request_trace,
)

SLOW_MS = 250
UNEXPLAINED_MS = 200
SERVER_SPAN = "POST /checkout"
LEADS_AT_LEAST = 0.2  # of a profile's samples: below that, a profile names no function
slow = slow_request(SERVER_SPAN, SLOW_MS)


def slow_trees(lab: Lab) -> list[SpanTree]:
    """The slow checkout trace answered, else the window's slow checkout traces, each with a
    span whose own time passes 200 ms (once the trace store holds the whole trace)."""
    if "trees" in lab.memo:
        return lab.memo["trees"]
    trees = answered_trees(lab, "slow_trace_id", slow, operation=SERVER_SPAN,
                           min_duration=f"{SLOW_MS}ms", limit=20)
    trees = [t for t in trees if busiest(t, API_SERVICE).self_us >= UNEXPLAINED_MS * 1000]
    if not trees:
        raise NotYet(f"no checkout trace over {SLOW_MS} ms with a span holding over "
                     f"{UNEXPLAINED_MS} ms of its own yet")
    lab.memo["trees"] = trees
    return trees


def span(lab: Lab) -> Truth:
    return one_of(busiest(t, API_SERVICE).operation for t in slow_trees(lab))


def request_span(lab: Lab, answer: str) -> str | None:
    if normal(answer) == normal(SERVER_SPAN):
        return ("that is the request's own span: most of its time is its child span's; look "
                "one level down")
    return None


def self_ms(lab: Lab) -> Truth:
    """That span's own time, within ± 10 % (20 ms at least)."""
    return any_of([number(busiest(t, API_SERVICE).self_us / 1000, 20, " ms", relative=0.1)
                   for t in slow_trees(lab)])


def function(lab: Lab) -> Truth:
    """The function that leads the self time of an API profile recorded in the window, as
    `./lab profile api` lists it (a profile where no function has a fifth of the samples, one
    of an idle API, names none)."""
    if lab.mode != "native":
        raise NotYet("profiles are recorded natively only (docs/profiles.md says why)")
    recorded = [p for p in profiles.recorded(lab.lab_home / "profiles", lab.since)
                if p.name.startswith("api-")]
    if not recorded:
        raise NotYet(f"no profile of the API recorded since {lab.since_text}")
    leaders = []
    for path in recorded:
        total = profiles.samples(path)
        for name, count in profiles.self_time(path).most_common(1):
            if count >= LEADS_AT_LEAST * total:
                leaders.append(name.rsplit(" (", 1)[0])
    if not leaders:
        raise NotYet(f"{len(recorded)} profile(s) of the API since {lab.since_text}, none "
                     "with a function on the CPU in a fifth of its samples: record while "
                     "checkouts are slow")
    return one_of(leaders)


QUESTIONS = [
    Question("slow_trace_id", f"The trace id of a checkout slower than {SLOW_MS} ms, as an "
             "exemplar of /checkout names it?",
             lambda lab: slow_request_trace(lab, SERVER_SPAN, SLOW_MS),
             "make checkouts burn CPU (./lab chaos set cpu_burn_ms=300) and check out; then "
             "ask Prometheus for the exemplars of http_request_duration_seconds_bucket"
             '{job="api",handler="/checkout"} (the README\'s step 4) and take one over '
             f"{SLOW_MS} ms"),
    Question("span", "In that trace, which span has a long time of its own, which no child "
             "span explains?", span,
             "open the trace and compare each span's duration with its child spans' "
             "durations: the span whose children add up to far less than itself",
             wrong=request_span),
    Question("self_ms", "How many ms of that span's duration does no child span account for?",
             self_ms, "that span's duration less the sum of its child spans' durations, in "
             "the trace"),
    Question("function", "Which function does a CPU profile of the API name as the one that "
             "ran most?", function,
             "record the API while checkouts are slow (./lab profile api --seconds 10, "
             "natively) and read the top of its self-time list"),
]

STEPS = [
    Step("Checkouts got slow", lambda lab: lab.latency_peak("/checkout", SLOW_MS),
         "make them burn CPU, ./lab chaos set cpu_burn_ms=300, and check out a few times"),
    Step("The fault is off", lambda lab: lab.faults_off(), "switch it off: ./lab chaos reset"),
]

if __name__ == "__main__":
    main("Exercise 09: from a slow checkout to its trace to the function in a profile", STEPS,
         QUESTIONS)
