"""Exercise 13 on the native stack, as its README runs it: `./lab sampling 0.1`, checkouts with
one payment in twenty declined, the answers read the learner's way (the traceresponse header
of each checkout says whether its trace was kept, an exemplar looked up in the trace store,
the orders' own statuses), right (the check passes once sampling is off again) and wrong
(hints that never say the answer). About 70 s of stack time: two restarts of the API and the
worker, 150 checkouts."""

import httpx
import pytest

from labkit.sampling import periods
from tests.exercise_steps import (
    assert_passes,
    assert_wrong_answers_get_hints,
    before,
    check,
    exemplar_trace_ids,
    failing,
    jaeger_trace,
    jaeger_traces,
    wrong,
)
from tests.helpers import get_json, lab_command, lab_run, wait_for

# Alone: on the second stack, beside the disruptive phase (the suite balances the two).
pytestmark = [pytest.mark.stack, pytest.mark.disruptive, pytest.mark.alone]

API = "kodekloud-record-store-api"
NO_TRACE = "0123456789abcdef0123456789abcdef"
CHECKOUTS, BATCH = 150, 25
COUNTED = 'sum(recordstore_checkouts_total{job="api"})'


def counted(lab) -> float:
    query = httpx.QueryParams({"query": COUNTED})
    result = get_json(lab.url("PROMETHEUS_PORT", f"/api/v1/query?{query}"))["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def sampled(response: httpx.Response) -> bool:
    """The W3C sampled flag of the traceresponse header: the trace is kept."""
    return bool(int(response.headers["traceresponse"].rsplit("-", 1)[1], 16) & 1)


def final_orders(lab, order_ids: list[int]) -> dict[int, str] | None:
    with httpx.Client(base_url=lab.url("GATEWAY_PORT"), timeout=30) as client:
        statuses = {o: client.get(f"/orders/{o}").json()["status"] for o in order_ids}
    return statuses if all(s in ("confirmed", "failed") for s in statuses.values()) else None


@pytest.mark.timeout(300)
def test_13_sampling_what_one_trace_in_ten_keeps(lab, chaos):
    since, _ = before(lab, "13")
    try:
        lab_command(lab, "sampling", "0.1")
        assert "10 % of the traces kept" in lab_run(lab, "status").stdout
        start, until, ratio = periods(lab.home)[-1]
        assert (until, ratio) == (None, 0.1) and start >= since
        chaos("payment_failure_rate=0.05")
        kept: dict[int, bool] = {}  # order id: its trace kept
        with httpx.Client(base_url=lab.url("GATEWAY_PORT"), timeout=30) as client:
            for batch in range(CHECKOUTS // BATCH):  # each batch scraped: exemplars of each
                base = counted(lab)
                for i in range(BATCH):
                    r = client.post("/checkout", json={"product_id": 1 + (batch + i) % 10})
                    assert r.status_code == 202, r.text
                    assert r.json()["trace_id"] in r.headers["traceresponse"]
                    kept[r.json()["order_id"]] = sampled(r)
                wait_for(lambda base=base: counted(lab) >= base + BATCH, 30,
                         "Prometheus to count the batch")
        share = 100 * sum(kept.values()) / len(kept)
        assert 0 < share < 30, share  # one in ten, give or take
        def kept_traces() -> list[dict] | None:
            found = jaeger_traces(lab, start, service=API, operation="POST /checkout",
                                  limit="1000")
            return found if len(found) == sum(kept.values()) else None

        traces = wait_for(kept_traces, 30, "the kept traces, and no other, in the trace store")
        exemplars = exemplar_trace_ids(lab, start, "/checkout", 0)
        unkept = [t for t in exemplars if not jaeger_trace(lab, t)["spans"]]
        assert unkept, exemplars  # nine in ten name a trace never kept
        statuses = wait_for(lambda: final_orders(lab, list(kept)), 90, "every order final",
                            interval_s=1)
        failed = [o for o, s in statuses.items() if s == "failed"]
        assert failed, "one payment in twenty declined"
        answers = {"kept_share": round(share, 1), "unkept_trace_id": unkept[0],
                   "failed_orders": len(failed),
                   "failed_traced": sum(kept[o] for o in failed)}
        def judged() -> dict | None:  # once Prometheus has scraped the last orders
            report = check(lab, "13", since, 0, answers)[1]
            return report if not wrong(report) else None

        report = wait_for(judged, 60, "the answers judged right")
        assert set(failing(report)) == {2}, report  # the fault and the sampling are still on
        kept_trace = traces[0]["traceID"]
        assert_wrong_answers_get_hints(lab, "13", since, {}, {
            "kept_share": 99, "unkept_trace_id": kept_trace, "failed_orders": 999,
            "failed_traced": len(failed) + 5})
        short = check(lab, "13", since, 0, {"unkept_trace_id": "ab"})[1]["questions"]
        assert "32 hex digits" in next(q["hint"] for q in short if q["key"] == "unkept_trace_id")
        lab_command(lab, "chaos", "reset")
    finally:
        lab_command(lab, "sampling", "off")
    assert "every trace kept" in lab_run(lab, "sampling").stdout
    assert_passes(lab, "13", since, wait_s=60, answers=answers)
