"""The trace sampling `./lab sampling` chose, kept in the lab's home (`sampling.json`), as the
standard OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG the API and the worker start with,
and the history of its changes (exercise 13's check reads it for the period a ratio held).
Standard library only: labctl writes it, a learner's check reads it with a plain python3.

Without the file the lab runs what .env says (parentbased_always_on: every trace is kept).
"""

import json
import time
from pathlib import Path
from typing import Any

STATE = "sampling.json"
ALWAYS_ON = "parentbased_always_on"
RATIO = "parentbased_traceidratio"


def parse_ratio(text: str) -> float:
    """`off` (no sampling: every trace kept), `1`, `0.1`, `10%`: the share of traces kept."""
    raw = text.strip().lower()
    if raw in ("off", "always_on", "all"):
        return 1.0
    try:
        ratio = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(f"a ratio between 0 and 1 (0.1, 10%) or `off`, not {text!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"the ratio must lie between 0 and 1, not {text!r}")
    return ratio


def variables(ratio: float) -> dict[str, str]:
    """The standard variables of a ratio: the API's request span, the root, keeps that share of
    traces; everything beneath it (the worker's spans too) follows its decision."""
    if ratio >= 1.0:
        return {"OTEL_TRACES_SAMPLER": ALWAYS_ON, "OTEL_TRACES_SAMPLER_ARG": "1.0"}
    return {"OTEL_TRACES_SAMPLER": RATIO, "OTEL_TRACES_SAMPLER_ARG": f"{ratio:g}"}


def load(home: Path) -> dict[str, Any]:
    try:
        state = json.loads((home / STATE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def current(home: Path) -> float | None:
    """The ratio `./lab sampling` set last; None when it never did (then .env's sampler)."""
    ratio = load(home).get("ratio")
    return float(ratio) if isinstance(ratio, int | float) else None


def environment(home: Path) -> dict[str, str]:
    """The variables the API and the worker start with ({}: .env's own)."""
    ratio = current(home)
    return {} if ratio is None else variables(ratio)


def record(home: Path, ratio: float, at: float | None = None) -> None:
    """The new ratio, and when it was set, added to the history."""
    state = load(home)
    history = [*state.get("history", []), {"at": time.time() if at is None else at,
                                           "ratio": ratio}]
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{STATE}.tmp"
    tmp.write_text(json.dumps({"ratio": ratio, **variables(ratio),
                               "history": history[-100:]}, indent=2))
    tmp.replace(home / STATE)


def periods(home: Path) -> list[tuple[float, float | None, float]]:
    """(from, until or None for now, ratio) for each setting of the history, oldest first."""
    history = [h for h in load(home).get("history", []) if isinstance(h, dict)]
    return [(float(h["at"]), float(history[i + 1]["at"]) if i + 1 < len(history) else None,
             float(h["ratio"])) for i, h in enumerate(history)]


def describe(ratio: float | None, configured: str = ALWAYS_ON) -> str:
    """One line on the sampling the API and the worker start with; `configured` is .env's."""
    if ratio is None:
        return f"trace sampling: .env's OTEL_TRACES_SAMPLER, {configured}"
    if ratio >= 1.0:
        return f"trace sampling: off, every trace kept ({ALWAYS_ON})"
    return (f"trace sampling: {ratio * 100:g} % of the traces kept ({RATIO}, ratio "
            f"{ratio:g}); ./lab sampling off keeps them all again")
