"""Every component of the native lab, by its compose service name (so `./lab stop db` means
the same in both modes): what it runs, where it answers, what it waits for.

How a component starts and stops is in component.py (servers.py for the lab's own PostgreSQL
and RabbitMQ); the config files a program reads are written by config_files.py.
"""

import shutil
from collections.abc import Callable

from labctl import app_commands, config_files
from labctl.component import Component, Health, Program
from labctl.config import LabConfig
from labctl.servers import Postgres, RabbitMQ
from labkit import sampling

API_SERVICE = "kodekloud-record-store-api"
WORKER_SERVICE = "kodekloud-record-store-worker"


def _venv(cfg: LabConfig, program: str) -> str:
    return str(cfg.venv_bin / program)


def _multiprocess_env(name: str, service: str) -> Callable[[LabConfig], dict[str, str]]:
    """A program whose processes (uvicorn's workers, Celery's pool) share one /metrics: each
    writes its series to PROMETHEUS_MULTIPROC_DIR, emptied at every start. It starts with the
    trace sampling `./lab sampling` chose, read at each start (the supervisor's too)."""
    def env(cfg: LabConfig) -> dict[str, str]:
        mp = cfg.home / f"{name}-metrics"
        if mp.exists():
            shutil.rmtree(mp)
        mp.mkdir(parents=True)
        return {"OTEL_SERVICE_NAME": service, "PYTHONUNBUFFERED": "1",
                "PROMETHEUS_MULTIPROC_DIR": str(mp), **sampling.environment(cfg.home)}
    return env


def api_argv(cfg: LabConfig) -> list[str]:
    argv = app_commands.fill(app_commands.API_COMMAND, host="127.0.0.1", port=cfg.env["API_PORT"],
                             workers=cfg.env.get("API_WORKERS", "2"))
    return [_venv(cfg, argv[0]), *argv[1:]]


def worker_argv(cfg: LabConfig) -> list[str]:
    argv = app_commands.fill(
        app_commands.WORKER_COMMAND, processes=cfg.env.get("WORKER_PROCESSES", "2"),
        pool=cfg.env.get("WORKER_POOL", "threads"),
        concurrency=cfg.env.get("WORKER_CONCURRENCY", "8"),
        queues=app_commands.queues(cfg.env.get("QUEUE_PREFIX", "")))
    return [_venv(cfg, argv[0]), *argv[1:]]


def nginx_argv(cfg: LabConfig, *flags: str) -> list[str]:
    """Its error log from the start (-e): not the package's /var/log/nginx, which only root
    may write."""
    home = config_files.nginx_dir(cfg)
    return ["nginx", *flags, "-c", str(home / "nginx.conf"), "-p", str(home),
            "-e", str(config_files.nginx_error_log(cfg))]


def prometheus_argv(cfg: LabConfig) -> list[str]:
    home = config_files.prometheus_dir(cfg)
    return [
        "prometheus", f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}", "--storage.tsdb.retention.time=7d",
        f"--web.listen-address=127.0.0.1:{cfg.port('PROMETHEUS_PORT')}",
        # No --web.enable-lifecycle: nothing of the lab reloads or stops Prometheus over HTTP,
        # and a web page could (POST /-/quit needs no preflight).
        "--enable-feature=exemplar-storage",
    ]


def alertmanager_argv(cfg: LabConfig) -> list[str]:
    """On the Unix socket ./lab hands it (a web page reaches any loopback port, and Alertmanager
    answers every origin): its port, ALERTMANAGER_PORT, is the gateway's, which refuses other
    pages' origins and host names (nginx/templates/default.conf.template)."""
    home = config_files.alertmanager_dir(cfg)
    return [
        "prometheus-alertmanager", f"--config.file={home / 'alertmanager.yml'}",
        f"--storage.path={home / 'data'}", "--web.systemd-socket",
        f"--web.external-url=http://localhost:{cfg.port('ALERTMANAGER_PORT')}/",
        "--cluster.listen-address=",  # a single instance: no gossip port
    ]


def _postgres_dsn(cfg: LabConfig) -> str:
    return (f"postgresql://{cfg.env['POSTGRES_USER']}:{cfg.env['POSTGRES_PASSWORD']}@127.0.0.1:"
            f"{cfg.port('POSTGRES_PORT')}/{cfg.env['POSTGRES_DB']}?sslmode=disable")


COMPONENTS: list[Component] = [
    Postgres("db", "PostgreSQL (the lab's own cluster)"),
    RabbitMQ("rabbitmq", "RabbitMQ (the lab's own node)", start_timeout_s=60),
    Program(
        name="jaeger", description="trace stand-in: OTLP/HTTP in, Jaeger query API out",
        argv=lambda c: [_venv(c, "python"), "-m", "tracestore"],
        health=Health("JAEGER_UI_PORT", "/health"),
        port_names=("JAEGER_UI_PORT", "OTLP_HTTP_PORT"),
        env=lambda c: {"TRACESTORE_QUERY_PORT": c.env["JAEGER_UI_PORT"],
                       "TRACESTORE_OTLP_PORT": c.env["OTLP_HTTP_PORT"]},
    ),
    Program(
        name="api", description="checkout API (FastAPI)", argv=api_argv,
        health=Health("API_PORT", "/health"), port_names=("API_PORT",),
        # GET /orders/{id}/logs reads the gateway's, its own and the worker's logs from here.
        env=lambda c: {**_multiprocess_env("api", API_SERVICE)(c), "LOG_DIR": str(c.logs)},
        depends_on=("migrate", "rabbitmq", "jaeger"), writes=lambda c: [c.home / "api-metrics"],
    ),
    Program(
        name="worker", description="order worker (Celery)", argv=worker_argv,
        health=Health("WORKER_METRICS_PORT", "/metrics"), port_names=("WORKER_METRICS_PORT",),
        env=_multiprocess_env("worker", WORKER_SERVICE), start_timeout_s=45,
        depends_on=("migrate", "rabbitmq", "jaeger"), writes=lambda c: [c.home / "worker-metrics"],
    ),
    Program(
        # With "daemon off" the spawned process is nginx's master, the pid nginx records too.
        name="gateway", description="nginx gateway",
        argv=lambda c: nginx_argv(c, "-g", "daemon off;"), prepare=config_files.write_nginx,
        config_check=lambda c: nginx_argv(c, "-t"),
        health=Health("GATEWAY_PORT", "/gateway/health"),
        port_names=("GATEWAY_PORT", "GATEWAY_STATUS_PORT", "ALERTMANAGER_PORT"),
        depends_on=("api",),
        # Its temp files and pid, the access log (its log here) and the error log.
        writes=lambda c: [config_files.nginx_dir(c) / "tmp", c.logs / "gateway.log",
                          config_files.nginx_error_log(c)],
    ),
    Program(
        name="prometheus", description="Prometheus", argv=prometheus_argv,
        prepare=config_files.write_prometheus, health=Health("PROMETHEUS_PORT", "/-/ready"),
        port_names=("PROMETHEUS_PORT",),
        writes=lambda c: [config_files.prometheus_dir(c) / "data"],
    ),
    Program(
        name="alert-receiver", description="alert receiver: where notifications land",
        argv=lambda c: [_venv(c, "python"), "-m", "alertreceiver"],
        health=Health("ALERT_RECEIVER_PORT", "/health"), port_names=("ALERT_RECEIVER_PORT",),
    ),
    Program(
        name="alertmanager", description="Alertmanager", argv=alertmanager_argv,
        prepare=config_files.write_alertmanager, health=Health(None, "/-/ready"),
        port_names=(), unix_socket=config_files.alertmanager_socket,
        depends_on=("alert-receiver",),
        writes=lambda c: [config_files.alertmanager_dir(c) / "data"],
    ),
    Program(
        name="postgres-exporter", description="PostgreSQL exporter",
        argv=lambda c: ["prometheus-postgres-exporter",
                        f"--web.listen-address=127.0.0.1:{c.port('POSTGRES_EXPORTER_PORT')}"],
        health=Health("POSTGRES_EXPORTER_PORT", "/metrics"),
        port_names=("POSTGRES_EXPORTER_PORT",),
        env=lambda c: {"DATA_SOURCE_NAME": _postgres_dsn(c)}, depends_on=("db",),
    ),
    Program(
        name="nginx-exporter", description="nginx exporter (stub_status)",
        argv=lambda c: [
            "prometheus-nginx-exporter",
            f"-nginx.scrape-uri=http://127.0.0.1:{c.port('GATEWAY_STATUS_PORT')}/stub_status",
            f"-web.listen-address=127.0.0.1:{c.port('NGINX_EXPORTER_PORT')}"],
        health=Health("NGINX_EXPORTER_PORT", "/metrics"), port_names=("NGINX_EXPORTER_PORT",),
        depends_on=("gateway",),
    ),
]

BY_NAME = {c.name: c for c in COMPONENTS}
