"""A game day's postmortem (`./lab gameday postmortem`, exercise 16): the skeleton, with the
game's recorded timeline and the sections the learner fills in, and the reading of a filled-in
one (which sections still hold a placeholder, the times it gives). Standard library only."""

import re
from pathlib import Path
from typing import Any

from gameday import games, timeline
from gameday.causes import BY_CAUSE

FOLDER = "postmortems"  # in the lab's home
TODO = "TODO"  # what every placeholder starts with
SECTIONS = ("Summary", "Impact", "Detection", "Root cause", "Timeline", "Actions")
TIME = r"(\d{1,2}:\d{2}(?::\d{2})?)"
# The times the check compares with the recorded signals: (section, label)
TIMES = {"impact_start": ("Impact", "Start"), "impact_end": ("Impact", "End"),
         "detected_at": ("Detection", "Detected at")}


def path(home: Path, game: dict[str, Any]) -> Path:
    return home / FOLDER / f"{games.game_id(game['started_at'])}.md"


def skeleton(game: dict[str, Any]) -> str:
    cause = BY_CAUSE[game["cause"]]
    gid = games.game_id(game["started_at"])
    verdict = (f"answered {game['answer']} ({'right' if game['right'] else 'wrong'}, "
               f"{game.get('points', 0)} points)" if "answer" in game else "given up")
    recorded = "\n".join(f"- {line}" for line in timeline.lines(game))
    return f"""# Postmortem: game day {gid}

Game: {gid} · cause: {cause.name} ({cause.title}) · {verdict}

Replace every line that starts with {TODO}. Times are UTC, HH:MM:SS, read off the signals
(Prometheus's ALERTS, `./lab alerts`, the timeline below); `./lab check 16` compares them with
what the lab recorded.

## Summary

{TODO}: what broke, what users saw, for how long, how it was found and ended (three sentences).

## Impact

- Start: {TODO} HH:MM:SS (when users were first affected)
- End: {TODO} HH:MM:SS (when they no longer were)
- What users saw: {TODO} (which requests failed or slowed, which orders did not finish)

## Detection

- Detected at: {TODO} HH:MM:SS (when a signal first said something was wrong: the first alert
  firing, or your own look if none fired before your answer)
- By which signal: {TODO} (the alert, graph, log line or trace, and how it was found)

## Root cause

{TODO}: the cause, and why it had the effects above (the chain from the cause to the users).

## Timeline

Recorded by the game (UTC):

{recorded}

{TODO}: add what you looked at and what you found, with times.

## Actions

- {TODO}: what would detect it sooner, prevent it or shorten the recovery (one a line)
"""


def write(home: Path, game: dict[str, Any]) -> Path:
    """The skeleton of `game`'s postmortem, written unless a postmortem is already there
    (a learner's work is never overwritten); its path."""
    target = path(home, game)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(skeleton(game))
    return target


def sections(text: str) -> dict[str, str]:
    """{heading: its text} of a postmortem's `## ` sections."""
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def unfilled(text: str) -> list[str]:
    """The sections missing, empty, or still holding a placeholder."""
    found = sections(text)
    return [name for name in SECTIONS
            if not found.get(name) or re.search(rf"\b{TODO}\b", found[name])]


def game_of(text: str) -> str:
    """The id of the game a postmortem is about ("" when it names none)."""
    m = re.search(r"^Game: *(\d{8}-\d{6})", text, flags=re.M)
    return m.group(1) if m else ""


def times(text: str) -> dict[str, str]:
    """The times a postmortem gives ({key: HH:MM[:SS]} of TIMES; a placeholder gives none)."""
    found = sections(text)
    out = {}
    for key, (section, label) in TIMES.items():
        m = re.search(rf"^\W*{re.escape(label)}\W*?:\s*{TIME}", found.get(section, ""),
                      flags=re.M | re.I)
        if m:
            out[key] = m.group(1)
    return out
