"""`./lab test`: ruff, the native stack's test phases on an isolated stack of their own, then
the compose phase (compose_phase.py)."""

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from harness import compose_phase
from labctl import bootstrap
from labctl.config import ROOT, load
from labctl.proc import end, foreground
from labctl.stack import PORT_NAMES, down, isolated_environment, say, up

# Only the test suite needs these, so a learner's ./lab up does not install them.
TEST_APT_PACKAGES = {
    # Validates docker-compose.yml; `config` needs no Docker engine.
    "docker-compose": "/usr/bin/docker-compose",
    # The storefront's browser test, and the rebuild of its bundle.
    "chromium": "/usr/bin/chromium",
    "npm": "/usr/bin/npm",
}


class Interrupted(BaseException):
    """SIGTERM or SIGINT reached the suite: every phase's `finally` stops what it started."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupted(signum: int, frame: object) -> None:
    # A second signal must not cut the clean-up short (a handler that does nothing, not
    # SIG_IGN, which the programs started meanwhile would inherit).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    raise Interrupted(signum)


def run_tests(cfg_env: dict[str, str], pytest_args: list[str], keep: bool,
              lint: bool = True, phases: tuple[str, ...] = ("native", "compose")) -> int:
    """The suite: the native stack's phases, then the compose phase (compose_phase.py).
    Interrupted, it stops what it started and exits with 128 + the signal's number."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupted)
    compose = None
    if "compose" in phases:
        home = Path(cfg_env.get("LAB_COMPOSE_TEST_HOME") or ROOT / ".lab-test-compose").resolve()
        compose = compose_phase.Phase(home)
    try:
        return _run_phases(cfg_env, pytest_args, keep, lint, phases, compose)
    except Interrupted as exc:
        if compose is not None:
            compose.cancel()
        say(f"interrupted by {exc}: stopped what it had started")
        return 128 + exc.signum


def _run_phases(cfg_env: dict[str, str], pytest_args: list[str], keep: bool, lint: bool,
                phases: tuple[str, ...], compose: compose_phase.Phase | None) -> int:
    bootstrap.ensure_all(TEST_APT_PACKAGES)
    venv = ROOT / ".venv" / "bin"
    if lint:
        say("ruff check")
        if subprocess.run([str(venv / "ruff"), "check", "."], cwd=ROOT).returncode != 0:
            return 1
    if "native" in phases:
        # The compose stack builds and comes up while the disruptive tests wait on alerts.
        early = compose.bring_up_in_background if compose is not None else None
        rc = run_native_tests(cfg_env, pytest_args, keep, before_disruptive=early)
        if rc != 0:
            if compose is not None:
                compose.abandon()
            return rc
    return compose.run(pytest_args) if compose is not None else 0


def run_native_tests(cfg_env: dict[str, str], pytest_args: list[str], keep: bool,
                     before_disruptive: Callable[[], None] | None = None) -> int:
    venv = ROOT / ".venv" / "bin"
    # LAB_TEST_HOME lets two suites run side by side (e.g. .lab-test-mine, ignored by git).
    home = Path(cfg_env.get("LAB_TEST_HOME") or ROOT / ".lab-test").resolve()
    env = dict(cfg_env)
    env.update(isolated_environment(home))
    cfg = load(env)
    if home.exists():
        down(cfg, volumes=True)
        cfg = load(env)  # its admin token again, in the new home
    try:
        say(f"starting the test stack under {home}")
        up(cfg)
        n = os.environ.get("LAB_TEST_WORKERS", "4")
        # Parallel first; then the tests that stop components, one at a time, on the same stack.
        on_stack = "not inprocess and not compose"
        phases = [["-n", n, "--dist", "loadgroup", "-m", f"not disruptive and {on_stack}"],
                  ["-p", "no:xdist", "-m", f"disruptive and {on_stack}"]]
        for number, phase in enumerate(phases):
            if number == 1 and before_disruptive is not None:
                before_disruptive()
            inprocess = start_inprocess_tests(cfg.env, pytest_args, home) if number == 0 else None
            argv = [str(venv / "pytest"), *phase, *pytest_args]
            say(" ".join(argv[1:]))
            try:
                rc = foreground(argv, cfg.env, ROOT)
            except BaseException:
                if inprocess is not None:  # SIGTERM: tests/api's pytest tears its cluster down
                    end(inprocess[0], signal.SIGTERM, grace_s=30)
                raise
            if inprocess is not None:
                inprocess_rc = finish_inprocess_tests(*inprocess)
                if inprocess_rc != 0 and rc in (0, 5):
                    rc = inprocess_rc
            if rc not in (0, 5):  # 5: no test selected in this phase
                return rc
        return 0
    finally:
        if keep:
            # Its ports are its own, not .env's: ./lab reaches it with them in the environment.
            ports = " ".join(f"{name}={cfg.env[name]}" for name in PORT_NAMES)
            say(f"test stack kept running under {home}; ./lab reaches it with:\n"
                f"  env LAB_HOME={home} LAB_MODE=native {ports} ./lab status")
        else:
            down(cfg, volumes=False)


def start_inprocess_tests(env: dict[str, str], pytest_args: list[str],
                          home: Path) -> tuple[subprocess.Popen, Path]:
    """The in-process API tests (tests/api), beside the parallel phase: a pytest process of
    their own, since they point the application's settings at a PostgreSQL of their own."""
    argv = [str(ROOT / ".venv" / "bin" / "pytest"), "-p", "no:xdist", "-m",
            "inprocess and not compose", *pytest_args]
    say(" ".join(argv[1:]) + "  (beside it)")
    log = home / "inprocess-tests.log"
    with log.open("w") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT), log


def finish_inprocess_tests(proc: subprocess.Popen, log: Path) -> int:
    rc = proc.wait()
    say(f"in-process API tests (exit {rc}), their output:")
    print(log.read_text(), flush=True)
    return 0 if rc == 5 else rc  # 5: none selected by the arguments given

