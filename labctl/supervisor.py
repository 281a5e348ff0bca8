"""The native stack's supervisor: what compose's `restart: unless-stopped` does for containers.

`./lab up` starts it (`python3 -m labctl.supervisor`, one per lab home, its log
`logs/supervisor.log`); `./lab down` stops it first. It watches every component it has seen
running: one that is gone and was not stopped on purpose (`./lab stop` marks that,
component.py) is started again after a delay that doubles from FIRST_DELAY_S up to MAX_DELAY_S
and falls back once the component has stayed up STEADY_S. A restart first ends what is left of
the dead one's process group (a killed nginx master leaves its workers holding the ports, as
a container's end would not), then starts it as `./lab start` would, in a child process of its
own, so the others stay watched while it waits to be healthy. Each restart is counted
(`<name>.restarts`, shown by `./lab status`) and logged.
"""

import contextlib
import json
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from labctl.component import Component
from labctl.components import COMPONENTS
from labctl.config import ROOT, LabConfig, load
from labctl.proc import pid_alive, read_pid, spawn, terminate, wait_until

POLL_S = 0.5
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 60.0
STEADY_S = 10.0


def pidfile(cfg: LabConfig) -> Path:
    return cfg.run / "supervisor.pid"


def log(cfg: LabConfig) -> Path:
    return cfg.logs / "supervisor.log"


def pid(cfg: LabConfig) -> int | None:
    found = read_pid(pidfile(cfg))
    return found if found is not None and pid_alive(found) else None


def ensure(cfg: LabConfig) -> None:
    """Start the supervisor of this lab home unless it runs (cfg carries the stack's marker)."""
    if pid(cfg) is None:
        spawn([sys.executable, "-m", "labctl.supervisor"], cfg.env, log(cfg), pidfile(cfg), ROOT)


def stop(cfg: LabConfig) -> None:
    found = pid(cfg)
    if found is not None:
        terminate(found)
    pidfile(cfg).unlink(missing_ok=True)


def restarts(cfg: LabConfig, comp: Component) -> dict:
    """{"count": restarts so far, "last": when (UTC)}; a count of 0 when never restarted."""
    try:
        return json.loads((cfg.run / f"{comp.name}.restarts").read_text())
    except (OSError, ValueError):
        return {"count": 0, "last": None}


def say(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {msg}", flush=True)


@dataclass
class Watch:
    pid: int | None = None  # the process seen running; None: nothing of ours to bring back
    own_group: bool = False  # it led its own process group: what is left of it may be ended
    since: float = 0.0
    delay: float = FIRST_DELAY_S
    due: float | None = None  # when the next restart may begin
    restart: multiprocessing.Process | None = None


def group_alive(pgid: int) -> bool:
    """A live process in the group (a zombie whose parent has not reaped it yet is not)."""
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def end_group(pgid: int) -> None:
    """SIGTERM to what is left of a dead leader's group, SIGKILL to what outlives 10 s."""
    for sig, grace_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if not group_alive(pgid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        wait_until(lambda: not group_alive(pgid), grace_s, 0.1)


def restart(cfg: LabConfig, comp: Component, dead: int, own_group: bool) -> None:
    """In a child process: bring the component back unless someone else did, or stopped it."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    with comp.changing(cfg):
        if comp.stopped_mark(cfg).exists() or comp.running(cfg):
            return
        count = restarts(cfg, comp)["count"] + 1
        (cfg.run / f"{comp.name}.restarts").write_text(json.dumps(
            {"count": count, "last": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}))
        say(f"{comp.name}: exited unexpectedly (pid {dead}); restarting it, restart {count}")
        if own_group:
            end_group(dead)
        started = time.monotonic()
        comp.bring_up(cfg)
        say(f"{comp.name}: restarted, healthy after {time.monotonic() - started:.1f}s "
            f"(restart {count})")


def watch(cfg: LabConfig, comp: Component, w: Watch, now: float) -> None:
    if w.restart is not None:
        if w.restart.is_alive():
            return
        if w.restart.exitcode != 0:
            say(f"{comp.name}: the restart failed; next attempt in {w.delay:.1f}s "
                f"(its log: {comp.log(cfg)})")
        w.restart = None
    with comp.changing(cfg, wait=False) as free:
        if not free:  # ./lab start, stop or restart at work: theirs to decide
            return
        running = comp.pid(cfg)
        if running is not None:
            if running != w.pid:
                w.pid, w.since, w.due = running, now, None
                with contextlib.suppress(ProcessLookupError):
                    w.own_group = os.getpgid(running) == running
            elif now - w.since >= STEADY_S:
                w.delay = FIRST_DELAY_S
            return
        if comp.stopped_mark(cfg).exists():
            w.pid, w.due = None, None
            return
    if w.pid is None:
        # Never seen running. Started all the same (its pid recorded, not stopped on purpose)
        # and gone before a look caught it (a crash right after ./lab start): restart it too.
        w.pid = read_pid(comp.pidfile(cfg))
        if w.pid is None:
            return  # never started: starting it is up's job
        w.own_group = True  # as the lab starts its programs; a group that is gone is ignored
    if w.due is None:
        w.due = now + w.delay
    if now >= w.due:
        w.due, w.delay = None, min(w.delay * 2, MAX_DELAY_S)
        w.restart = multiprocessing.get_context("fork").Process(
            target=restart, args=(cfg, comp, w.pid, w.own_group), name=f"restart-{comp.name}")
        w.restart.start()


def main() -> int:
    cfg = load()
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopping.append(signum))
    say(f"supervising the lab under {cfg.home} (pid {os.getpid()})")
    watches = {comp.name: Watch() for comp in COMPONENTS}
    while not stopping:
        for comp in COMPONENTS:
            watch(cfg, comp, watches[comp.name], time.monotonic())
        time.sleep(POLL_S)
    for w in watches.values():
        if w.restart is not None and w.restart.is_alive():
            w.restart.terminate()
            w.restart.join(10)
    say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
