"""One component of the native lab: how it starts, stops and proves it is healthy.

`Component` is what every component shares (pid file, log, the start that waits until
healthy, the mark of a stop on purpose that the supervisor (supervisor.py) respects);
`Program` is a program the lab runs directly from a command line. The lab's own
PostgreSQL and RabbitMQ are in servers.py, the list of all of them in components.py.
"""

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from labctl import privileges
from labctl.config import ROOT, LabConfig
from labctl.proc import (
    LabError,
    http_ok,
    pid_alive,
    port_open,
    read_pid,
    run,
    socket_activated,
    spawn,
    tail,
    terminate,
    unix_http_ok,
    unix_listener,
    wait_until,
)


@dataclass
class Component:
    name: str
    description: str
    start_timeout_s: float = 30.0
    depends_on: tuple[str, ...] = field(default_factory=tuple)

    def log(self, cfg: LabConfig) -> Path:
        return cfg.logs / f"{self.name}.log"

    def pidfile(self, cfg: LabConfig) -> Path:
        return cfg.run / f"{self.name}.pid"

    def pid(self, cfg: LabConfig) -> int | None:
        pid = read_pid(self.pidfile(cfg))
        return pid if pid is not None and pid_alive(pid) else None

    def running(self, cfg: LabConfig) -> bool:
        return self.pid(cfg) is not None

    def healthy(self, cfg: LabConfig) -> tuple[bool, str]:
        raise NotImplementedError

    def ports(self, cfg: LabConfig) -> list[int]:
        """Ports this component listens on, checked for collisions before it starts."""
        return []

    def launch(self, cfg: LabConfig) -> None:
        raise NotImplementedError

    def stopped_mark(self, cfg: LabConfig) -> Path:
        """Present while the component is stopped on purpose: the supervisor leaves it so."""
        return cfg.run / f"{self.name}.stopped"

    @contextlib.contextmanager
    def changing(self, cfg: LabConfig, wait: bool = True) -> Iterator[bool]:
        """One start, stop or restart of this component at a time, whoever asks (./lab, the
        supervisor); without `wait`, False when another one is under way."""
        cfg.run.mkdir(parents=True, exist_ok=True)
        with open(cfg.run / f"{self.name}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True

    def start(self, cfg: LabConfig) -> None:
        with self.changing(cfg):
            self.stopped_mark(cfg).unlink(missing_ok=True)
            self.bring_up(cfg)

    def stop(self, cfg: LabConfig) -> None:
        with self.changing(cfg):
            self.stopped_mark(cfg).touch()
            self.halt(cfg)

    def bring_up(self, cfg: LabConfig) -> None:
        """Launch it unless it runs, and wait until it is healthy."""
        if self.running(cfg):
            if wait_until(lambda: self.healthy(cfg)[0], self.start_timeout_s):
                return
            raise self.failure(cfg, "is running but not healthy")
        for port in self.ports(cfg):
            if port_open(port):
                raise LabError(
                    f"{self.name}: port {port} is already in use by another program. Stop it, or "
                    f"choose another port in .env (docs/commands-and-ports.md lists them)."
                )
        cfg.logs.mkdir(parents=True, exist_ok=True)
        self.launch(cfg)
        if not wait_until(lambda: self.healthy(cfg)[0], self.start_timeout_s, 0.2):
            raise self.failure(cfg, f"did not become healthy within {self.start_timeout_s:.0f}s")

    def failure(self, cfg: LabConfig, what: str) -> LabError:
        detail = self.healthy(cfg)[1]
        return LabError(
            f"{self.name} {what} ({detail}).\nIts log: {self.log(cfg)}\n--- last lines ---\n"
            f"{tail(self.log(cfg))}"
        )

    def halt(self, cfg: LabConfig) -> None:
        pid = self.pid(cfg)
        if pid is not None:
            terminate(pid)
        self.pidfile(cfg).unlink(missing_ok=True)


@dataclass(frozen=True)
class Health:
    """Healthy when GET http://127.0.0.1:<port>/<path> answers 2xx (GET <path> on the Unix
    socket, for a program that listens on one: port None)."""
    port: str | None  # the name of the port's setting, e.g. API_PORT
    path: str


def _no_env(cfg: LabConfig) -> dict[str, str]:
    return {}


def _nothing(cfg: LabConfig) -> None:
    return None


def _no_paths(cfg: LabConfig) -> list[Path]:
    return []


@dataclass(kw_only=True)
class Program(Component):
    """A program the lab runs directly: its command line, its health URL, the ports it binds.

    `prepare` writes what it reads (config_files.py) before it starts; `config_check`, when given,
    is a command line that must accept those files first (nginx -t). As root, it runs as the
    lab's own unprivileged user (privileges.py), who owns what `writes` names, and only that.
    `unix_socket`: where it listens instead of a port (no browser reaches a Unix socket): ./lab
    makes the socket, root's and the lab user's group's, and hands it over as systemd does.
    """
    argv: Callable[[LabConfig], list[str]]
    health: Health
    port_names: tuple[str, ...]
    env: Callable[[LabConfig], dict[str, str]] = _no_env
    prepare: Callable[[LabConfig], None] = _nothing
    config_check: Callable[[LabConfig], list[str]] | None = None
    writes: Callable[[LabConfig], list[Path]] = _no_paths
    unix_socket: Callable[[LabConfig], Path] | None = None

    def ports(self, cfg: LabConfig) -> list[int]:
        return [cfg.port(p) for p in self.port_names]

    def healthy(self, cfg: LabConfig) -> tuple[bool, str]:
        if not self.running(cfg):
            return False, "not running"
        if self.unix_socket is not None:
            where = f"{self.unix_socket(cfg)} (GET {self.health.path})"
            ok = unix_http_ok(self.unix_socket(cfg), self.health.path)
        else:
            where = cfg.url(self.health.port, self.health.path)
            ok = http_ok(where)
        return (True, where) if ok else (False, f"{where} not answering 2xx")

    def launch(self, cfg: LabConfig) -> None:
        self.prepare(cfg)
        env = {**cfg.env, **self.env(cfg)}
        argv = self.argv(cfg)
        user = privileges.lab_user()
        if user is not None:
            privileges.require_reachable(ROOT, user.pw_name, self.name)
            program = Path(shutil.which(argv[0]) or argv[0])
            runs = [program, cfg.venv_bin / "python"] if program.parent == cfg.venv_bin \
                else [program]
            if not all(privileges.others_can_run(p) for p in runs):
                raise LabError(f"{self.name}: {argv[0]} is not executable by {user.pw_name}, "
                               f"the user the lab's programs run as (an interpreter under "
                               f"root's home?): ./lab up makes .venv on Debian's python3 as root")
            for path in self.writes(cfg):
                if not path.exists():
                    path.touch()
            privileges.give(self.writes(cfg), user.pw_name)
        if self.config_check is not None:
            check_argv = self.config_check(cfg)
            check = run(check_argv, log=self.log(cfg), **privileges.as_user(user))
            if check.returncode != 0:
                raise LabError(f"{self.name}: {' '.join(check_argv[:2])} refused the config:\n"
                               f"{check.stderr.strip()}")
        if self.unix_socket is None:
            spawn(argv, env, self.log(cfg), self.pidfile(cfg), ROOT, **privileges.as_user(user))
            return
        path = self.unix_socket(cfg)
        with unix_listener(path) as sock:
            if user is not None:  # nginx's workers connect as the lab user
                os.chown(path, -1, user.pw_gid)
                os.chmod(path, 0o660)
            spawn(socket_activated(cfg.venv_bin / "python", argv, sock), env, self.log(cfg),
                  self.pidfile(cfg), ROOT, pass_fds=(sock.fileno(),), **privileges.as_user(user))
