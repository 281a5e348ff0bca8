"""The tests marked `alone`: long, and breaking what every other test relies on (an exercise's
faults held for minutes until its alerts fire), so they get a native stack of their own and
run beside the disruptive phase instead of after it (suite.py). Run as
`python -m harness.alone PYTEST_ARGS...`: a process of its own, whose SIGTERM stops its stack.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from labctl.config import ROOT, load
from labctl.stack import down, isolated_environment, say, up

MARKER = "alone and not compose"


class Stopped(BaseException):
    """SIGTERM or SIGINT: the stack is stopped on the way out."""


def home() -> Path:
    return Path(os.environ.get("LAB_ALONE_TEST_HOME") or ROOT / ".lab-test-alone").resolve()


def selected(pytest_args: list[str]) -> bool:
    """Does any test marked `alone` match these arguments? (No stack for none.)"""
    argv = [str(ROOT / ".venv" / "bin" / "pytest"), "--collect-only", "-q", "-p", "no:xdist",
            "-m", MARKER, *pytest_args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True).returncode == 0


def main(pytest_args: list[str]) -> int:
    def stop(signum: int, frame: object) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)
        raise Stopped()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    env = {**os.environ, **isolated_environment(home())}
    cfg = load(env)
    try:
        if home().exists():
            down(cfg, volumes=True)
            cfg = load(env)
        say(f"starting the stack of the tests run alone under {home()}")
        up(cfg)
        argv = [str(ROOT / ".venv" / "bin" / "pytest"), "-p", "no:xdist", "-m", MARKER,
                *pytest_args]
        say(" ".join(argv[1:]))
        return subprocess.run(argv, cwd=ROOT, env=cfg.env).returncode
    except Stopped:
        say("interrupted: stopping the stack of the tests run alone")
        return 128 + signal.SIGTERM
    finally:
        down(cfg, volumes=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
