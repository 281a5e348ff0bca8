"""CPU profiles `./lab profile` records with py-spy, as speedscope JSON files under
`<lab home>/profiles/`: which functions they caught on the CPU, and how often."""

import json
from collections import Counter
from pathlib import Path

SUFFIX = ".speedscope.json"


class ProfileError(ValueError):
    """The file is not a speedscope profile."""


def _stacks(path: Path) -> list[list[dict]]:
    """Every sample's stack, outermost frame first, over every thread and process."""
    try:
        doc = json.loads(path.read_text())
        frames = doc["shared"]["frames"]
        stacks = [[frames[i] for i in stack]
                  for profile in doc["profiles"] for stack in profile.get("samples", [])]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ProfileError(f"{path}: not a speedscope profile ({exc})") from None
    return stacks


def samples(path: Path) -> int:
    return len(_stacks(path))


def functions(path: Path) -> Counter[str]:
    """In how many samples each function was on the stack (its callees' time counts too)."""
    return Counter(name for stack in _stacks(path)
                   for name in {frame.get("name", "?") for frame in stack})


def self_time(path: Path) -> Counter[str]:
    """In how many samples each function was the one running: `name (file)`."""
    return Counter(f"{stack[-1].get('name', '?')} ({stack[-1].get('file', '?')})"
                   for stack in _stacks(path) if stack)


def recorded(directory: Path, since: float = 0.0) -> list[Path]:
    """The profiles in `directory` written since `since` (a Unix time), newest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.glob(f"*{SUFFIX}") if p.stat().st_mtime >= since]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
