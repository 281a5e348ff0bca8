#!/usr/bin/env python3
"""Exercise 15's check: what was wrong in the game day the learner played (asked only once the
game is over: its fault ended by the answer that graded it), whether that diagnosis was right,
and whether the lab is healthy again."""

import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from gameday import games  # noqa: E402
from labkit.checks import Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.questions import Truth, one_of  # noqa: E402

ANSWER = "./lab gameday answer CAUSE"


def played(lab: Lab) -> list[dict]:
    """The games answered in the window, from the record that ./lab gameday start begins."""
    record = games.load(lab.lab_home)
    return [g for g in record["played"] if g["answered_at"] >= lab.since]


def running(lab: Lab) -> str:
    """When the game day that runs now started ("" when none runs)."""
    game = games.load(lab.lab_home)["current"]
    return datetime.fromtimestamp(game["started_at"]).strftime("%H:%M:%S") if game else ""


def cause(lab: Lab) -> Truth:
    """The cause of a game answered in the window; none while a game runs (the check is no
    way to try causes on a running game: its answer is ./lab gameday answer, graded once)."""
    if started := running(lab):
        raise NotYet(f"a game day runs since {started}: diagnose it with {ANSWER} (it ends the "
                     "fault and grades you); the check asks once it is over")
    if not played(lab):
        raise NotYet(f"no game day answered since {lab.since_text}")
    return one_of(g["cause"] for g in played(lab))


def not_a_cause(lab: Lab, answer: str) -> str | None:
    try:
        games.cause(answer)
    except ValueError as exc:
        return str(exc)
    return None


def answered(lab: Lab) -> str:
    if (started := running(lab)) and not played(lab):
        raise NotYet(f"a game day runs since {started}, not answered yet")
    if not played(lab):
        raise NotYet(f"no game day answered since {lab.since_text}")
    return f"{len(played(lab))} game day(s) answered"


def right(lab: Lab) -> str:
    wins = [g for g in played(lab) if g["right"]]
    if not wins:
        raise NotYet(f"no right diagnosis yet: {len(played(lab))} game day(s) answered wrong")
    best = min(wins, key=lambda g: g["seconds"])
    return f"diagnosed right in {best['seconds']:.0f} s with {best['hints']} hint(s)"


def healthy(lab: Lab) -> str:
    if running(lab):
        raise NotYet("a game day is still running: its fault is on")
    return f"{lab.api_healthy()}; {lab.faults_off()}; {lab.purchase()}"


QUESTIONS = [
    Question("cause", "What was wrong in your game day (one of the causes the game listed when "
             "it started)?", cause,
             "play one (./lab gameday start), find what is wrong from the signals and answer "
             f"it: {ANSWER}; its verdict says whether you were right", wrong=not_a_cause),
]

STEPS = [
    Step("A game day was played and answered", answered,
         f"start one, ./lab gameday start, and answer it: {ANSWER}"),
    Step("The diagnosis was right", right,
         "play again: ./lab gameday start; if stuck, ./lab gameday hint"),
    Step("The game is over and the lab is healthy", healthy,
         f"answer the running game ({ANSWER}) or end it: ./lab gameday stop"),
]

if __name__ == "__main__":
    main("Exercise 15: a game day", STEPS, QUESTIONS)
