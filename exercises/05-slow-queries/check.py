#!/usr/bin/env python3
"""Exercise 05's check: slow queries were switched on, found in a trace and in PostgreSQL's
own metrics, and switched off again."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import API_SERVICE, Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.jaeger import DB_QUERY, SpanTree  # noqa: E402
from labkit.questions import (  # noqa: E402
    Truth,
    answered_trees,
    any_of,
    between,
    number,
    trace_where,
)

SLOW_MS = 500
P95 = ("histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket"
       '{job="api",handler="/products",status_class="2xx"}[30s])))')
SLOW_SEARCH = {"service": API_SERVICE, "operation": "GET /products",
               "min_duration": f"{SLOW_MS}ms", "limit": 20}


def slow(tree: SpanTree) -> bool:
    return any(s.duration_us >= SLOW_MS * 1000 for s in tree.find("GET /products"))


def slow_trace(lab: Lab) -> Truth:
    return trace_where(lab, slow, **SLOW_SEARCH)


def slowest_statement_ms(tree: SpanTree) -> float | None:
    statements = [s.duration_us for s in tree.spans if DB_QUERY in s.tags]
    return max(statements) / 1000 if statements else None


def statement_ms(lab: Lab) -> Truth:
    """The slowest SQL span of the trace answered (when it is a slow catalog request), else of
    any slow catalog trace of the window: within ± 10 % (20 ms at least)."""
    trees = answered_trees(lab, "slow_trace_id", slow, **SLOW_SEARCH)
    readings = [ms for ms in map(slowest_statement_ms, trees) if ms]
    if not readings:
        raise NotYet(f"no GET /products trace over {SLOW_MS} ms with SQL spans yet")
    return any_of([number(ms, 20, " ms", relative=0.1) for ms in readings])


def p95_peak_ms(lab: Lab) -> Truth:
    """The highest catalog p95 of the window, within ± 25 %."""
    peak = (lab.peak(P95) or 0) * 1000
    if not peak >= SLOW_MS:  # NaN too: no catalog request in a 30 s window
        raise NotYet(f"the catalog's p95 did not pass {SLOW_MS} ms since {lab.since_text}")
    return between(peak * 0.75, peak * 1.25, " ms", shown=f"{peak:.0f} ms", tolerance="± 25 %")


def database_saw_it(lab: Lab) -> str:
    longest = lab.peak('max(pg_stat_activity_max_tx_duration{job="postgres"})') or 0
    if longest * 1000 < SLOW_MS:
        raise NotYet(f"PostgreSQL's longest transaction was {longest * 1000:.0f} ms "
                     f"(pg_stat_activity_max_tx_duration); browse while the fault is on")
    return f"PostgreSQL saw a transaction of {longest * 1000:.0f} ms running"


QUESTIONS = [
    Question("slow_trace_id", f"The trace id of a catalog request (GET /products) slower than "
             f"{SLOW_MS} ms?", slow_trace,
             "switch the fault on (./lab chaos set slow_query_ms=800) and browse; then search "
             "Jaeger: service kodekloud-record-store-api, operation GET /products, Min Duration "
             "500ms"),
    Question("statement_ms", "How long, in ms, did the slowest SQL statement of that trace take?",
             statement_ms, "open the slow trace and read the duration of its longest SELECT "
             "span (the one whose db.query.text holds the pg_sleep)"),
    Question("p95_peak_ms", "The highest p95 latency of /products, in ms, in Prometheus or the "
             "Service Health dashboard?", p95_peak_ms,
             "graph the catalog p95 of the README's What to look at in Prometheus over the "
             "time the fault was on (or ./lab dashboard \"Service Health\", API latency p95 by "
             "route), and read its highest point"),
]

STEPS = [
    Step("PostgreSQL's own metrics show the long query", database_saw_it,
         "keep browsing for 15 s while the fault is on: the exporter samples every 5 s"),
    Step("The fault is off and the catalog is fast again",
         lambda lab: f"{lab.faults_off()}; {lab.catalog_fast()}",
         "switch it off: ./lab chaos reset"),
]

if __name__ == "__main__":
    main("Exercise 05: slow queries", STEPS, QUESTIONS)
