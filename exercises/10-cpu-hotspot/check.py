#!/usr/bin/env python3
"""Exercise 10's check: from slow checkouts, to the exemplar of one, to its trace, where a long
span has time no child span accounts for, to the CPU profile that names the function."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit import profiles  # noqa: E402
from labkit.checks import Lab, NotYet, Step, main  # noqa: E402
from labkit.prometheus import slowest_exemplar  # noqa: E402

SLOW_MS = 250
UNEXPLAINED_MS = 200
HOTSPOT = "score_fraud_risk"
HISTOGRAM = 'http_request_duration_seconds_bucket{job="api",handler="/checkout"}'


def slow_exemplar(lab: Lab) -> str:
    worst = slowest_exemplar(lab.exemplars(HISTOGRAM), SLOW_MS / 1000)
    if worst is None:
        raise NotYet(f"no exemplar of a checkout over {SLOW_MS} ms")
    lab.memo["trace_id"] = worst["labels"]["trace_id"]
    return (f"an exemplar of {float(worst['value']) * 1000:.0f} ms names trace "
            f"{lab.memo['trace_id']}")


def unexplained_time(lab: Lab) -> str:
    """The checkout_order span's own time: what none of its child spans covers."""
    tree = lab.trace_tree(lab.found("trace_id", 2))
    spans = tree.find("checkout_order")
    if not spans:
        raise NotYet(f"trace {tree.trace_id} has no checkout_order span yet")
    span = spans[0]
    children_us = span.duration_us - span.self_us
    own_ms = span.self_us / 1000
    if own_ms < UNEXPLAINED_MS:
        raise NotYet(f"checkout_order took {span.duration_us / 1000:.0f} ms, its children "
                     f"{children_us / 1000:.0f} ms: only {own_ms:.0f} ms is its own")
    return (f"checkout_order took {span.duration_us / 1000:.0f} ms; its {len(span.children)} "
            f"child span(s) account for {children_us / 1000:.0f} ms, {own_ms:.0f} ms no child "
            "explains")


def profile_names_hotspot(lab: Lab) -> str:
    if lab.mode != "native":
        raise NotYet("profiles are recorded natively only (README, Profiles, says why)")
    recorded = profiles.recorded(lab.lab_home / "profiles", lab.since)
    if not recorded:
        raise NotYet(f"no profile recorded since {lab.since_text}")
    for path in recorded:
        total = profiles.samples(path)
        count = profiles.functions(path).get(HOTSPOT, 0)
        if count:
            return (f"{path.name}: {HOTSPOT} is on the stack in {count} of {total} samples "
                    f"({100 * count / total:.0f}%)")
    raise NotYet(f"{len(recorded)} profile(s) since {lab.since_text}, none names {HOTSPOT}: "
                 "record while checkouts are slow")


STEPS = [
    Step("Checkouts got slow", lambda lab: lab.latency_peak("/checkout", SLOW_MS),
         "make them burn CPU, ./lab chaos set cpu_burn_ms=300, and check out a few times"),
    Step("Prometheus keeps an exemplar of a slow checkout", slow_exemplar,
         "check out again while the fault is on; exemplars come with each scrape (5 s)"),
    Step("Its trace has a long span no child explains", unexplained_time,
         "the trace arrives a moment after the request: check again"),
    Step(f"A CPU profile names {HOTSPOT}", profile_names_hotspot,
         "record the API while checkouts run: ./lab profile api --seconds 10"),
    Step("The fault is off", lambda lab: lab.faults_off(), "switch it off: ./lab chaos reset"),
]

if __name__ == "__main__":
    main("Exercise 10: from a slow checkout to its trace to the function in a profile", STEPS)
