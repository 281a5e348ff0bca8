"""A learner's own alert rules (exercise 10): where `./lab rules load` puts them, the record of
what it loaded, and promtool, run natively or in the Prometheus image (compose). Shared by
labctl/learner_rules.py (the command) and the exercise's check; standard library only.

prometheus/prometheus.yml's second rule_files glob, learner-rules/*.yml, is read beside the
config file: natively <lab home>/prometheus/learner-rules/, in compose the learner-rules volume
mounted at /etc/prometheus/learner-rules in the prometheus container.
"""

import json
import os
import subprocess
import time
from pathlib import Path, PurePosixPath
from typing import Any

LEARNER_DIR = "learner-rules"
COMPOSE_CONTAINER = "kodekloud-record-store-prometheus"  # docker-compose.yml's container_name
COMPOSE_DIR = f"/etc/prometheus/{LEARNER_DIR}"
RECORD = "own-rules.json"  # in the lab's home: every load, with what Prometheus loaded


class PromtoolMissing(Exception):
    """No promtool here (natively it comes with Debian's prometheus package)."""


def is_learners(group: dict[str, Any]) -> bool:
    """Whether a group of /api/v1/rules comes from a learner's file."""
    return PurePosixPath(group.get("file", "")).parent.name == LEARNER_DIR


def alerting_rules(group: dict[str, Any]) -> list[dict[str, Any]]:
    """The group's alerting rules as the record keeps them: name, expression, `for` (s)."""
    return [{"name": r["name"], "query": r["query"], "for_s": r.get("duration", 0)}
            for r in group.get("rules", []) if r.get("type") == "alerting"]


def read_record(home: Path) -> list[dict[str, Any]]:
    """Every load so far, oldest first: file, source, test, loaded_at, unloaded_at, alerts."""
    try:
        return json.loads((home / RECORD).read_text())["loads"]
    except (OSError, ValueError, KeyError):
        return []


def write_record(home: Path, loads: list[dict[str, Any]]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f"{RECORD}.tmp"
    tmp.write_text(json.dumps({"loads": loads}, indent=2) + "\n")
    tmp.replace(home / RECORD)


def loaded_during(loads: list[dict[str, Any]], since: float,
                  now: float | None = None) -> list[dict[str, Any]]:
    """The loads whose rules Prometheus held at some moment since `since`."""
    now = time.time() if now is None else now
    return [entry for entry in loads if entry["loaded_at"] <= now
            and (entry.get("unloaded_at") is None or entry["unloaded_at"] >= since)]


def promtool(mode: str, image: str, folder: Path, *args: str,
             timeout_s: float = 60) -> subprocess.CompletedProcess:
    """`promtool ARGS` run in `folder` (its file arguments are relative to it): natively the
    host's promtool, in compose the Prometheus image's own, with the folder mounted read-only
    and no network."""
    if mode == "native":
        argv = ["promtool", *args]
    else:
        # As the learner's own user: their files may sit in a folder only they can read.
        argv = ["docker", "run", "--rm", "--network", "none", "--user",
                f"{os.getuid()}:{os.getgid()}", "-v", f"{folder}:/rules:ro", "-w", "/rules",
                "--entrypoint", "promtool", running_image() or image, *args]
    try:
        return subprocess.run(argv, cwd=folder, capture_output=True, text=True,
                              timeout=timeout_s, env={**os.environ, "NO_COLOR": "1"})
    except FileNotFoundError:
        raise PromtoolMissing(
            "promtool is not installed: natively it comes with Debian's prometheus package "
            "(apt install prometheus); in compose the check needs the docker command"
        ) from None


def running_image() -> str | None:
    """The image compose's Prometheus container runs (the one compose pulled, or built:
    there is no other to pull), or None when docker cannot say."""
    try:
        r = subprocess.run(["docker", "inspect", "--format", "{{.Config.Image}}",
                            COMPOSE_CONTAINER], capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def default_test(source: Path) -> Path:
    """The promtool test beside a rule file: mine.yml -> mine.test.yml."""
    return source.with_name(f"{source.stem}.test{source.suffix}")
