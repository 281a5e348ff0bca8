"""The lab's settings as both `./lab` and a learner's scripts see them: the one reader of the
repository's .env, and the one rule that decides the run mode (compose or native).

Standard library only, like the rest of labkit: learners run it with a bare python3.
"""

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODES = ("compose", "native")


class SettingsError(ValueError):
    """A setting with a value the lab cannot use."""


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$"}


def _value(raw: str) -> str:
    """One value as compose's dotenv reads it: 'single quotes' literal, "double quotes" with
    backslash escapes, an unquoted value up to a ` #` comment; text after a closing quote is
    ignored."""
    raw = raw.strip()
    if raw[:1] == "'" and "'" in raw[1:]:
        return raw[1:raw.index("'", 1)]
    if raw[:1] == '"':
        m = re.match(r'"((?:[^"\\]|\\.)*)"', raw)
        if m:
            return re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), e.group(0)), m.group(1))
    return re.split(r"\s#", raw, maxsplit=1)[0].rstrip()


def read_env(path: Path = REPO / ".env") -> dict[str, str]:
    """KEY=VALUE lines of a .env file, read the way compose reads them (single-line values; no
    ${VAR} interpolation, which the lab's .env does not use). Comments and blank lines are
    skipped, and so is a line without `=`; `export KEY=VALUE` is KEY=VALUE."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = _value(value)
    return values


def default_url(env: dict[str, str], port_name: str, default: str) -> str:
    """http://localhost:<port>, the port from .env: where both run modes publish it."""
    return f"http://localhost:{env.get(port_name, default)}"


def engine_answers(timeout_s: float = 10.0) -> bool:
    """True when a Docker engine answers the docker CLI (the CLI alone is not enough)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        r = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                           capture_output=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; only its exit status is left to collect
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# `./lab traffic start` runs on the host beside a lab of either mode: not a native stack.
NOT_THE_STACK = frozenset({"traffic.pid"})


def native_running(home: Path) -> bool:
    """Whether a program of a native stack under `home` is alive (by its pid file)."""
    return any((pid := read_pid(f)) and pid_alive(pid)
               for f in (home / "run").glob("*.pid") if f.name not in NOT_THE_STACK)


def lab_home(environ: dict[str, str] | None = None) -> Path:
    """Where `./lab` keeps a native stack: LAB_HOME, else .lab/ in the repository."""
    env = os.environ if environ is None else environ
    return Path(env.get("LAB_HOME") or REPO / ".lab").resolve()


def admin_token(environ: dict[str, str] | None = None) -> str:
    """The token of the API's admin routes: ADMIN_TOKEN when set, else the lab's own, made on
    first use in <lab home>/admin-token (mode 600; .lab/ is ignored by git, so no two labs
    share one and none is published)."""
    env = os.environ if environ is None else environ
    if env.get("ADMIN_TOKEN"):
        return env["ADMIN_TOKEN"]
    path = lab_home(env) / "admin-token"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".admin-token.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(draft, path)  # whole or not at all; a second ./lab at the same moment keeps ours
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def run_mode(environ: dict[str, str] | None = None, home: Path | None = None) -> str:
    """compose or native: LAB_MODE when set; native while a native stack runs from `home`
    (default: lab_home()); else compose exactly when a Docker engine answers."""
    env = os.environ if environ is None else environ
    forced = env.get("LAB_MODE", "").strip().lower()
    if forced:
        if forced not in MODES:
            raise SettingsError(f"LAB_MODE must be compose or native, not {forced!r}")
        return forced
    if native_running(lab_home(env) if home is None else home):
        return "native"
    return "compose" if engine_answers() else "native"
