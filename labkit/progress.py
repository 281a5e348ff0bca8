"""The learner's progress through the exercises, kept offline in `<lab home>/progress.json`.

Each check run records its exercise: in progress until a run where every question is right and
every step holds (then passed, with when), the hints it showed and the answers it revealed.
Each game day answered records its points, and each series of rounds its total (gameday/).
`./lab progress` prints the record. Standard library only, like every learner-facing script.
"""

import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .settings import REPO, lab_home

FILE = "progress.json"
NOT_STARTED, IN_PROGRESS, PASSED = "not started", "in progress", "passed"


def path(home: Path | None = None) -> Path:
    return (home or lab_home()) / FILE


def _data(home: Path | None) -> dict[str, Any]:
    try:
        data = json.loads(path(home).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(data: dict[str, Any], home: Path | None) -> None:
    target = path(home)
    target.parent.mkdir(parents=True, exist_ok=True)
    draft = target.with_name(f".{FILE}.{os.getpid()}")
    # "catalog": every exercise, so a reader of the file alone (the storefront's #/progress
    # page) can list the ones not started too.
    data = {**data, "catalog": catalog()}
    draft.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    draft.replace(target)  # whole or not at all: a reader never sees half a record


def load(home: Path | None = None) -> dict[str, dict[str, Any]]:
    """{exercise folder: its record}; empty when nothing was recorded (or the file is torn)."""
    return _data(home).get("exercises", {})


def game_day(home: Path | None = None) -> dict[str, Any]:
    """The game days' record: games, right, points (their sum), best, series (each finished
    series of rounds: rounds, played, points, at); empty before the first game."""
    return _data(home).get("gameday", {})


def record(exercise: str, passed: bool, hints: list[str], revealed: list[str],
           home: Path | None = None, now: float | None = None) -> dict[str, Any]:
    """Add one check run to the record (hints: the keys of the questions whose hint it showed;
    revealed: the keys whose answers --reveal showed). Returns the exercise's record."""
    now = time.time() if now is None else now
    data = _data(home)
    exercises = data.setdefault("exercises", {})
    entry = exercises.setdefault(exercise, {
        "status": IN_PROGRESS, "started_at": now, "runs": 0, "hints": 0, "revealed": [],
    })
    entry["runs"] += 1
    entry["last_run_at"] = now
    entry["hints"] += len(hints)
    entry["revealed"] = sorted(set(entry["revealed"]) | set(revealed))
    if passed and entry["status"] != PASSED:
        entry.update(status=PASSED, passed_at=now)
    _save(data, home)
    return entry


def record_game(points: int, right: bool, home: Path | None = None,
                now: float | None = None) -> dict[str, Any]:
    """Add one game day answered, with its points; returns the game days' record."""
    data = _data(home)
    entry = data.setdefault("gameday", {"games": 0, "right": 0, "points": 0, "best": 0,
                                        "series": []})
    entry["games"] += 1
    entry["right"] += int(right)
    entry["points"] += points
    entry["best"] = max(entry["best"], points)
    entry["last_at"] = time.time() if now is None else now
    _save(data, home)
    return entry


def record_series(rounds: int, played: int, points: int, home: Path | None = None,
                  now: float | None = None) -> dict[str, Any]:
    """Add a series of rounds that ended (`played` of `rounds` answered) and its total."""
    data = _data(home)
    entry = data.setdefault("gameday", {"games": 0, "right": 0, "points": 0, "best": 0,
                                        "series": []})
    entry["series"].append({"rounds": rounds, "played": played, "points": points,
                            "at": time.time() if now is None else now})
    _save(data, home)
    return entry


def exercises() -> list[str]:
    """The exercise folders, in order: 01-follow-a-purchase, ..."""
    return sorted(p.name for p in (REPO / "exercises").glob("[0-9][0-9]-*") if p.is_dir())


def catalog() -> list[dict[str, str]]:
    """Each exercise's folder and title, as its README's first line names it."""
    out = []
    for name in exercises():
        try:
            first = (REPO / "exercises" / name / "README.md").read_text().splitlines()[0]
        except (OSError, IndexError):
            first = ""
        out.append({"exercise": name, "title": first.lstrip("# ").partition(" · ")[2] or name})
    return out


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def lines(home: Path | None = None) -> list[str]:
    """The record, one line per exercise, as `./lab progress` prints it."""
    record_ = load(home)
    out = []
    for name in exercises():
        entry = record_.get(name)
        if entry is None:
            out.append(f"  {name:32} {NOT_STARTED}")
            continue
        status = entry["status"]
        when = _when(entry["passed_at"] if status == PASSED else entry["last_run_at"])
        extra = [f"{entry['runs']} run(s)", f"{entry['hints']} hint(s)"]
        if entry["revealed"]:
            extra.append(f"answers revealed: {', '.join(entry['revealed'])}")
        out.append(f"  {name:32} {status:12} {when}  ({'; '.join(extra)})")
    done = sum(1 for name in exercises() if record_.get(name, {}).get("status") == PASSED)
    return [f"Progress ({done} of {len(exercises())} passed), kept in {path(home)}:", *out]


def game_day_lines(home: Path | None = None) -> list[str]:
    """The game days' score, as `./lab progress` prints it under the exercises."""
    games = game_day(home)
    if not games:
        return ["  game day: no game answered yet (./lab gameday start)"]
    out = [f"  game day: {games['games']} game(s) answered, {games['right']} right, "
           f"{games['points']} points in all (best game {games['best']})"]
    if games["series"]:
        last = games["series"][-1]
        best = max(s["points"] for s in games["series"])
        out.append(f"  game day rounds: last series {last['points']} points in "
                   f"{last['played']} of {last['rounds']} round(s) ({_when(last['at'])}); "
                   f"best series {best} points")
    return out


def main(home: Path | None = None) -> int:
    print("\n".join(lines(home) + game_day_lines(home)))
    return 0
