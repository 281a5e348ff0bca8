"""The lab's components in native mode: how each starts, stops and proves it is healthy.

Names are the compose service names of DESIGN.md, so `./lab stop db` means the same in both modes.
"""

import contextlib
import glob
import json
import os
import pwd
import re
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path

from labctl.config import ROOT, LabConfig
from labctl.proc import (
    LabError,
    http_ok,
    pid_alive,
    port_open,
    read_pid,
    run,
    spawn,
    tail,
    terminate,
    wait_until,
)


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


def render_template(text: str, values: dict[str, str]) -> str:
    """envsubst as the nginx image runs it: only ${NAME} of known names; nginx's $vars stay."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise LabError(f"template variable ${{{name}}} is not set")
        return values[name]

    return re.sub(r"\$\{([A-Z][A-Z0-9_]*)\}", sub, text)


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

    def start(self, cfg: LabConfig) -> None:
        if self.running(cfg):
            if wait_until(lambda: self.healthy(cfg)[0], self.start_timeout_s):
                return
            raise self.failure(cfg, "is running but not healthy")
        for port in self.ports(cfg):
            if port_open(port):
                raise LabError(
                    f"{self.name}: port {port} is already in use by another program. Stop it, or "
                    f"choose another port in .env (see the port table in README.md)."
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

    def stop(self, cfg: LabConfig) -> None:
        pid = self.pid(cfg)
        if pid is not None:
            terminate(pid)
        self.pidfile(cfg).unlink(missing_ok=True)

    def processes(self, cfg: LabConfig) -> list[int]:
        """Every process of this component still alive (for `down` to prove nothing is left)."""
        pid = self.pid(cfg)
        return [pid] if pid else []


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

    def stop(self, cfg: LabConfig) -> None:
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
        return cfg.home / "rabbitmq"

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
        (base / "enabled_plugins").write_text("[rabbitmq_management,rabbitmq_prometheus].\n")
        template = (ROOT / "rabbitmq" / "rabbitmq.conf").read_text()
        native = (
            "\n# native mode (written by ./lab): loopback only, the lab's own ports\n"
            f"listeners.tcp.default = 127.0.0.1:{cfg.port('RABBITMQ_PORT')}\n"
            f"management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {cfg.port('RABBITMQ_MANAGEMENT_PORT')}\n"
            f"prometheus.tcp.ip = 127.0.0.1\n"
            f"prometheus.tcp.port = {cfg.port('RABBITMQ_PROMETHEUS_PORT')}\n"
            f"default_user = {cfg.env['RABBITMQ_USER']}\n"
            f"default_pass = {cfg.env['RABBITMQ_PASSWORD']}\n"
        )
        (base / "rabbitmq.conf").write_text(template + native)
        self.log(cfg).touch()
        _chown(base, "rabbitmq")
        _chown(self.log(cfg), "rabbitmq")
        r = run(["rabbitmq-server", "-detached"], env=self._env(cfg), log=self.log(cfg))
        if r.returncode != 0:
            raise self.failure(cfg, "did not start (rabbitmq-server -detached)")

    def stop(self, cfg: LabConfig) -> None:
        if self.running(cfg):
            # A stack started on other ports has another node name: then its pid ends it.
            with contextlib.suppress(LabError):
                run(["rabbitmqctl", "-n", self.node(cfg), "stop", str(self.pidfile(cfg))],
                    env=self._env(cfg), timeout_s=60)
        pid = self.pid(cfg)
        if pid:
            terminate(pid)


class Program(Component):
    """A program the lab runs directly: argv, a health URL and the ports it binds."""

    def __init__(self, name: str, description: str, argv, health_path, port_names,
                 extra_env=None, start_timeout_s: float = 30.0, depends_on=()):
        super().__init__(name, description, start_timeout_s, tuple(depends_on))
        self._argv = argv
        self._health = health_path
        self._ports = port_names
        self._extra_env = extra_env or (lambda cfg: {})

    def ports(self, cfg: LabConfig) -> list[int]:
        return [cfg.port(p) for p in self._ports]

    def healthy(self, cfg: LabConfig) -> tuple[bool, str]:
        if not self.running(cfg):
            return False, "not running"
        port_name, path = self._health
        url = cfg.url(port_name, path)
        return (True, url) if http_ok(url) else (False, f"{url} not answering 2xx")

    def launch(self, cfg: LabConfig) -> None:
        env = {**cfg.env, **self._extra_env(cfg)}
        spawn(self._argv(cfg), env, self.log(cfg), self.pidfile(cfg), ROOT)


def _prometheus_files(cfg: LabConfig) -> list[str]:
    """Prometheus reads the repo's prometheus.yml; natively only its file_sd targets differ."""
    home = cfg.home / "prometheus"
    (home / "targets").mkdir(parents=True, exist_ok=True)
    for link, target in (("prometheus.yml", "prometheus/prometheus.yml"),
                         ("rules", "prometheus/rules")):
        dest = home / link
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        dest.symlink_to(ROOT / target)
    targets = {
        "api": [f"127.0.0.1:{cfg.port('API_PORT')}"],
        "worker": [f"127.0.0.1:{cfg.port('WORKER_METRICS_PORT')}"],
        "rabbitmq": [f"127.0.0.1:{cfg.port('RABBITMQ_PROMETHEUS_PORT')}"],
        "postgres": [f"127.0.0.1:{cfg.port('POSTGRES_EXPORTER_PORT')}"],
        "nginx": [f"127.0.0.1:{cfg.port('NGINX_EXPORTER_PORT')}"],
        "alertmanager": [f"127.0.0.1:{cfg.port('ALERTMANAGER_PORT')}"],
        "prometheus": [f"127.0.0.1:{cfg.port('PROMETHEUS_PORT')}"],
    }
    for job, addrs in targets.items():
        (home / "targets" / f"{job}.json").write_text(json.dumps([{"targets": addrs}]) + "\n")
    return [
        "prometheus", f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}", "--storage.tsdb.retention.time=7d",
        f"--web.listen-address=127.0.0.1:{cfg.port('PROMETHEUS_PORT')}",
        "--enable-feature=exemplar-storage", "--web.enable-lifecycle",
    ]


# The receiver's address in prometheus/alertmanager.yml (compose); natively only it differs.
COMPOSE_ALERT_RECEIVER = "alert-receiver:9095"


def _alertmanager_files(cfg: LabConfig) -> list[str]:
    home = cfg.home / "alertmanager"
    (home / "data").mkdir(parents=True, exist_ok=True)
    shared = (ROOT / "prometheus" / "alertmanager.yml").read_text()
    if COMPOSE_ALERT_RECEIVER not in shared:
        raise LabError(f"alertmanager: prometheus/alertmanager.yml must name "
                       f"{COMPOSE_ALERT_RECEIVER}")
    native = shared.replace(COMPOSE_ALERT_RECEIVER,
                            f"127.0.0.1:{cfg.port('ALERT_RECEIVER_PORT')}")
    (home / "alertmanager.yml").write_text(
        "# written by ./lab from prometheus/alertmanager.yml (receiver address made local)\n"
        + native
    )
    return [
        "prometheus-alertmanager", f"--config.file={home / 'alertmanager.yml'}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{cfg.port('ALERTMANAGER_PORT')}",
        "--cluster.listen-address=",  # a single instance: no gossip port
    ]


def _nginx_files(cfg: LabConfig) -> list[str]:
    """The gateway runs the repo's server template, rendered the way the nginx image renders it."""
    home = cfg.home / "nginx"
    for sub in ("tmp", "conf.d"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    values = {
        "GATEWAY_LISTEN": f"{cfg.env['GATEWAY_BIND']}:{cfg.port('GATEWAY_PORT')}",
        "GATEWAY_STATUS_LISTEN": f"127.0.0.1:{cfg.port('GATEWAY_STATUS_PORT')}",
        "API_UPSTREAM": f"127.0.0.1:{cfg.port('API_PORT')}",
        "OTLP_UPSTREAM": f"127.0.0.1:{cfg.port('OTLP_HTTP_PORT')}",
        "GATEWAY_UPSTREAM_RESOLVE": "",  # addresses, not names: nothing to re-resolve
        "GATEWAY_ACCESS_LOG": str(cfg.logs / "gateway.log"),
        "STOREFRONT_ROOT": str(ROOT / "nginx" / "html"),
    }
    template = (ROOT / "nginx" / "templates" / "default.conf.template").read_text()
    (home / "conf.d" / "default.conf").write_text(render_template(template, values))
    user = "user root;\n" if _is_root() else ""
    (home / "nginx.conf").write_text(
        f"# written by ./lab (native mode); the server config is nginx/templates/\n"
        f"{user}worker_processes 2;\npid {cfg.run / 'gateway.pid'};\n"
        f"error_log {cfg.logs / 'gateway.error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n"
        f"  client_body_temp_path {home / 'tmp'}/body;\n  proxy_temp_path {home / 'tmp'}/proxy;\n"
        f"  fastcgi_temp_path {home / 'tmp'}/fastcgi;\n  uwsgi_temp_path {home / 'tmp'}/uwsgi;\n"
        f"  scgi_temp_path {home / 'tmp'}/scgi;\n"
        f"  include {home / 'conf.d'}/*.conf;\n}}\n"
    )
    return ["nginx", "-g", "daemon off;", "-c", str(home / "nginx.conf"), "-p", str(home)]


class Gateway(Program):
    def launch(self, cfg: LabConfig) -> None:
        argv = self._argv(cfg)
        check = run([*argv[:1], "-t", *argv[3:]], log=self.log(cfg))
        if check.returncode != 0:
            raise LabError(f"gateway: nginx -t refused the config:\n{check.stderr.strip()}")
        # With "daemon off" the spawned process is nginx's master, the pid nginx records too.
        spawn(argv, cfg.env, self.log(cfg), self.pidfile(cfg), ROOT)


def _venv(cfg: LabConfig, program: str) -> str:
    return str(cfg.venv_bin / program)


def _app_env(service: str):
    def env(cfg: LabConfig) -> dict[str, str]:
        return {"OTEL_SERVICE_NAME": service, "PYTHONUNBUFFERED": "1"}
    return env


def _multiprocess_env(name: str, service: str):
    """A program whose processes (uvicorn's workers, Celery's pool) share one /metrics: each
    writes its series to PROMETHEUS_MULTIPROC_DIR, emptied at every start."""
    def env(cfg: LabConfig) -> dict[str, str]:
        mp = cfg.home / f"{name}-metrics"
        if mp.exists():
            shutil.rmtree(mp)
        mp.mkdir(parents=True)
        return {**_app_env(service)(cfg), "PROMETHEUS_MULTIPROC_DIR": str(mp)}
    return env


COMPONENTS: list[Component] = [
    Postgres("db", "PostgreSQL (the lab's own cluster)"),
    RabbitMQ("rabbitmq", "RabbitMQ (the lab's own node)", start_timeout_s=60),
    Program(
        "jaeger", "trace stand-in: OTLP/HTTP in, Jaeger query API out",
        lambda c: [_venv(c, "python"), "-m", "tracestore"],
        ("JAEGER_UI_PORT", "/health"), ("JAEGER_UI_PORT", "OTLP_HTTP_PORT"),
        lambda c: {"TRACESTORE_QUERY_PORT": c.env["JAEGER_UI_PORT"],
                   "TRACESTORE_OTLP_PORT": c.env["OTLP_HTTP_PORT"]},
    ),
    Program(
        "api", "checkout API (FastAPI)",
        lambda c: [_venv(c, "uvicorn"), "api.main:app", "--host", "127.0.0.1",
                   "--port", c.env["API_PORT"], "--workers", c.env.get("API_WORKERS", "2"),
                   "--no-access-log", "--timeout-keep-alive", "75",
                   "--timeout-graceful-shutdown", "5"],
        ("API_PORT", "/health"), ("API_PORT",),
        _multiprocess_env("api", "kodekloud-record-store-api"),
        depends_on=("migrate", "rabbitmq", "jaeger"),
    ),
    Program(
        "worker", "order worker (Celery)",
        lambda c: [_venv(c, "celery"), "--quiet", "-A", "worker.app", "worker",
                   "--pool", c.env.get("WORKER_POOL", "threads"),
                   "--concurrency", c.env.get("WORKER_CONCURRENCY", "16"),
                   "--queues", ",".join(f"{c.env.get('QUEUE_PREFIX', '')}{q}"
                                        for q in ("orders", "emails")),
                   "--hostname", "worker@%h",
                   "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        ("WORKER_METRICS_PORT", "/metrics"), ("WORKER_METRICS_PORT",),
        _multiprocess_env("worker", "kodekloud-record-store-worker"), start_timeout_s=45,
        depends_on=("migrate", "rabbitmq", "jaeger"),
    ),
    Gateway(
        "gateway", "nginx gateway", _nginx_files,
        ("GATEWAY_PORT", "/gateway/health"), ("GATEWAY_PORT", "GATEWAY_STATUS_PORT"),
        depends_on=("api",),
    ),
    Program(
        "prometheus", "Prometheus", _prometheus_files,
        ("PROMETHEUS_PORT", "/-/ready"), ("PROMETHEUS_PORT",), start_timeout_s=30,
    ),
    Program(
        "alert-receiver", "alert receiver: where notifications land",
        lambda c: [_venv(c, "python"), "-m", "alertreceiver"],
        ("ALERT_RECEIVER_PORT", "/health"), ("ALERT_RECEIVER_PORT",),
    ),
    Program(
        "alertmanager", "Alertmanager", _alertmanager_files,
        ("ALERTMANAGER_PORT", "/-/ready"), ("ALERTMANAGER_PORT",),
        depends_on=("alert-receiver",),
    ),
    Program(
        "postgres-exporter", "PostgreSQL exporter",
        lambda c: ["prometheus-postgres-exporter",
                   f"--web.listen-address=127.0.0.1:{c.port('POSTGRES_EXPORTER_PORT')}"],
        ("POSTGRES_EXPORTER_PORT", "/metrics"), ("POSTGRES_EXPORTER_PORT",),
        lambda c: {"DATA_SOURCE_NAME": (
            f"postgresql://{c.env['POSTGRES_USER']}:{c.env['POSTGRES_PASSWORD']}@127.0.0.1:"
            f"{c.port('POSTGRES_PORT')}/{c.env['POSTGRES_DB']}?sslmode=disable")},
        depends_on=("db",),
    ),
    Program(
        "nginx-exporter", "nginx exporter (stub_status)",
        lambda c: ["prometheus-nginx-exporter",
                   f"-nginx.scrape-uri=http://127.0.0.1:{c.port('GATEWAY_STATUS_PORT')}/stub_status",
                   f"-web.listen-address=127.0.0.1:{c.port('NGINX_EXPORTER_PORT')}"],
        ("NGINX_EXPORTER_PORT", "/metrics"), ("NGINX_EXPORTER_PORT",), depends_on=("gateway",),
    ),
]

BY_NAME = {c.name: c for c in COMPONENTS}
