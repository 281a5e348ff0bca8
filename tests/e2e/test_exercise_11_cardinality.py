"""Exercise 11 on the native stack, as its README says: the cardinality bomb on, a shopper
checking out, the metric found as the README's query finds it (the API's metric whose series
grew since before the fault), its label with the most values (in /tsdb-status too), its
series counted with the README's query, the fault off, the API's scrape
shrunk and the series stale; the check answered right (it passes) and wrong (hints that never
say the answer). Stack time: about 40 s (a fresh stack: 39 s)."""

import time
import uuid

import httpx
import pytest

from labctl.config import LabConfig
from tests.exercise_steps import (
    assert_passes,
    assert_wrong_answers_get_hints,
    before,
    check,
    failing,
    graph_points,
    shopping,
    wrong,
)
from tests.helpers import get_json, lab_command, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.disruptive]


def tsdb_status(lab: LabConfig) -> dict[str, dict[str, float]]:
    """/tsdb-status's top 10s: series by metric name, values by label name."""
    data = get_json(lab.url("PROMETHEUS_PORT", "/api/v1/status/tsdb"))["data"]
    return {key: {e["name"]: float(e["value"]) for e in data[key]}
            for key in ("seriesCountByMetricName", "labelValueCountByLabelName")}


def most_grown(now: dict[str, float], then: dict[str, float]) -> tuple[str, float]:
    name = max(now, key=lambda name: now[name] - then.get(name, 0))
    return name, now[name] - then.get(name, 0)


def api_series(lab: LabConfig) -> dict[str, float]:
    """The README's step 4 query: the API's series now, by metric name."""
    return {r["metric"]["__name__"]: float(r["value"][1])
            for r in instant(lab, 'count by (__name__) ({job="api"})')}


def most_values(series: list[dict]) -> str:
    """The label with the most values among these series."""
    values: dict[str, set[str]] = {}
    for s in series:
        for key, value in s["metric"].items():
            values.setdefault(key, set()).add(value)
    values.pop("__name__", None)
    return max(values, key=lambda key: len(values[key]))


def instant(lab: LabConfig, expr: str) -> list[dict]:
    query = httpx.QueryParams({"query": expr})
    return get_json(lab.url("PROMETHEUS_PORT", f"/api/v1/query?{query}"))["data"]["result"]


@pytest.mark.timeout(300)
def test_11_a_cardinality_bomb(lab, chaos):
    since, _ = before(lab, "11")
    api_before = api_series(lab)
    chaos("cardinality_bomb=1")
    journeys = "recordstore_checkout_journeys_total"  # the test's own wait; the answers are read
    prefix = f"bomb11-{uuid.uuid4().hex[:8]}"
    with shopping(lab, every_s=0.1, product_ids=range(2, 14), correlation_prefix=prefix):
        wait_for(lambda: len(instant(lab, f'{journeys}{{correlation_id=~"{prefix}-.*"}}')) >= 40,
                 60, "40 of the shopper's journeys' series")
    # What grew since before the fault, as the README's step 4 reads it: the API's metric
    # whose series count climbed (its query), and that metric's label with the most values;
    # /tsdb-status shows the label among its top 10 (computed anew every little while).
    metric, more = most_grown(api_series(lab), api_before)
    assert more >= 30, (api_before, api_series(lab))
    label = most_values(instant(lab, metric))
    assert (metric, label) == (journeys, "correlation_id")
    wait_for(lambda: "correlation_id" in tsdb_status(lab)["labelValueCountByLabelName"], 60,
             "correlation_id among /tsdb-status's label names with the most values")
    window = f"{int(time.time() - since) + 10}s"
    series = float(instant(lab, f"count(last_over_time({metric}[{window}]))")[0]["value"][1])
    answers = {"metric": metric, "label": label, "series": round(series)}
    rc, report = check(lab, "11", since, 0, answers)
    assert set(wrong(report)) == {"scrape_drop"} and set(failing(report)) == {1, 2}, report
    assert "the fault is still on" in wrong(report)["scrape_drop"], report

    lab_command(lab, "chaos", "reset")
    wait_for(lambda: not instant(lab, metric), 30, "the journeys' series to go stale")
    wait_for(lambda: graph_points(lab, 'scrape_samples_scraped{job="api"}', since)[-1] <
             max(graph_points(lab, 'scrape_samples_scraped{job="api"}', since)), 30,
             "a graph point of the API's scrape after the fault")
    scraped = graph_points(lab, 'scrape_samples_scraped{job="api"}', since)
    answers["scrape_drop"] = round(max(scraped) - scraped[-1])
    assert answers["scrape_drop"] >= 30, scraped

    assert_wrong_answers_get_hints(lab, "11", since, {}, {
        "metric": "http_request_duration_seconds_bucket", "label": "le", "series": 100000,
        "scrape_drop": 99999})
    assert_passes(lab, "11", since, wait_s=30, answers=answers)
