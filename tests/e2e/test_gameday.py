"""`./lab gameday` on the native stack: every cause starts, shows in the lab's own signals (the
checks' probes), is answered (right for half of them, wrong for the others), is debriefed (its
points, its timeline) and leaves the lab healthy; hints, background traffic and exercise 15's
check, in one game. The rounds and the postmortem: test_exercise_16_postmortem.py."""

import time

import pytest

from gameday import games
from gameday.causes import BY_CAUSE, CAUSES, Cause
from gameday.cli import lab_for
from tests.exercise_steps import (
    assert_passes,
    assert_wrong_answers_get_hints,
    check,
    failing,
    wrong,
)
from tests.helpers import lab_run, wait_for

pytestmark = [pytest.mark.stack, pytest.mark.disruptive]


def start(lab, cause: Cause, *extra: str) -> dict:
    r = lab_run(lab, "gameday", "start", "--seed", str(games.seed_for(cause.name)), *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    assert cause.name not in r.stdout.split("The causes:")[0], "the start gives nothing away"
    game = games.load(lab.home)["current"]
    assert game["cause"] == cause.name
    return game


def detected(lab, cause: Cause, since: float) -> str:
    probe = lab_for(lab, since=since)
    return wait_for(lambda: cause.shows(probe), 60, f"the lab's signals to show {cause.name}",
                    interval_s=1)


def assert_healthy(lab) -> None:
    status = lab_run(lab, "status")
    assert status.returncode == 0, status.stdout
    assert "No fault is switched on" in lab_run(lab, "chaos", "show").stdout


@pytest.mark.parametrize("cause", CAUSES, ids=[c.name for c in CAUSES])
def test_each_cause_is_seen_in_the_signals_answered_and_ended(lab, cause):
    right = CAUSES.index(cause) % 2 == 0
    said = cause.name if right else next(c.name for c in CAUSES if c is not cause)
    game = start(lab, cause)
    try:
        evidence = detected(lab, cause, game["started_at"])
    finally:
        answered = lab_run(lab, "gameday", "answer", said)
    assert answered.returncode == (0 if right else 1), answered.stdout + answered.stderr
    assert evidence
    out = answered.stdout
    verdict = next(line for line in out.splitlines() if not line.startswith("lab: "))
    assert verdict.startswith("Right:" if right else f"Wrong: you said {said};"), out
    assert f"{cause.title} ({cause.name})" in out and "Time to diagnosis:" in out
    assert all(line in out for line in cause.fastest), out
    record = games.load(lab.home)
    assert record["current"] is None
    played = record["played"][-1]
    assert {k: played[k] for k in ("cause", "answer", "right")} == {
        "cause": cause.name, "answer": said, "right": right}
    assert (played["points"] > 0) == right and f"Points: {played['points']} (" in out, out
    assert f"the fault started: {cause.title}" in out and "recovered: /health answers 200" in out
    assert_healthy(lab)


def test_a_game_with_hints_and_traffic_passes_exercise_15(lab):
    since = time.time()
    rc, report = check(lab, "15", since)
    assert rc == 1 and 1 in failing(report), report
    cause = BY_CAUSE["payment-failures"]
    start(lab, cause, "--traffic")
    assert lab_run(lab, "traffic", "status").returncode == 0, "the game started shoppers"
    again = lab_run(lab, "gameday", "start")
    assert again.returncode == 1 and "already running" in again.stderr
    report = check(lab, "15", since, 0, {"cause": cause.name})[1]
    assert "not answered yet" in failing(report)[1]
    assert "runs since" in wrong(report)["cause"], "no trying causes on a running game"
    hints = [lab_run(lab, "gameday", "hint", timeout_s=60) for _ in range(4)]
    assert [h.stdout.splitlines()[0][:10] for h in hints] == [
        "Hint 1 of ", "Hint 2 of ", "Hint 3 of ", "Hint 3 of "], [h.stdout for h in hints]
    assert "payment_declined" in hints[0].stdout, hints[0].stdout  # the order's reason
    assert "in error: worker process_order: payment_declined" in hints[2].stdout, hints[2].stdout
    assert all(cause.name not in h.stdout for h in hints), "a hint never names the cause"
    status = lab_run(lab, "gameday", "status")
    assert status.returncode == 0 and "hints used: 3 of 3" in status.stdout, status.stdout
    refused = lab_run(lab, "gameday", "answer", "gremlins")
    assert refused.returncode == 1 and "no cause 'gremlins'" in refused.stderr
    assert games.load(lab.home)["current"], "a refused answer leaves the game running"
    answered = lab_run(lab, "gameday", "answer", cause.name)
    assert answered.returncode == 0 and "with 3 hints" in answered.stdout, answered.stdout
    played = games.load(lab.home)["played"][-1]
    assert played["points"] == games.points(True, 3, played["seconds"]) <= 55
    assert "hint 3 taken" in answered.stdout and len(played["hint_at"]) == 3
    assert lab_run(lab, "traffic", "status").returncode == 3, "its shoppers went with it"
    assert_wrong_answers_get_hints(lab, "15", since, {}, {"cause": "db-down"})
    assert "the causes are" in check(lab, "15", since, 0, {"cause": "gremlins"})[1][
        "questions"][0]["hint"]
    report = assert_passes(lab, "15", since, answers={"cause": cause.name})
    assert "diagnosed right in" in report["steps"][1]["detail"]
    assert_healthy(lab)
