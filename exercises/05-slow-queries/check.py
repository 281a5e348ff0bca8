#!/usr/bin/env python3
"""Exercise 05's check: slow queries were switched on, found in a trace and in PostgreSQL's
own metrics, and switched off again."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import API_SERVICE, Lab, NotYet, Step, main  # noqa: E402
from labkit.jaeger import DB_QUERY  # noqa: E402

SLOW_MS = 500


def slow_trace(lab: Lab) -> str:
    """A catalog request whose slowest span is an SQL statement: remembered for step 2."""
    for tree in lab.trees(service=API_SERVICE, operation="GET /products",
                          min_duration=f"{SLOW_MS}ms", limit=20):
        statements = [s for s in tree.spans if DB_QUERY in s.tags]
        if statements:
            slowest = max(statements, key=lambda s: s.duration_us)
            lab.memo["statement"] = slowest
            return (f"trace {tree.trace_id}: GET /products took {tree.duration_us / 1000:.0f} ms")
    raise NotYet(f"no GET /products trace over {SLOW_MS} ms since {lab.since_text}")


def statement_found(lab: Lab) -> str:
    span = lab.found("statement", 1)
    if span.duration_us < SLOW_MS * 1000:
        raise NotYet(f"its slowest statement took only {span.duration_us / 1000:.0f} ms")
    first_line = " ".join(str(span.tags[DB_QUERY]).split())[:80]
    return f"the statement took {span.duration_us / 1000:.0f} ms: {first_line}"


def database_saw_it(lab: Lab) -> str:
    longest = lab.peak('max(pg_stat_activity_max_tx_duration{job="postgres"})') or 0
    if longest * 1000 < SLOW_MS:
        raise NotYet(f"PostgreSQL's longest transaction was {longest * 1000:.0f} ms "
                     f"(pg_stat_activity_max_tx_duration); browse while the fault is on")
    return f"PostgreSQL saw a transaction of {longest * 1000:.0f} ms running"


STEPS = [
    Step("A catalog request was slow, and Jaeger has its trace", slow_trace,
         "switch the fault on (./lab chaos set slow_query_ms=800), then browse: "
         "python3 scripts/trace_purchase_journey.py"),
    Step("The trace names the slow SQL statement", statement_found,
         "open the slow trace and look at its SELECT spans"),
    Step("PostgreSQL's own metrics show the long query", database_saw_it,
         "keep browsing for 15 s while the fault is on: the exporter samples every 5 s"),
    Step("The API's latency histogram shows the spike",
         lambda lab: lab.latency_peak("/products", SLOW_MS),
         "keep browsing for 15 s while the fault is on"),
    Step("The fault is off and the catalog is fast again",
         lambda lab: f"{lab.faults_off()}; {lab.catalog_fast()}",
         "switch it off: ./lab chaos reset"),
]

if __name__ == "__main__":
    main("Exercise 05: slow queries", STEPS)
