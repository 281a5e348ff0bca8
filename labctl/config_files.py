"""The config files native mode writes under the lab's home, from the files compose mounts.

Each `write_*` only writes; the command lines that read these files are in components.py and
servers.py, and find them by the `*_dir` functions here.
"""

import json
import os
import re
from pathlib import Path

from labctl.config import ROOT, LabConfig
from labctl.proc import LabError

# The receiver's address in prometheus/alertmanager.yml (compose); natively only it differs.
COMPOSE_ALERT_RECEIVER = "alert-receiver:9095"


def render_template(text: str, values: dict[str, str]) -> str:
    """envsubst as the nginx image runs it: only ${NAME} of known names; nginx's $vars stay."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise LabError(f"template variable ${{{name}}} is not set")
        return values[name]

    return re.sub(r"\$\{([A-Z][A-Z0-9_]*)\}", sub, text)


def prometheus_dir(cfg: LabConfig) -> Path:
    return cfg.home / "prometheus"


def write_prometheus(cfg: LabConfig) -> None:
    """Prometheus reads the repo's prometheus.yml; natively only its file_sd targets differ."""
    home = prometheus_dir(cfg)
    for sub in ("targets", "data"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    for link, target in (("prometheus.yml", "prometheus/prometheus.yml"),
                         ("rules", "prometheus/rules")):
        dest = home / link
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        dest.symlink_to(ROOT / target)
    targets = {
        "api": "API_PORT", "worker": "WORKER_METRICS_PORT", "rabbitmq": "RABBITMQ_PROMETHEUS_PORT",
        "postgres": "POSTGRES_EXPORTER_PORT", "nginx": "NGINX_EXPORTER_PORT",
        "alertmanager": "ALERTMANAGER_PORT", "prometheus": "PROMETHEUS_PORT",
    }
    for job, port_name in targets.items():
        addrs = [f"127.0.0.1:{cfg.port(port_name)}"]
        (home / "targets" / f"{job}.json").write_text(json.dumps([{"targets": addrs}]) + "\n")


def alertmanager_dir(cfg: LabConfig) -> Path:
    return cfg.home / "alertmanager"


def alertmanager_socket(cfg: LabConfig) -> Path:
    """Where Alertmanager listens natively (components.py), the gateway's upstream for it."""
    return alertmanager_dir(cfg) / "web.sock"


def write_alertmanager(cfg: LabConfig) -> None:
    home = alertmanager_dir(cfg)
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


def nginx_dir(cfg: LabConfig) -> Path:
    return cfg.home / "nginx"


def nginx_error_log(cfg: LabConfig) -> Path:
    return cfg.logs / "gateway.error.log"


def write_nginx(cfg: LabConfig) -> None:
    """The gateway runs the repo's server template, rendered the way the nginx image renders it."""
    home = nginx_dir(cfg)
    for sub in ("tmp", "conf.d"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    values = {
        "GATEWAY_LISTEN": f"{cfg.env['GATEWAY_BIND']}:{cfg.port('GATEWAY_PORT')}",
        "GATEWAY_SERVER_NAMES": cfg.env["GATEWAY_SERVER_NAMES"],
        "GATEWAY_STATUS_LISTEN": f"127.0.0.1:{cfg.port('GATEWAY_STATUS_PORT')}",
        "API_UPSTREAM": f"127.0.0.1:{cfg.port('API_PORT')}",
        "OTLP_UPSTREAM": f"127.0.0.1:{cfg.port('OTLP_HTTP_PORT')}",
        "GATEWAY_UPSTREAM_RESOLVE": "",  # addresses, not names: nothing to re-resolve
        "GATEWAY_ACCESS_LOG": str(cfg.logs / "gateway.log"),
        "GATEWAY_ACCESS_LOG_COPY": "/dev/null",  # the access log is in the log dir already
        "GATEWAY_JAEGER_QUERY_UPSTREAM": f"127.0.0.1:{cfg.port('JAEGER_UI_PORT')}",
        "GATEWAY_PROMETHEUS_UPSTREAM": f"127.0.0.1:{cfg.port('PROMETHEUS_PORT')}",
        # Alertmanager's port is the gateway's, on loopback whatever GATEWAY_BIND is.
        "GATEWAY_ALERTMANAGER_LISTEN": f"127.0.0.1:{cfg.port('ALERTMANAGER_PORT')}",
        "GATEWAY_ALERTMANAGER_UPSTREAM": f"unix:{alertmanager_socket(cfg)}",
        "GATEWAY_JAEGER_UI_PORT": str(cfg.port("JAEGER_UI_PORT")),
        "GATEWAY_GRAFANA_PORT": str(cfg.port("GRAFANA_PORT")),
        "STOREFRONT_ROOT": str(ROOT / "nginx" / "html"),
        "GATEWAY_PROGRESS_ROOT": str(cfg.home),  # progress.json, as ./lab check records it
    }
    template = (ROOT / "nginx" / "templates" / "default.conf.template").read_text()
    (home / "conf.d" / "default.conf").write_text(render_template(template, values))
    # No `user`: the master runs as the lab's unprivileged user (components.py), its workers too.
    (home / "nginx.conf").write_text(
        f"# written by ./lab (native mode); the server config is nginx/templates/\n"
        f"worker_processes 2;\npid {home / 'tmp' / 'nginx.pid'};\n"
        f"error_log {nginx_error_log(cfg)} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n"
        f"  client_body_temp_path {home / 'tmp'}/body;\n  proxy_temp_path {home / 'tmp'}/proxy;\n"
        f"  fastcgi_temp_path {home / 'tmp'}/fastcgi;\n  uwsgi_temp_path {home / 'tmp'}/uwsgi;\n"
        f"  scgi_temp_path {home / 'tmp'}/scgi;\n"
        f"  include {home / 'conf.d'}/*.conf;\n}}\n"
    )


def rabbitmq_dir(cfg: LabConfig) -> Path:
    return cfg.home / "rabbitmq"


def write_rabbitmq(cfg: LabConfig) -> None:
    """The shared rabbitmq/rabbitmq.conf, plus native mode's loopback listeners and login."""
    base = rabbitmq_dir(cfg)
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
    # It holds the broker's password: readable by its owner only (rabbitmq, as root).
    conf = base / "rabbitmq.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(template + native)
    os.chmod(conf, 0o600)
