"""A game's rules: the pick of a cause from a seed, the grading of an answer and its points,
the rounds of a series, and the record of the games played (`gameday.json` in the lab's home),
which the checks of exercises 15 and 16 read too."""

import json
import random
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gameday.causes import BY_CAUSE, CAUSES, Cause

RECORD = "gameday.json"


def pick(seed: int) -> Cause:
    """The cause a seed picks: the same one for the same seed, on every machine."""
    return random.Random(seed).choice(CAUSES)


def seed_for(name: str) -> int:
    """The smallest seed that picks the cause `name`."""
    return next(s for s in range(10_000) if pick(s).name == name)


def cause(answer: str) -> Cause:
    """The cause an answer names (any case); ValueError listing the causes otherwise."""
    found = BY_CAUSE.get(answer.strip().lower())
    if found is None:
        raise ValueError(f"no cause {answer!r}; the causes are: {', '.join(BY_CAUSE)}")
    return found


def next_seed(seed: int, played: Iterable[str]) -> int:
    """The first seed from `seed` on that picks a cause not in `played` (the causes a series
    played already); `seed` itself once every cause was played."""
    played = set(played)
    if set(BY_CAUSE) <= played:
        return seed
    return next(s for s in range(seed, seed + 100_000) if pick(s).name not in played)


def game_id(started_at: float) -> str:
    """A game's name, from when it started (UTC): 20261207-083500."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(started_at))


# --- points: a right answer earns 100, less what its hints and its time past par cost --------
RIGHT_POINTS = 100
HINT_COST = 15  # each hint taken
PAR_S = 300  # five minutes to a diagnosis cost nothing
LATE_COST = 1  # each 10 s past par ...
LATE_MAX = 40  # ... at most this: a right answer earns 15 at least, a wrong one 0
SCORING = (f"a right answer earns {RIGHT_POINTS} points, less {HINT_COST} per hint and "
           f"{LATE_COST} per 10 s past {PAR_S // 60} minutes, up to {LATE_MAX}; a wrong one "
           "earns 0")


def points(right: bool, hints: int, seconds: float) -> int:
    if not right:
        return 0
    late = min(LATE_MAX, LATE_COST * int(max(0.0, seconds - PAR_S) // 10))
    return RIGHT_POINTS - HINT_COST * hints - late


def grade(game: dict[str, Any], answer: str, now: float) -> dict[str, Any]:
    """The verdict on an answer to a running game (ValueError for an unknown cause)."""
    said = cause(answer)
    right = said.name == game["cause"]
    seconds = round(now - game["started_at"], 1)
    return {**game, "answer": said.name, "right": right, "answered_at": now,
            "seconds": seconds, "points": points(right, game["hints"], seconds)}


def find(record: dict[str, Any], wanted: str = "") -> dict[str, Any]:
    """A game played, by its id (the newest when `wanted` is empty); LookupError otherwise."""
    played = [g for g in record["played"] if not wanted or game_id(g["started_at"]) == wanted]
    if not played:
        known = ", ".join(game_id(g["started_at"]) for g in record["played"][-5:])
        raise LookupError(f"no game {wanted} was played; the last ones: {known}" if wanted
                          else "no game day was played yet: ./lab gameday start")
    return played[-1]


def load(home: Path) -> dict[str, Any]:
    path = home / RECORD
    if not path.is_file():
        return {"current": None, "played": []}
    return json.loads(path.read_text())


def save(home: Path, record: dict[str, Any]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(home / RECORD)
