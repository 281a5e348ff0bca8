#!/usr/bin/env python3
"""Exercise 09's check: a game day was played and diagnosed right, from the signals, and the
lab is healthy again."""

import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from gameday import games  # noqa: E402
from labkit.checks import Lab, NotYet, Step, main  # noqa: E402


def played(lab: Lab) -> list[dict]:
    """The games answered in the window, from the record that ./lab gameday start begins."""
    record = games.load(lab.lab_home)
    return [g for g in record["played"] if g["answered_at"] >= lab.since]


def answered(lab: Lab) -> str:
    record = games.load(lab.lab_home)
    if record["current"] and not played(lab):
        started = datetime.fromtimestamp(record["current"]["started_at"]).strftime("%H:%M:%S")
        raise NotYet(f"a game day runs since {started}, not answered yet")
    if not played(lab):
        raise NotYet(f"no game day answered since {lab.since_text}")
    return f"{len(played(lab))} game day(s) answered"


def right(lab: Lab) -> str:
    wins = [g for g in played(lab) if g["right"]]
    if not wins:
        said = ", ".join(f"{g['answer']} (it was {g['cause']})" for g in played(lab))
        raise NotYet(f"no right diagnosis yet: {said or 'none answered'}")
    best = min(wins, key=lambda g: g["seconds"])
    return (f"{best['cause']} diagnosed right in {best['seconds']:.0f} s "
            f"with {best['hints']} hint(s)")


def healthy(lab: Lab) -> str:
    if games.load(lab.lab_home)["current"]:
        raise NotYet("a game day is still running: its fault is on")
    return f"{lab.api_healthy()}; {lab.faults_off()}; {lab.purchase()}"


STEPS = [
    Step("A game day was played and answered", answered,
         "start one, ./lab gameday start, and answer it: ./lab gameday answer CAUSE"),
    Step("The diagnosis was right", right,
         "play again: ./lab gameday start; if stuck, ./lab gameday hint"),
    Step("The game is over and the lab is healthy", healthy,
         "answer the running game (./lab gameday answer CAUSE) or end it: ./lab gameday stop"),
]

if __name__ == "__main__":
    main("Exercise 09: a game day", STEPS)
