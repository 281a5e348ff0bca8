"""Issue 28: `./lab test`, interrupted by SIGTERM (a CI runner's timeout) or SIGINT (Ctrl-C, to
the whole process group) at any phase, stops what it started before it exits: its native stack,
its private Docker engine. Each test runs a `./lab test` of its own, on a home of its own."""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from labctl.config import ROOT
from labctl.proc import port_open
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
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(n.encode() in cmdline + environ for n in needles):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command[:200]}")
    return found


def mounts_under(*roots: str) -> list[str]:
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    return sorted((p for p in points if p.startswith(roots)), reverse=True)


def base_env() -> dict[str, str]:
    """This session's environment without its stack's: the harness picks ports of its own."""
    return {k: v for k, v in os.environ.items()
            if not k.endswith("_PORT") and k not in ("LAB_HOME", "LAB_COMPOSE_FILES")}


def native_harness(tmp_path: Path, name: str) -> tuple[Harness, Path, Path]:
    # Under the repository: as root, the postgres and rabbitmq users must reach the home.
    home = ROOT / f".lab-test-{name}"
    probe = tmp_path / "ports.json"
    test = tmp_path / "test_waiting.py"
    test.write_text(WAITING_TEST)
    env = {**base_env(), "LAB_TEST_HOME": str(home), "LAB_TEST_WORKERS": "1",
           "INTERRUPT_PROBE": str(probe)}
    return Harness(env, "test", "--native", "--no-lint", str(test), "-p", "no:cacheprovider"), \
        home, probe


def clean_up(home: Path) -> None:
    """Whatever the harness left (on the old code: everything), so that no test leaks it."""
    env = {**base_env(), "LAB_HOME": str(home)}
    subprocess.run([str(ROOT / "lab"), "down", "--volumes"], env=env, cwd=ROOT,
                   capture_output=True, timeout=180)
    for line in naming(str(home)):  # the old code's pytest, which carries no marker
        os.kill(int(line.split(":")[0]), signal.SIGKILL)
    shutil.rmtree(home, ignore_errors=True)


def test_sigterm_in_the_native_phase_stops_the_stack(tmp_path):
    harness, home, probe = native_harness(tmp_path, "sigterm")
    try:
        wait_for(probe.exists, 240, lambda: "the native phase's tests to run:\n"
                 + harness.output())
        ports = [int(p) for p in json.loads(probe.read_text()).values()]
        assert naming(str(home)), "the stack runs, found by its home"
        rc = harness.interrupt(signal.SIGTERM, whole_group=False)
        assert naming(str(home)) == [], harness.output()
        assert [p for p in ports if port_open(p)] == [], harness.output()
        assert rc == 128 + signal.SIGTERM, harness.output()
        assert "interrupted by SIGTERM" in harness.output()
    finally:
        if harness.proc.poll() is None:
            harness.proc.kill()
        clean_up(home)


def test_ctrl_c_while_the_native_stack_comes_up_stops_it(tmp_path):
    harness, home, _ = native_harness(tmp_path, "sigint")
    try:
        harness.wait_for_line(r"lab: db healthy", 120)
        rc = harness.interrupt(signal.SIGINT, whole_group=True)
        assert naming(str(home)) == [], harness.output()
        assert rc == 128 + signal.SIGINT, harness.output()
        assert "interrupted by SIGINT" in harness.output()
    finally:
        if harness.proc.poll() is None:
            harness.proc.kill()
        clean_up(home)


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
