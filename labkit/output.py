"""How trace_purchase_journey.py talks back: its exit statuses, its lines, its JSON file."""

import json
from pathlib import Path
from typing import Any

# Exit statuses (the script's --help lists them).
OK, JOURNEY_FAILED, USAGE, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 130


def say(line: str = "") -> None:
    print(line, flush=True)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
