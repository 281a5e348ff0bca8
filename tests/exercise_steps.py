"""Running an exercise's check and its steps against a stack, as the exercise README says:
shared by the native exercise tests and the compose run (the same steps, other commands)."""

import itertools
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx

from labctl.config import ROOT, LabConfig
from tests.helpers import get_json, lab_run, wait_for

JOURNEY = ROOT / "scripts" / "trace_purchase_journey.py"


def check(lab: LabConfig, exercise: str, since: float, wait_s: float = 0,
          answers: dict[str, object] | None = None, *extra: str) -> tuple[int, dict]:
    """`./lab check NN --json`, looking at what happened since `since`, with these answers."""
    given = [f"--answer={key}={value}" for key, value in (answers or {}).items()]
    r = lab_run(lab, "check", exercise, "--", "--json", "--since", str(since),
                "--wait", str(wait_s), *given, *extra, timeout_s=wait_s + 120)
    assert r.stdout, r.stderr
    return r.returncode, json.loads(r.stdout)


def failing(report: dict) -> dict[int, str]:
    return {s["number"]: s["detail"] for s in report["steps"] if not s["ok"]}


def wrong(report: dict) -> dict[str, str]:
    """The questions not answered right: {key: what the check said}."""
    return {q["key"]: q["detail"] for q in report.get("questions", []) if not q["ok"]}


def nothing_to_find(report: dict) -> bool:
    """The check's first question has no answer in the signals yet (its first step does not
    hold, for a check without questions)."""
    questions = report.get("questions") or []
    if questions:
        return questions[0]["detail"].startswith("the signals hold no answer yet")
    return 1 in failing(report)


def before(lab: LabConfig, *exercises: str) -> tuple[float, list[dict]]:
    """A `since` from which no exercise's signals hold an answer yet (the traffic of earlier
    tests has left the windows it looks at), and the checks' reports then: each fails."""
    seen: dict = {}

    def quiet() -> float | None:
        since = time.time()
        seen["reports"] = [check(lab, exercise, since) for exercise in exercises]
        return since if all(rc == 1 and nothing_to_find(report)
                            for rc, report in seen["reports"]) else None

    since = wait_for(quiet, 90, lambda: f"step 1 of {exercises} not to hold: {seen}")
    return since, [report for _, report in seen["reports"]]


def assert_passes(lab: LabConfig, exercise: str, since: float, wait_s: float = 120,
                  answers: dict[str, object] | None = None) -> dict:
    rc, report = check(lab, exercise, since, wait_s, answers)
    assert (rc, wrong(report), failing(report)) == (0, {}, {}), report
    return report


def assert_wrong_answers_get_hints(lab: LabConfig, exercise: str, since: float,
                                   right: dict[str, object],
                                   wrong_answers: dict[str, object]) -> None:
    """Wrong answers fail, each with a hint of where to look, and neither the terminal output
    nor the JSON says what the right answer is (which --reveal, asked afterwards, does)."""
    answers = {**right, **wrong_answers}
    text = lab_run(lab, "check", exercise, "--", "--since", str(since),
                   *[f"--answer={k}={v}" for k, v in answers.items()])
    rc, report = check(lab, exercise, since, 0, answers)
    revealed = check(lab, exercise, since, 0, answers, "--reveal")[1]
    truths = {q["key"]: q["answer"] or "" for q in revealed["questions"]}
    assert text.returncode == rc == 1 and set(wrong(report)) >= set(wrong_answers), report
    for q in (q for q in report["questions"] if q["key"] in wrong_answers):
        assert q["hint"] and q["answer"] is None, q
        for truth in [t for t in truths[q["key"]].split(" or ") if len(t) >= 3]:
            assert truth.lower() not in (q["detail"] + q["hint"]).lower(), (truth, q)
            if len(truth) >= 8:  # an id or a name: nowhere in what the terminal shows
                assert truth.lower() not in text.stdout.lower(), (truth, text.stdout)
    assert "where to look:" in text.stdout and "the signals say:" not in text.stdout


# --- what a learner reads off the signals: the right answers, found the learner's way ---------
def prometheus_range(lab: LabConfig, expr: str, since: float) -> list[dict]:
    """A range query from `since` until now, a point every 5 s (as a Prometheus graph)."""
    end = time.time()
    query = httpx.QueryParams({"query": expr, "start": since, "end": end, "step": 5})
    body = get_json(lab.url("PROMETHEUS_PORT", f"/api/v1/query_range?{query}"))
    return body["data"]["result"]


def graph_points(lab: LabConfig, expr: str, since: float) -> list[float]:
    return [float(v) for series in prometheus_range(lab, expr, since)
            for _, v in series["values"] if v != "NaN"]


def seconds_at_zero(lab: LabConfig, up_expr: str, since: float) -> int:
    return 5 * sum(1 for v in graph_points(lab, up_expr, since) if v == 0)


def delivered_at(lab: LabConfig, alertname: str, since: float) -> str:
    """When the alert's first firing notification of the window reached the receiver, as
    `./lab alerts` shows it: HH:MM:SS (UTC)."""
    shown = json.loads(lab_run(lab, "alerts", "--json").stdout)["delivered"]
    return min(n["received_at"] for n in shown
               if n["alertname"] == alertname and n["status"] == "firing"
               and datetime.fromisoformat(n["received_at"]).timestamp() >= since)[11:19]


def firing_began(lab: LabConfig, since: float) -> dict[str, float]:
    """When each alert went firing since `since`, as a graph of ALERTS{alertstate="firing"}
    in Prometheus shows it (one already firing at `since` does not count)."""
    began: dict[str, float] = {}
    for series in prometheus_range(lab, 'ALERTS{alertstate="firing"}', since):
        name, first = series["metric"]["alertname"], float(series["values"][0][0])
        began[name] = min(first, began.get(name, first))
    return {name: at for name, at in began.items() if at > since + 5}


def utc_clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def logged_duration_ms(lab: LabConfig, trace_id: str) -> float:
    """The duration_ms of the API's request_finished line of that trace (grep in its log)."""
    lines = (lab.home / "logs" / "api.log").read_text().splitlines()
    return next(json.loads(line)["duration_ms"] for line in lines
                if trace_id in line and '"request_finished"' in line)


def jaeger_traces(lab: LabConfig, since: float, **params: str) -> list[dict]:
    """Jaeger's search from `since` until now, as its UI runs it: the traces, newest first."""
    window = {"start": str(int(since * 1e6)), "end": str(int(time.time() * 1e6))}
    query = httpx.QueryParams({"limit": "20", **window, **params})
    return get_json(lab.url("JAEGER_UI_PORT", f"/api/traces?{query}"))["data"]


def jaeger_trace(lab: LabConfig, trace_id: str) -> dict:
    """The trace (no spans while Jaeger does not know it yet)."""
    body = get_json(lab.url("JAEGER_UI_PORT", f"/api/traces/{trace_id}")) or {}
    return (body.get("data") or [{"spans": []}])[0]


def exemplar_trace_ids(lab: LabConfig, since: float, handler: str, min_s: float) -> list[str]:
    """The trace ids of the API's exemplars of `handler` from `since`, of requests that took
    `min_s` or more, slowest first (as the exercises' curl of query_exemplars lists them)."""
    query = httpx.QueryParams({
        "query": f'http_request_duration_seconds_bucket{{job="api",handler="{handler}"}}',
        "start": since, "end": time.time()})
    found = get_json(lab.url("PROMETHEUS_PORT", f"/api/v1/query_exemplars?{query}"))["data"]
    slow = [e for series in found for e in series["exemplars"] if float(e["value"]) >= min_s]
    return [e["labels"]["trace_id"] for e in sorted(slow, key=lambda e: -float(e["value"]))]


def busiest_span(trace: dict, service: str) -> tuple[str, float]:
    """The span of `service` with the most time of its own, read off the trace as a learner
    does: its duration less its child spans' durations; (its name, that time in ms)."""
    children: dict[str, int] = {}
    for s in trace["spans"]:
        for ref in s.get("references") or []:
            if ref.get("refType") == "CHILD_OF" and ref.get("traceID") == s["traceID"]:
                children[ref["spanID"]] = children.get(ref["spanID"], 0) + s["duration"]
    services = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    own = {s["spanID"]: (s["operationName"], max(0, s["duration"] - children.get(s["spanID"], 0)))
           for s in trace["spans"] if services.get(s["processID"]) == service}
    name, us = max(own.values(), key=lambda named: named[1])
    return name, us / 1000


def trace_id_header(response: httpx.Response) -> str:
    trace_id = response.headers["X-Trace-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id), response.headers
    return trace_id


def until_steps_hold(lab: LabConfig, exercise: str, since: float, steps: set[int],
                     timeout_s: float, answerable: bool = False) -> dict:
    """Run the check again and again until the given steps hold (the others may not), and,
    when `answerable`, the signals hold an answer to each of its questions."""
    seen: dict = {}

    def holds() -> dict | None:
        report = seen["report"] = check(lab, exercise, since)[1]
        unanswerable = [q for q in report.get("questions", []) if answerable and
                        q["detail"].startswith("the signals hold no answer yet")]
        return report if steps.isdisjoint(failing(report)) and not unanswerable else None

    return wait_for(holds, timeout_s, lambda: f"steps {sorted(steps)} to hold: {seen}")


def journey(lab: LabConfig, *args: str) -> subprocess.CompletedProcess:
    """scripts/trace_purchase_journey.py with a bare python3, against the test stack."""
    urls = ["--base-url", lab.url("GATEWAY_PORT"), "--jaeger-url", lab.url("JAEGER_UI_PORT")]
    sub = list(args[:1]) if args[:1] == ("load-test",) else []
    rest = list(args[len(sub):])
    return subprocess.run([sys.executable, "-I", "-S", str(JOURNEY), *sub, *urls, *rest],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


@contextmanager
def shopping(lab: LabConfig, every_s: float = 0.5, product_ids: Sequence[int] = (1,),
             correlation_prefix: str = "") -> Iterator[None]:
    """A shopper checking out one record after another in the background (of `product_ids`
    in turn: a long run spreads its orders, so no record runs out for the tests after it),
    with correlation ids `<prefix>-<n>` when a prefix is given (else the gateway's)."""
    stop = threading.Event()

    def loop() -> None:
        products = itertools.cycle(product_ids)
        with httpx.Client(base_url=lab.url("GATEWAY_PORT"), timeout=30) as client:
            for n in itertools.count(1):
                if stop.wait(every_s):
                    return
                headers = {"X-Correlation-ID": f"{correlation_prefix}-{n}"} if (
                    correlation_prefix) else {}
                client.post("/checkout", json={"product_id": next(products)}, headers=headers)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
