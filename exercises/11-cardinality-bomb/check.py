#!/usr/bin/env python3
"""Exercise 11's check: what the learner found about a metric labelled by correlation id (its
name, the label, how many series it made, what it cost each scrape of the API), read against
Prometheus itself; then whether the fault is off and its series went stale."""

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit import http  # noqa: E402
from labkit.checks import Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.questions import Truth, any_of, normal, number, one_of  # noqa: E402

MIN_NEW_SERIES = 20  # fewer new series of one metric in the window: no bomb went off
ALL = '{__name__=~".+"}'
# A checkout's metrics are the API's. Other jobs' series churn too (RabbitMQ's per-channel
# metrics gain a few dozen when a component reconnects), with no checkout behind them.
API = '{__name__=~".+",job="api"}'
SCRAPE = 'scrape_samples_scraped{job="api"}'
FEW_VALUES = {"le": "le is a histogram's bucket bound: a fixed set of values, whatever the "
                    "traffic",
              "__name__": "__name__ has a value per metric name: it grows with new metrics, "
                          "not with checkouts",
              "instance": "instance has a value per scrape target", "job": "job has a value "
              "per scrape job"}


def counts(lab: Lab, expr: str) -> dict[str, float]:
    return {r["metric"].get("__name__", ""): float(r["value"][1]) for r in lab.query(expr)}


def grown(lab: Lab, selector: str = ALL) -> list[tuple[str, float]]:
    """Each metric's series in the window less its series in the minute before it, most
    first: a metric labelled by something without bound gains one with every new value."""
    if ("grown", selector) not in lab.memo:
        ago = max(1, math.ceil(time.time() - lab.since))
        now = counts(lab, f"count by (__name__) (last_over_time({selector}{lab.window}))")
        then = counts(lab, f"count by (__name__) (last_over_time({selector}[1m] offset {ago}s))")
        lab.memo["grown", selector] = sorted(((n, c - then.get(n, 0)) for n, c in now.items()),
                                             key=lambda named: -named[1])
    return lab.memo["grown", selector]


def bomb(lab: Lab) -> str:
    """The API's metric whose series grew most in the window, by MIN_NEW_SERIES at least."""
    name, more = (grown(lab, API) or [("", 0)])[0]
    if more < MIN_NEW_SERIES:
        raise NotYet(f"no metric gained {MIN_NEW_SERIES} series since {lab.since_text} (the "
                     f"most: {more:.0f})")
    return name


def series_of(lab: Lab) -> list[dict[str, str]]:
    """The label sets of the bomb's series in the window (stale ones too)."""
    if "series" not in lab.memo:
        lab.memo["series"] = [r["metric"] for r in
                              lab.query(f"last_over_time({bomb(lab)}{lab.window})")]
    return lab.memo["series"]


def metric(lab: Lab) -> Truth:
    name = bomb(lab)
    # As Prometheus names the series (_total), or as the API's /metrics names the family.
    return one_of([name, name.removesuffix("_total")], shown=name)


def old_metric(lab: Lab, answer: str) -> str | None:
    known = {normal(n): more for n, more in grown(lab)}
    if normal(answer) in known:
        return ("that metric is real, but it did not gain a series with each checkout (a "
                "metric of another job may grow when a component reconnects): "
                "compare the series counts now with before the fault (the README's "
                "topk query), or find the label whose values keep growing")
    return None


def label(lab: Lab) -> Truth:
    """The label of that metric with the most values in the window."""
    values: dict[str, set[str]] = {}
    for labels in series_of(lab):
        for key, value in labels.items():
            values.setdefault(key, set()).add(value)
    values.pop("__name__", None)
    if not values:
        raise NotYet("the metric has no labels in the window")
    return one_of([max(values, key=lambda k: len(values[k]))])


def few_values(lab: Lab, answer: str) -> str | None:
    return FEW_VALUES.get(normal(answer))


def tsdb_head_count(lab: Lab, name: str) -> float | None:
    """What /tsdb-status says of that metric's series (its top 10 only), if it lists it."""
    body = http.get(f"{lab.prometheus.base_url}/api/v1/status/tsdb").json()
    status = (body.get("data") if isinstance(body, dict) else None) or {}
    return next((float(m["value"]) for m in status.get("seriesCountByMetricName") or []
                 if m.get("name") == name), None)


def series(lab: Lab) -> Truth:
    """How many series of it the window held, within ± 20 % (5 at least): checkouts keep
    adding while the fault is on. The count /tsdb-status gives (the head block's, which may
    hold series from before the window) is right too."""
    made = [number(len(series_of(lab)), 5, relative=0.2)]
    head = tsdb_head_count(lab, bomb(lab))
    return any_of(made + ([number(head, 5, relative=0.2)] if head else []))


def scrape_drop(lab: Lab) -> Truth:
    """By how many samples each scrape of the API shrank once the fault was off: its peak in
    the window less its last value, within ± 20 % (10 at least)."""
    if lab.query(bomb(lab)):
        raise NotYet("the fault is still on: the API's scrapes shrink when it is off")
    drops = [float(r["value"][1]) for r in lab.query(
        f"max_over_time({SCRAPE}{lab.window}) - {SCRAPE}")]
    drops = [d for d in drops if d >= MIN_NEW_SERIES / 2]
    if not drops:
        raise NotYet(f"the API's scrapes did not shrink since {lab.since_text}")
    return any_of([number(d, 10, " samples", relative=0.2) for d in drops])


def went_stale(lab: Lab) -> str:
    """Said without the metric's name or its count: those are the questions' answers."""
    if lab.query(bomb(lab)):
        raise NotYet("Prometheus's last scrape of the API still has the series of the metric "
                     "that grew")
    return "the metric that grew has no series in Prometheus's last scrape: they went stale"


QUESTIONS = [
    Question("metric", "Which metric gained a series with every checkout?", metric,
             "switch the fault on, check out a hundred times, then open Prometheus's TSDB "
             "status (/tsdb-status): the series count by metric name; or graph topk(10, count "
             'by (__name__) ({__name__=~".+"}))', wrong=old_metric),
    Question("label", "Which of its labels made a series per checkout?", label,
             "/tsdb-status: the label names with the most values; a label whose values are "
             "per request, not per kind of request", wrong=few_values),
    Question("series", "How many series of it did Prometheus hold?", series,
             "count(last_over_time(METRIC[30m])) in Prometheus (METRIC: the one you found), "
             "or its line in /tsdb-status's series count by metric name"),
    Question("scrape_drop", "Once the fault was off, by how many samples did each scrape of "
             "the API shrink?", scrape_drop,
             'graph scrape_samples_scraped{job="api"} in Prometheus over the exercise: its '
             "peak less its level once the fault was off"),
]

STEPS = [
    Step("The fault is off", lambda lab: lab.faults_off(),
         "switch it off: ./lab chaos set cardinality_bomb=0 (or ./lab chaos reset)"),
    Step("Its series went stale: none in Prometheus's last scrape of the API", went_stale,
         "switch the fault off and wait a scrape (5 s): the API stops exposing the family"),
]

if __name__ == "__main__":
    main("Exercise 11: a cardinality bomb", STEPS, QUESTIONS)
