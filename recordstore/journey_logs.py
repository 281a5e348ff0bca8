"""One journey's log lines, read back from the components' JSON log files.

The gateway, the API and the worker each write one JSON object a line to `<log dir>/<name>.log`
(natively ./lab's log dir; in compose a volume they share, where the file rolls over to
`<name>.log.1`: see recordstore.logs). This module reads the end of each component's log, the
rotated file's end too when the current one is shorter than the budget, keeps the lines whose
`correlation_id` is exactly the one asked for, and merges them in time order. Every read is
bounded: a component's last `max_bytes`, at most `max_lines` lines kept.
"""

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recordstore.logs import ROTATED_SUFFIX

# The components whose lines make up a purchase's journey, by their log file's name.
SOURCES = ("gateway", "api", "worker")
MAX_BYTES_PER_FILE = 4 * 1024 * 1024
MAX_LINES = 400
MAX_LINE_BYTES = 16 * 1024
# The fields a line keeps; the rest (host, logger internals) says nothing to a learner.
DROPPED = frozenset({"logger", "user_agent", "remote_addr"})


class LogsUnavailable(Exception):
    """No log directory is configured, or it cannot be read."""


@dataclass(frozen=True)
class JourneyLogs:
    lines: list[dict[str, Any]]
    truncated: bool  # more lines matched than max_lines: the latest were kept
    sources: dict[str, str]  # file name -> "read", "missing" or "partial" (only its end read)


def _tail(path: Path, max_bytes: int) -> tuple[list[bytes], bool, int]:
    """The file's complete lines within its last max_bytes, whether its start was cut, and the
    bytes read."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - max_bytes)
        f.seek(start)
        data = f.read(max_bytes)
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # the first is a fragment of a line that began before the window
    return lines, start > 0, len(data)


def _component_lines(directory: Path, source: str, max_bytes: int,
                     sources: dict[str, str]) -> list[bytes]:
    """The lines of a component's last max_bytes: its current file's, then, while the budget
    lasts, its rotated file's end (lines a process wrote there as the file rolled over)."""
    found: list[bytes] = []
    for name in (f"{source}.log", f"{source}.log{ROTATED_SUFFIX}"):
        if max_bytes <= 0:
            break
        path = directory / name
        try:
            raw_lines, cut, size = _tail(path, max_bytes)
        except FileNotFoundError:
            if name == f"{source}.log":
                sources[name] = "missing"
            continue
        except OSError as exc:
            raise LogsUnavailable(f"cannot read {name}: {exc.strerror}") from None
        sources[name] = "partial" if cut else "read"
        found.extend(raw_lines)
        max_bytes -= size
    return found


def _timestamp(line: dict[str, Any]) -> float:
    """Seconds since the epoch: the gateway's request start (msec less its request time), or
    the time stamp structlog writes; 0 when neither reads."""
    if isinstance(line.get("msec"), int | float):
        return float(line["msec"]) - float(line.get("request_time") or 0)
    stamp = line.get("timestamp") or line.get("time")
    if isinstance(stamp, str):
        try:
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            return 0.0
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return 0.0


def read_journey(log_dir: str | Path, correlation_id: str, *, max_lines: int = MAX_LINES,
                 max_bytes: int = MAX_BYTES_PER_FILE) -> JourneyLogs:
    """The lines of SOURCES' log files that carry exactly `correlation_id`, oldest first."""
    if not log_dir:
        raise LogsUnavailable("no log directory is configured (LOG_DIR)")
    directory = Path(log_dir)
    if not directory.is_dir():
        raise LogsUnavailable(f"the log directory {directory} does not exist")
    needle = json.dumps(correlation_id).encode()  # cheap pre-filter before parsing a line
    found: list[tuple[float, int, dict[str, Any]]] = []
    sources: dict[str, str] = {}
    for source in SOURCES:
        for raw in _component_lines(directory, source, max_bytes, sources):
            if needle not in raw or len(raw) > MAX_LINE_BYTES:
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict) or line.get("correlation_id") != correlation_id:
                continue
            kept = {k: v for k, v in line.items() if k not in DROPPED}
            kept.setdefault("service", f"kodekloud-record-store-{source}")
            kept["source"] = source
            at = _timestamp(line)
            kept["at"] = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
            found.append((at, len(found), kept))
    found.sort(key=lambda item: (item[0], item[1]))
    truncated = len(found) > max_lines
    return JourneyLogs([line for _, _, line in found[-max_lines:]], truncated, sources)
