"""The lab's own PostgreSQL cluster and RabbitMQ node under its home, beside (never instead of)
the machine's system instances. As root each runs as its own system user."""

import contextlib
import glob
import os
import pwd
import re
import signal
from pathlib import Path

from labctl import config_files, privileges
from labctl.component import Component
from labctl.config import LabConfig
from labctl.proc import LabError, http_ok, pid_alive, port_open, read_pid, run, terminate


class Postgres(Component):
    """The lab's own PostgreSQL cluster under .lab/, never the machine's system instance.

    Only the cluster's owner reaches its socket (a directory of mode 0700; as root the owner
    is the postgres user), and only as the superuser, by peer authentication: the OS user must
    be the owner. Everyone else, the lab's programs included, logs in over TCP with a password.
    """

    @staticmethod
    def bindir() -> Path:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
        if not found:
            raise LabError("db: PostgreSQL server binaries not found (apt package postgresql)")
        return Path(found[-1]).parent

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if privileges.is_root() else argv

    def data(self, cfg: LabConfig) -> Path:
        return cfg.home / "postgres" / "data"

    def sockets(self, cfg: LabConfig) -> Path:
        return cfg.home / "postgres" / "run"

    @staticmethod
    def owner() -> str:
        """The OS user the cluster runs as, the one peer authentication lets in."""
        return "postgres" if privileges.is_root() else pwd.getpwuid(os.geteuid()).pw_name

    def write_access(self, cfg: LabConfig) -> None:
        """pg_hba.conf and pg_ident.conf at every start, so a cluster initialised with trust
        (before this) loses it too."""
        data = self.data(cfg)
        (data / "pg_ident.conf").write_text(
            "# written by ./lab at every start: the cluster's OS owner is the superuser\n"
            f"lab {self.owner()} postgres\n")
        (data / "pg_hba.conf").write_text(
            "# written by ./lab at every start (labctl/servers.py)\n"
            "# The socket: the superuser, for the cluster's OS owner only (peer).\n"
            "local all postgres peer map=lab\n"
            "# TCP on loopback: every role, with its password.\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n")

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
        privileges.require_reachable(base, "postgres", self.name)
        log = self.log(cfg)
        log.touch()
        fresh = not (data / "PG_VERSION").exists()
        if fresh:
            data.mkdir(parents=True, exist_ok=True)
            privileges.give([base], "postgres")
            privileges.give([log], "postgres")
            r = run(self._as_owner([
                str(self.bindir() / "initdb"), "-D", str(data), "-U", "postgres",
                "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8",
                "--locale=C.UTF-8",
            ]), log=log)
            if r.returncode != 0:
                raise self.failure(cfg, "could not initialise its cluster (initdb)")
        self.write_access(cfg)
        sockets.chmod(0o700)
        privileges.give([sockets, data / "pg_hba.conf", data / "pg_ident.conf", log], "postgres")
        opts = (f"-p {cfg.port('POSTGRES_PORT')} -k {sockets} -c listen_addresses=127.0.0.1 "
                "-c unix_socket_permissions=0700 "
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
        privileges.require_reachable(base, "rabbitmq", self.name)
        config_files.write_rabbitmq(cfg)
        self.log(cfg).touch()
        privileges.give([base], "rabbitmq")
        privileges.give([self.log(cfg)], "rabbitmq")
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
