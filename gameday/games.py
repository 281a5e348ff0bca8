"""A game's rules: the pick of a cause from a seed, the grading of an answer, and the record of
the games played (`gameday.json` in the lab's home), which exercise 15's check reads too."""

import json
import random
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


def grade(game: dict[str, Any], answer: str, now: float) -> dict[str, Any]:
    """The verdict on an answer to a running game (ValueError for an unknown cause)."""
    said = cause(answer)
    return {**game, "answer": said.name, "right": said.name == game["cause"],
            "answered_at": now, "seconds": round(now - game["started_at"], 1)}


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
