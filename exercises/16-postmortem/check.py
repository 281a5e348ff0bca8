#!/usr/bin/env python3
"""Exercise 16's check: the postmortem of a game day the learner played. Every section is
filled in, and the times it gives (impact start and end, detection) match what the lab
recorded: the fault's start and the recovery (gameday.json), the first alert firing
(Prometheus's ALERTS), each within a minute. The times are read from the postmortem unless
given with --answer; its path is the one `./lab gameday postmortem` printed unless given."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from gameday import games, postmortem, timeline  # noqa: E402
from labkit.checks import Lab, NotYet, Question, Step, run  # noqa: E402
from labkit.questions import Truth, clock_time  # noqa: E402
from labkit.settings import lab_home  # noqa: E402

WITHIN_S = 60
WRITE = "./lab gameday postmortem"


def answered(lab: Lab) -> list[dict]:
    return [g for g in games.load(lab.lab_home)["played"] if g["answered_at"] >= lab.since]


def text(lab: Lab) -> str:
    where = Path(lab.answers.get("postmortem") or "").expanduser()
    if not where.is_file():
        raise NotYet(f"no postmortem at {where}: write one with {WRITE}")
    return where.read_text()


def game(lab: Lab) -> dict:
    """The game the postmortem is about (answered in the window)."""
    wanted = postmortem.game_of(text(lab))
    found = [g for g in answered(lab) if games.game_id(g["started_at"]) == wanted]
    if not found:
        raise NotYet(f"the postmortem is about game {wanted or '(none named)'}, not one "
                     f"answered since {lab.since_text}")
    return found[-1]


def the_file(lab: Lab) -> Truth:
    if not answered(lab):
        raise NotYet(f"no game day answered since {lab.since_text}")
    shown = str(postmortem.path(lab.lab_home, answered(lab)[-1]))

    def accepts(answer: str) -> bool:
        try:
            return bool(game(lab))
        except (NotYet, OSError):
            return False
    return Truth(shown, accepts)


def not_the_file(lab: Lab, answer: str) -> str | None:
    try:
        game(lab)
    except NotYet as exc:
        return str(exc)
    except OSError as exc:
        return f"the file cannot be read: {exc}"
    return None


def fired(lab: Lab) -> Truth:
    """The first alert that went firing after the fault started and before the answer; with
    none, the learner's own look: any time from the fault's start to the answer."""
    played = game(lab)
    start, end = played["started_at"], played["answered_at"]
    seen = timeline.alert_starts(lab.prometheus, start, end)
    if "error" in seen:  # Prometheus does not answer: what the game recorded
        seen = played.get("alerts") or {}
    at = (seen.get("firing") or [None, None])[1]
    if at is not None and at <= end:
        return clock_time(at, WITHIN_S)
    return clock_time((start + end) / 2, (end - start) / 2 + WITHIN_S)


def pending_not_firing(lab: Lab, answer: str) -> str | None:
    if not re.fullmatch(r"\s*\d{1,2}:\d{2}(:\d{2})?\s*(utc|z)?\s*", answer.lower()):
        return "answer a UTC clock time, HH:MM:SS"
    try:
        pending = (game(lab).get("alerts") or {}).get("pending")
    except NotYet:
        return None
    if pending and clock_time(pending[1], 5).accepts(answer):
        return ("that is when an alert went pending: it is detected when it fires, once its "
                "for: has passed (ALERTS{alertstate=\"firing\"})")
    return None


def started(lab: Lab) -> Truth:
    return clock_time(game(lab)["started_at"], WITHIN_S)


def ended(lab: Lab) -> Truth:
    played = game(lab)
    return clock_time(played.get("recovered_at") or played["answered_at"], WITHIN_S)


QUESTIONS = [
    Question("postmortem", "Which file holds your postmortem (the path the postmortem "
             "command printed)?", the_file,
             f"write it with {WRITE} (--game ID for another game than the last); it prints "
             "the path, under the lab's home (.lab/postmortems/)", wrong=not_the_file),
    Question("impact_start", "When (UTC, HH:MM:SS) were users first affected?", started,
             "when the fault started: the first line of the game's recorded timeline in the "
             "postmortem; Prometheus's graphs of the failing signal move then"),
    Question("impact_end", "When (UTC, HH:MM:SS) were they no longer affected?", ended,
             "when the lab was healthy again after your answer: the timeline's recovered line; "
             "/health and the first purchase that completed again"),
    Question("detected_at", "When (UTC, HH:MM:SS) did a signal first say that something was "
             "wrong?", fired,
             "the first alert that went firing after the fault started: graph "
             "ALERTS{alertstate=\"firing\"} in Prometheus over the game, or ./lab alerts "
             "(UTC); if none fired before your answer, when you first saw it yourself",
             wrong=pending_not_firing),
]


def sections_filled(lab: Lab) -> str:
    left = postmortem.unfilled(text(lab))
    if left:
        raise NotYet(f"still to fill in (a {postmortem.TODO} placeholder, or missing): "
                     f"{', '.join(left)}")
    return f"every section is filled in: {', '.join(postmortem.SECTIONS)}"


def a_game(lab: Lab) -> str:
    if not answered(lab):
        raise NotYet(f"no game day answered since {lab.since_text}")
    return f"{len(answered(lab))} game day(s) answered; the postmortem is about game " \
           f"{games.game_id(game(lab)['started_at'])}"


STEPS = [
    Step("A game day was answered, and its postmortem is written", a_game,
         f"play one (./lab gameday start, then ./lab gameday answer CAUSE), then {WRITE}"),
    Step("Every section of the postmortem is filled in", sections_filled,
         f"edit the file: replace each line starting with {postmortem.TODO}"),
]


def given(argv: list[str]) -> dict[str, str]:
    """The answers on the command line: --answer KEY=VALUE or --answer=KEY=VALUE."""
    pairs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--answer"]
    pairs += [a.removeprefix("--answer=") for a in argv if a.startswith("--answer=")]
    return dict(p.split("=", 1) for p in pairs if "=" in p)


def from_the_file(argv: list[str]) -> list[str]:
    """The answers the postmortem gives, for the keys the command line does not: its path
    (the last game's postmortem by default) and the times it states."""
    said = given(argv)
    extra = []
    where = said.get("postmortem", "")
    if not where:
        record = games.load(lab_home())
        if not record["played"]:
            return []
        where = str(postmortem.path(lab_home(), record["played"][-1]))
        extra.append(f"--answer=postmortem={where}")
    try:
        stated = postmortem.times(Path(where).expanduser().read_text())
    except OSError:
        return extra
    return extra + [f"--answer={k}={v}" for k, v in stated.items() if k not in said]


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "-h" not in argv and "--help" not in argv:
        argv += from_the_file(argv)
    sys.exit(run("Exercise 16: the postmortem", STEPS, argv, QUESTIONS,
                 exercise=Path(__file__).resolve().parent.name))
