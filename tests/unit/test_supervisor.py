"""The supervisor's decisions (labctl/supervisor.py): what it restarts, when, and what it
leaves alone. The restarts themselves are proven on the stack (tests/e2e/test_supervision.py)."""

import os

import pytest

from labctl import supervisor
from labctl.component import Component
from labctl.config import LabConfig


class Fake(Component):
    seen: int | None = None

    def pid(self, cfg: LabConfig) -> int | None:
        return self.seen


class Restarts:
    """Stands in for multiprocessing: records each restart, which ends at once."""

    def __init__(self) -> None:
        self.started: list[tuple] = []

    def Process(self, target, args, name):  # noqa: N802 - multiprocessing's name
        restarts = self

        class Done:
            exitcode = 0

            def start(self) -> None:
                restarts.started.append(args[2:])

            def is_alive(self) -> bool:
                return False

        return Done()


@pytest.fixture
def world(tmp_path, monkeypatch):
    cfg = LabConfig(env={}, home=tmp_path)
    comp = Fake("worker", "a fake")
    restarts = Restarts()
    monkeypatch.setattr(supervisor.multiprocessing, "get_context", lambda method: restarts)
    return cfg, comp, supervisor.Watch(), restarts


def test_never_seen_running_is_not_started(world):
    cfg, comp, w, restarts = world
    for t in range(20):
        supervisor.watch(cfg, comp, w, float(t))
    assert restarts.started == []


def test_gone_is_restarted_after_a_delay_that_doubles_and_falls_back_when_steady(world):
    cfg, comp, w, restarts = world
    comp.seen = os.getpid()
    supervisor.watch(cfg, comp, w, 0.0)
    comp.seen = None
    supervisor.watch(cfg, comp, w, 1.0)
    assert restarts.started == [], "not before the first delay"
    supervisor.watch(cfg, comp, w, 1.0 + supervisor.FIRST_DELAY_S)
    assert len(restarts.started) == 1
    assert w.delay == 2 * supervisor.FIRST_DELAY_S
    supervisor.watch(cfg, comp, w, 2.0)  # the restart failed: still gone
    supervisor.watch(cfg, comp, w, 2.0 + supervisor.FIRST_DELAY_S)
    assert len(restarts.started) == 1, "the second attempt waits twice as long"
    supervisor.watch(cfg, comp, w, 2.0 + 2 * supervisor.FIRST_DELAY_S)
    assert len(restarts.started) == 2
    comp.seen = 1  # back, under another pid, and steady for long enough
    supervisor.watch(cfg, comp, w, 10.0)
    supervisor.watch(cfg, comp, w, 10.0 + supervisor.STEADY_S)
    assert w.delay == supervisor.FIRST_DELAY_S


def test_stopped_on_purpose_stays_stopped_and_a_busy_lock_is_left_alone(world):
    cfg, comp, w, restarts = world
    comp.seen = os.getpid()
    supervisor.watch(cfg, comp, w, 0.0)
    comp.seen = None
    with comp.changing(cfg):  # ./lab stop at work
        supervisor.watch(cfg, comp, w, 5.0)
    assert restarts.started == []
    comp.stopped_mark(cfg).touch()
    for t in range(6, 30):
        supervisor.watch(cfg, comp, w, float(t))
    assert restarts.started == []


def test_started_and_gone_before_a_look_caught_it_is_restarted(world):
    """./lab start, then a crash before the supervisor's next look: its pid is recorded and it
    was not stopped on purpose, so it comes back (CI: a worker killed right after its start
    stayed down)."""
    cfg, comp, w, restarts = world
    cfg.run.mkdir(parents=True, exist_ok=True)
    comp.pidfile(cfg).write_text("999999\n")  # recorded by its start, long gone
    supervisor.watch(cfg, comp, w, 0.0)
    supervisor.watch(cfg, comp, w, supervisor.FIRST_DELAY_S)
    assert len(restarts.started) == 1
