"""Exercise 11 on the native stack, as its README says: the cardinality bomb on, a shopper
checking out, the metric and its label found in Prometheus's TSDB status (what grew since
before the fault), its series counted with the README's query, the fault off, the API's scrape
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


def instant(lab: LabConfig, expr: str) -> list[dict]:
    query = httpx.QueryParams({"query": expr})
    return get_json(lab.url("PROMETHEUS_PORT", f"/api/v1/query?{query}"))["data"]["result"]


@pytest.mark.timeout(300)
def test_11_a_cardinality_bomb(lab, chaos):
    since, _ = before(lab, "11")
    then = tsdb_status(lab)
    chaos("cardinality_bomb=1")
    journeys = "recordstore_checkout_journeys_total"  # the test's own wait; the answers are read
    prefix = f"bomb11-{uuid.uuid4().hex[:8]}"
    with shopping(lab, every_s=0.1, product_ids=range(2, 14), correlation_prefix=prefix):
        wait_for(lambda: len(instant(lab, f'{journeys}{{correlation_id=~"{prefix}-.*"}}')) >= 40,
                 60, "40 of the shopper's journeys' series")
    # What grew in /tsdb-status since before the fault: the metric, and the label (the page
    # is computed anew every little while, not at each request).
    def grown() -> dict | None:
        status = tsdb_status(lab)
        by_name = status["seriesCountByMetricName"]
        return status if most_grown(by_name, then["seriesCountByMetricName"])[1] >= 30 else None

    now = wait_for(grown, 60, "a metric 30 series up in /tsdb-status")
    metric, _ = most_grown(now["seriesCountByMetricName"], then["seriesCountByMetricName"])
    label, _ = most_grown(now["labelValueCountByLabelName"], then["labelValueCountByLabelName"])
    assert (metric, label) == (journeys, "correlation_id"), (then, now)
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
