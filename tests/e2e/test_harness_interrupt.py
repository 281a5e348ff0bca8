"""Issue 28: `./lab test`, interrupted by SIGTERM (a CI runner's timeout) or SIGINT (Ctrl-C, to
the whole process group) at any phase, stops what it started before it exits: its native stack,
its private Docker engine. Each test runs a `./lab test` of its own, on a home of its own."""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine import mounts_under
from labctl.config import ROOT
from labctl.proc import port_open, processes
from tests.helpers import wait_for

# Serial, after the parallel phase: each starts a stack (or an engine) of its own.
pytestmark = [pytest.mark.disruptive]

WAITING_TEST = '''
import json, os, time

def test_waits_to_be_interrupted():
    ports = {k: v for k, v in os.environ.items() if k.endswith("_PORT")}
    with open(os.environ["INTERRUPT_PROBE"], "w") as f:
        json.dump(ports, f)
    time.sleep(600)
'''


class Harness:
    """`./lab ARGS` in a session of its own (so that SIGINT can go to its whole group, as a
    terminal's Ctrl-C does), its output collected line by line."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen([str(ROOT / "lab"), *args], env=env, cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines[-40:])

    def wait_for_line(self, pattern: str, timeout_s: float) -> re.Match:
        def seen():
            return next((m for line in self.lines if (m := re.search(pattern, line))), None)

        return wait_for(seen, timeout_s, lambda: f"{pattern!r} in ./lab's output:\n"
                        + self.output())

    def interrupt(self, sig: int, whole_group: bool) -> int:
        if whole_group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=180)
        self._reader.join(timeout=10)
        return rc


def naming(*needles: str) -> list[str]:
    """Processes whose command line or environment names one of these (a home, a root)."""
    found = []
    for pid, seen in processes("cmdline", "environ", "stat"):
        state = seen["stat"].rsplit(b")", 1)[1].split()[0]
        if state != b"Z" and any(n.encode() in seen["cmdline"] + seen["environ"]
                                 for n in needles):
            command = seen["cmdline"].replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{pid}: {command[:200]}")
    return found


def base_env() -> dict[str, str]:
    """This session's environment without its stack's: the harness picks ports of its own."""
    return {k: v for k, v in os.environ.items()
            if not k.endswith("_PORT") and k not in ("LAB_HOME", "LAB_COMPOSE_FILES")}


@contextlib.contextmanager
def native_harness(tmp_path: Path, name: str) -> Iterator[tuple[Harness, Path, Path]]:
    """`./lab test --native` of a test that waits to be interrupted, on a home of its own;
    whatever it leaves is cleaned up after."""
    # Under the repository: as root, the postgres and rabbitmq users must reach the home.
    home = ROOT / f".lab-test-{name}"
    probe = tmp_path / "ports.json"
    test = tmp_path / "test_waiting.py"
    test.write_text(WAITING_TEST)
    env = {**base_env(), "LAB_TEST_HOME": str(home), "LAB_TEST_WORKERS": "1",
           "INTERRUPT_PROBE": str(probe)}
    harness = Harness(env, "test", "--native", "--no-lint", str(test), "-p", "no:cacheprovider")
    try:
        yield harness, home, probe
    finally:
        if harness.proc.poll() is None:
            harness.proc.kill()
        clean_up(home)


def clean_up(home: Path) -> None:
    """Whatever the harness left (on the old code: everything), so that no test leaks it."""
    env = {**base_env(), "LAB_HOME": str(home)}
    subprocess.run([str(ROOT / "lab"), "down", "--volumes"], env=env, cwd=ROOT,
                   capture_output=True, timeout=180)
    for line in naming(str(home)):  # the old code's pytest, which carries no marker
        os.kill(int(line.split(":")[0]), signal.SIGKILL)
    shutil.rmtree(home, ignore_errors=True)


def assert_stopped(harness: Harness, home: Path, rc: int, sig: signal.Signals) -> None:
    assert naming(str(home)) == [], harness.output()
    assert rc == 128 + sig, harness.output()
    assert f"interrupted by {sig.name}" in harness.output()


def test_sigterm_in_the_native_phase_stops_the_stack(tmp_path):
    with native_harness(tmp_path, "sigterm") as (harness, home, probe):
        wait_for(probe.exists, 240, lambda: "the native phase's tests to run:\n"
                 + harness.output())
        ports = [int(p) for p in json.loads(probe.read_text()).values()]
        assert naming(str(home)), "the stack runs, found by its home"
        rc = harness.interrupt(signal.SIGTERM, whole_group=False)
        assert_stopped(harness, home, rc, signal.SIGTERM)
        assert [p for p in ports if port_open(p)] == [], harness.output()


def test_ctrl_c_while_the_native_stack_comes_up_stops_it(tmp_path):
    with native_harness(tmp_path, "sigint") as (harness, home, _):
        harness.wait_for_line(r"lab: db healthy", 120)
        rc = harness.interrupt(signal.SIGINT, whole_group=True)
        assert_stopped(harness, home, rc, signal.SIGINT)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("dockerd") is None,
                    reason="the compose phase's private engine needs root and docker.io")
def test_sigterm_during_the_compose_bring_up_stops_the_engine():
    home = ROOT / ".lab-test-compose-interrupt"
    env = {**base_env(), "LAB_COMPOSE_TEST_HOME": str(home)}
    harness = Harness(env, "test", "--compose", "--no-lint")
    exec_root = None
    try:
        started = harness.wait_for_line(r"private Docker engine .* \(socket (/\S+)/docker.sock\)",
                                        180)
        exec_root = started.group(1)
        assert naming(exec_root), "dockerd runs, found by its exec root"
        rc = harness.interrupt(signal.SIGTERM, whole_group=False)
        assert naming(exec_root, str(home)) == [], harness.output()
        assert mounts_under(exec_root, str(home)) == []
        assert rc == 128 + signal.SIGTERM, harness.output()
        assert not Path(exec_root).exists() and not home.exists()
    finally:
        if harness.proc.poll() is None:
            harness.proc.kill()
        if exec_root is not None:  # the old code left dockerd and its containerd running
            for line in naming(exec_root):
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
            for mount in mounts_under(exec_root, str(home)):
                subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
