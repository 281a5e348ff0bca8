"""Exercise 16 on the native stack: a series of two short rounds (a stopped worker, answered
once WorkerDown fires, then a stopped exporter or broker, answered at once), the debrief's
timeline and score, the postmortem's skeleton filled in as a learner would, with the times read
off the signals, and its check: right times pass, wrong ones get hints. About 80 s."""

import re
import time
from pathlib import Path

import pytest

from gameday import games, postmortem
from tests.exercise_steps import (
    assert_passes,
    assert_wrong_answers_get_hints,
    check,
    failing,
    nothing_to_find,
    prometheus_range,
)
from tests.helpers import lab_run, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.disruptive]
QUICK = ("db-exporter-down", "alertmanager-down", "broker-down", "db-down")  # a stop, a start


def series_seed() -> int:
    """A seed whose first round stops the worker and whose second is over in seconds."""
    return next(s for s in range(100_000) if games.pick(s).name == "worker-down"
                and games.pick(games.next_seed(s + 1, ["worker-down"])).name in QUICK)


def first_point(lab, expr: str, since: float) -> float:
    """When `expr` first had a sample since `since`, as its Prometheus graph shows (5 s)."""
    points = [float(t) for s in prometheus_range(lab, expr, since) for t, _ in s["values"]]
    return min(t for t in points if t >= since)


def utc(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts))


@pytest.fixture
def no_game_left(lab):
    """Whatever happens, no game or series is left running for the tests after this one."""
    yield
    if games.load(lab.home).get("current"):
        lab_run(lab, "gameday", "stop")  # the fault off, the series over


def test_a_postmortem_with_the_times_the_signals_show_passes(lab, no_game_left):
    since = time.time()
    rc, report = check(lab, "16", since)
    assert rc == 1 and nothing_to_find(report), report
    r = lab_run(lab, "gameday", "start", "--seed", str(series_seed()), "--rounds", "2")
    assert r.returncode == 0 and "round 1 of 2" in r.stdout, r.stdout + r.stderr
    first = games.load(lab.home)["current"]
    # The learner watches the alerts, and answers once WorkerDown fires.
    firing = 'ALERTS{alertname="WorkerDown",alertstate="firing"}'
    wait_for(lambda: prometheus_range(lab, firing, first["started_at"]), 60,
             "WorkerDown to fire", interval_s=1)
    answered = lab_run(lab, "gameday", "answer", "worker-down")
    out = answered.stdout
    assert answered.returncode == 0 and "Points: 100 (" in out, out + answered.stderr
    # The first alert that went firing after the fault: WorkerDown, unless one of an earlier
    # test's leftovers (OrdersNotFinal, say) went firing first, as Prometheus's graph shows.
    named = re.search(r"first alert firing: (\w+)", out)
    assert named and "recovered: /health answers 200" in out, out
    went_firing = {s["metric"]["alertname"] for s in prometheus_range(
        lab, 'ALERTS{alertstate="firing"}', first["started_at"])}
    assert {"WorkerDown", named.group(1)} <= went_firing, (named.group(1), went_firing)
    assert "round 2 of 2" in out, "the next round begins once the lab is healthy"
    second = games.load(lab.home)["current"]
    assert second["round"] == 2 and second["cause"] in QUICK
    last = lab_run(lab, "gameday", "answer", second["cause"])
    assert last.returncode == 0 and "The series is over: 200 points in 2 of 2" in last.stdout
    assert games.load(lab.home)["series"] is None
    shown = lab_run(lab, "progress").stdout
    assert "last series 200 points in 2 of 2 round(s)" in shown, shown

    latest = lab_run(lab, "gameday", "postmortem")  # the last game's: the check's default
    assert Path(latest.stdout.splitlines()[0]).name == f"{games.game_id(second['started_at'])}.md"
    assert "still to fill in" in failing(check(lab, "16", since)[1])[2]
    gid = games.game_id(first["started_at"])
    written = lab_run(lab, "gameday", "postmortem", "--game", gid)
    path = Path(written.stdout.splitlines()[0])
    assert written.returncode == 0 and path.name == f"{gid}.md", written.stdout
    skeleton = path.read_text()
    report = check(lab, "16", since, 0, {"postmortem": path})[1]
    assert "still to fill in" in failing(report)[2] and "Actions" in failing(report)[2]

    # The times, read off the signals: the worker's graph, the alert's, the recovery line.
    down = first_point(lab, 'up{job="worker"} == 0', first["started_at"])
    fired = first_point(lab, f'ALERTS{{alertname="{named.group(1)}",alertstate="firing"}}',
                        first["started_at"])
    recovered = next(line for line in skeleton.splitlines() if "recovered:" in line)
    filled = (skeleton
              .replace("- Start: TODO HH:MM:SS", f"- Start: {utc(down)}")
              .replace("- End: TODO HH:MM:SS", f"- End: {recovered[2:10]}")
              .replace("- Detected at: TODO HH:MM:SS", f"- Detected at: {utc(fired)}"))
    filled = "\n".join(line.replace(postmortem.TODO, "Written") for line in filled.splitlines())
    path.write_text(filled)
    report = assert_passes(lab, "16", since, 30, {"postmortem": path})
    assert "every section is filled in" in report["steps"][1]["detail"]
    assert_wrong_answers_get_hints(lab, "16", since, {"postmortem": path}, {
        "detected_at": utc(fired - 600), "impact_end": utc(down - 300)})
    report = check(lab, "16", since, 0, {"postmortem": path, "impact_start": "noon"})[1]
    assert "not what the signals say" in report["questions"][1]["detail"]
