"""The learner's progress through the exercises, kept offline in `<lab home>/progress.json`.

Each check run records its exercise: in progress until a run where every question is right and
every step holds (then passed, with when), the hints it showed and the answers it revealed.
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


def load(home: Path | None = None) -> dict[str, dict[str, Any]]:
    """{exercise folder: its record}; empty when nothing was recorded (or the file is torn)."""
    try:
        data = json.loads(path(home).read_text())
    except (OSError, ValueError):
        return {}
    return data.get("exercises", {}) if isinstance(data, dict) else {}


def record(exercise: str, passed: bool, hints: list[str], revealed: list[str],
           home: Path | None = None, now: float | None = None) -> dict[str, Any]:
    """Add one check run to the record (hints: the keys of the questions whose hint it showed;
    revealed: the keys whose answers --reveal showed). Returns the exercise's record."""
    now = time.time() if now is None else now
    exercises = load(home)
    entry = exercises.setdefault(exercise, {
        "status": IN_PROGRESS, "started_at": now, "runs": 0, "hints": 0, "revealed": [],
    })
    entry["runs"] += 1
    entry["last_run_at"] = now
    entry["hints"] += len(hints)
    entry["revealed"] = sorted(set(entry["revealed"]) | set(revealed))
    if passed and entry["status"] != PASSED:
        entry.update(status=PASSED, passed_at=now)
    target = path(home)
    target.parent.mkdir(parents=True, exist_ok=True)
    draft = target.with_name(f".{FILE}.{os.getpid()}")
    # "catalog": every exercise, so a reader of the file alone (the storefront's #/progress
    # page) can list the ones not started too.
    draft.write_text(json.dumps({"exercises": exercises, "catalog": catalog()}, indent=2,
                                sort_keys=True) + "\n")
    draft.replace(target)  # whole or not at all: a reader never sees half a record
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


def main(home: Path | None = None) -> int:
    print("\n".join(lines(home)))
    return 0
