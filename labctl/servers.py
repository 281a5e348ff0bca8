"""The lab's own PostgreSQL cluster and RabbitMQ node under its home, beside (never instead of)
the machine's system instances. As root each runs as its own system user."""

import contextlib
import glob
import os
import pwd
import re
import signal
from pathlib import Path

from labctl import config_files
from labctl.component import Component
from labctl.config import LabConfig
from labctl.proc import LabError, http_ok, pid_alive, port_open, read_pid, run, terminate


def _is_root() -> bool:
    return os.geteuid() == 0


def _chown(path: Path, user: str) -> None:
    if _is_root():
        pw = pwd.getpwnam(user)
        for p in [path, *path.rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)


def _require_reachable(path: Path, user: str, component: str) -> None:
    """As root, PostgreSQL and RabbitMQ run as their own users, who must reach .lab/."""
    if not _is_root():
        return
    probe = run(["runuser", "-u", user, "--", "test", "-x", str(path)], timeout_s=10)
    if probe.returncode != 0:
        raise LabError(
            f"{component}: the '{user}' user cannot reach {path}. Keep the lab in a directory "
            f"other users may traverse (e.g. /srv or /opt), or allow it: chmod o+x on each "
            f"parent directory of {path}."
        )


class Postgres(Component):
    """The lab's own PostgreSQL cluster under .lab/, never the machine's system instance."""

    @staticmethod
    def bindir() -> Path:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
        if not found:
            raise LabError("db: PostgreSQL server binaries not found (apt package postgresql)")
        return Path(found[-1]).parent

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if _is_root() else argv

    def data(self, cfg: LabConfig) -> Path:
        return cfg.home / "postgres" / "data"

    def sockets(self, cfg: LabConfig) -> Path:
        return cfg.home / "postgres" / "run"

    def ports(self, cfg: LabConfig) -> list[int]:
        return [cfg.port("POSTGRES_PORT")]

    def pid(self, cfg: LabConfig) -> int | None:
        pid = read_pid(self.data(cfg) / "postmaster.pid")
        return pid if pid is not None and pid_alive(pid) else None

    def healthy(self, cfg: LabConfig) -> tuple[bool, str]:
        if not self.running(cfg):
            return False, "not running"
        r = run([str(self.bindir() / "pg_isready"), "-q", "-h", "127.0.0.1",
                 "-p", str(cfg.port("POSTGRES_PORT")), "-t", "2"], timeout_s=5)
        return (r.returncode == 0, "accepting connections" if r.returncode == 0 else "not ready")

    def launch(self, cfg: LabConfig) -> None:
        base = cfg.home / "postgres"
        data, sockets = self.data(cfg), self.sockets(cfg)
        sockets.mkdir(parents=True, exist_ok=True)
        _require_reachable(base, "postgres", self.name)
        log = self.log(cfg)
        log.touch()
        fresh = not (data / "PG_VERSION").exists()
        if fresh:
            data.mkdir(parents=True, exist_ok=True)
            _chown(base, "postgres")
            _chown(log, "postgres")
            r = run(self._as_owner([
                str(self.bindir() / "initdb"), "-D", str(data), "-U", "postgres",
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                "--locale=C.UTF-8",
            ]), log=log)
            if r.returncode != 0:
                raise self.failure(cfg, "could not initialise its cluster (initdb)")
        _chown(sockets, "postgres")
        _chown(log, "postgres")
        opts = (f"-p {cfg.port('POSTGRES_PORT')} -k {sockets} -c listen_addresses=127.0.0.1 "
                "-c shared_buffers=64MB -c max_connections=100")
        r = run(self._as_owner([
            str(self.bindir() / "pg_ctl"), "start", "-D", str(data), "-l", str(log),
            "-o", opts, "-w", "-t", str(int(self.start_timeout_s)),
        ]), timeout_s=self.start_timeout_s + 5)
        if r.returncode != 0:
            raise self.failure(cfg, "did not start (pg_ctl)")
        self._ensure_app_role(cfg)

    def psql(self, cfg: LabConfig, sql: str, db: str = "postgres") -> str:
        r = run(self._as_owner([
            str(self.bindir() / "psql"), "-h", str(self.sockets(cfg)),
            "-p", str(cfg.port("POSTGRES_PORT")), "-U", "postgres", "-d", db,
            "-v", "ON_ERROR_STOP=1", "-tAc", sql,
        ]), timeout_s=30)
        if r.returncode != 0:
            raise LabError(f"db: psql failed: {r.stderr.strip()}")
        return r.stdout.strip()

    def _ensure_app_role(self, cfg: LabConfig) -> None:
        user, password, db = (cfg.env["POSTGRES_USER"], cfg.env["POSTGRES_PASSWORD"],
                              cfg.env["POSTGRES_DB"])
        pw = password.replace("'", "''")
        if not self.psql(cfg, f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'"):
            self.psql(cfg, f'CREATE ROLE "{user}" LOGIN PASSWORD \'{pw}\'')
        else:
            self.psql(cfg, f'ALTER ROLE "{user}" PASSWORD \'{pw}\'')
        self.psql(cfg, f'GRANT pg_monitor TO "{user}"')  # statistics for the exporter
        if not self.psql(cfg, f"SELECT 1 FROM pg_database WHERE datname = '{db}'"):
            self.psql(cfg, f'CREATE DATABASE "{db}" OWNER "{user}"')

    def halt(self, cfg: LabConfig) -> None:
        if self.running(cfg):
            run(self._as_owner([str(self.bindir() / "pg_ctl"), "stop", "-D", str(self.data(cfg)),
                                "-m", "fast", "-w", "-t", "30"]), timeout_s=40)
        pid = self.pid(cfg)
        if pid:
            terminate(pid, sig=signal.SIGQUIT)


def _version_key(path: str) -> int:
    m = re.search(r"/postgresql/(\d+)/", path)
    return int(m.group(1)) if m else 0


class RabbitMQ(Component):
    """The lab's own RabbitMQ node beside the system one: own node name, ports and data."""

    def node(self, cfg: LabConfig) -> str:
        return f"lab{cfg.port('RABBITMQ_PORT')}@localhost"

    def base(self, cfg: LabConfig) -> Path:
        return config_files.rabbitmq_dir(cfg)

    def ports(self, cfg: LabConfig) -> list[int]:
        return [cfg.port(p) for p in ("RABBITMQ_PORT", "RABBITMQ_DIST_PORT",
                                       "RABBITMQ_MANAGEMENT_PORT", "RABBITMQ_PROMETHEUS_PORT")]

    def pidfile(self, cfg: LabConfig) -> Path:
        return self.base(cfg) / "rabbitmq.pid"

    def _env(self, cfg: LabConfig) -> dict[str, str]:
        base = self.base(cfg)
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node(cfg),
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(cfg.port("RABBITMQ_PORT")),
            "RABBITMQ_DIST_PORT": str(cfg.port("RABBITMQ_DIST_PORT")),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(self.pidfile(cfg)),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_LOGS": str(self.log(cfg)),
        }

    def healthy(self, cfg: LabConfig) -> tuple[bool, str]:
        if not self.running(cfg):
            return False, "not running"
        if not port_open(cfg.port("RABBITMQ_PORT")):
            return False, "AMQP port closed"
        if not http_ok(cfg.url("RABBITMQ_PROMETHEUS_PORT", "/metrics"), timeout_s=3):
            return False, "Prometheus endpoint not answering"
        return True, "AMQP and metrics up"

    def running(self, cfg: LabConfig) -> bool:
        # Only this home's node: an open port may belong to another lab's broker.
        return self.pid(cfg) is not None

    def launch(self, cfg: LabConfig) -> None:
        base = self.base(cfg)
        for sub in ("mnesia", "log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        _require_reachable(base, "rabbitmq", self.name)
        config_files.write_rabbitmq(cfg)
        self.log(cfg).touch()
        _chown(base, "rabbitmq")
        _chown(self.log(cfg), "rabbitmq")
        r = run(["rabbitmq-server", "-detached"], env=self._env(cfg), log=self.log(cfg))
        if r.returncode != 0:
            raise self.failure(cfg, "did not start (rabbitmq-server -detached)")

    def halt(self, cfg: LabConfig) -> None:
        if self.running(cfg):
            # A stack started on other ports has another node name: then its pid ends it.
            with contextlib.suppress(LabError):
                run(["rabbitmqctl", "-n", self.node(cfg), "stop", str(self.pidfile(cfg))],
                    env=self._env(cfg), timeout_s=60)
        pid = self.pid(cfg)
        if pid:
            terminate(pid)
