import argparse
import re
import subprocess

import pytest

from labctl import components, config_files
from labctl.config import ROOT
from labctl.proc import LabError
from labkit.settings import read_env
from tests.helpers import lab_parser

# Quoted, escaped and commented values, as compose's dotenv reads them (the same file is read by
# docker-compose itself in tests/static/test_compose.py).
DOTENV_CASES = {
    "A=1": "1",
    "B = 'two words'": "two words",
    'C="x=y"': "x=y",
    'D="say \\"hi\\"\\tthere"': 'say "hi"\tthere',
    "E='single \\n kept'": "single \\n kept",
    "F=plain # a comment": "plain",
    'G="quoted" # a comment': "quoted",
    "H=with#hash": "with#hash",
    "I=": "",
    "export J=exported": "exported",
    "L=  spaced value  ": "spaced value",
    "M='it\"s'": 'it"s',
}


def write_dotenv(path):
    path.write_text("# comment\n\nnot a line\n" + "\n".join(DOTENV_CASES) + "\n")
    return {line.removeprefix("export ").split("=")[0].strip(): value
            for line, value in DOTENV_CASES.items()}


def test_env_file_parsing(tmp_path):
    expected = write_dotenv(tmp_path / ".env")
    assert read_env(tmp_path / ".env") == expected


def test_template_rendering_leaves_nginx_variables_alone():
    out = config_files.render_template("listen ${PORT}; set $x $request_id;", {"PORT": "8000"})
    assert out == "listen 8000; set $x $request_id;"
    with pytest.raises(LabError, match="MISSING"):
        config_files.render_template("${MISSING}", {})


def test_gateway_template_names_only_variables_the_lab_provides():
    template = (ROOT / "nginx/templates/default.conf.template").read_text()
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", template))
    assert names == {"GATEWAY_LISTEN", "GATEWAY_STATUS_LISTEN", "API_UPSTREAM", "OTLP_UPSTREAM",
                     "GATEWAY_ACCESS_LOG", "STOREFRONT_ROOT", "GATEWAY_UPSTREAM_RESOLVE",
                     "GATEWAY_ACCESS_LOG_COPY", "GATEWAY_JAEGER_QUERY_UPSTREAM",
                     "GATEWAY_PROMETHEUS_UPSTREAM", "GATEWAY_SERVER_NAMES",
                     "GATEWAY_ALERTMANAGER_LISTEN", "GATEWAY_ALERTMANAGER_UPSTREAM",
                     "GATEWAY_JAEGER_UI_PORT", "GATEWAY_GRAFANA_PORT", "GATEWAY_PROGRESS_ROOT"}


def test_component_names_are_the_compose_service_names():
    assert {"gateway", "api", "worker", "db", "rabbitmq"} <= {c.name for c in components.COMPONENTS}


def test_env_file_defines_every_port_the_lab_uses():
    env = read_env(ROOT / ".env")
    for port in ("GATEWAY_PORT", "API_PORT", "JAEGER_UI_PORT", "OTLP_HTTP_PORT", "PROMETHEUS_PORT",
                 "POSTGRES_PORT", "RABBITMQ_PORT", "RABBITMQ_DIST_PORT",
                 "RABBITMQ_MANAGEMENT_PORT", "RABBITMQ_PROMETHEUS_PORT", "WORKER_METRICS_PORT",
                 "GATEWAY_STATUS_PORT", "ALERTMANAGER_PORT", "ALERT_RECEIVER_PORT",
                 "POSTGRES_EXPORTER_PORT", "NGINX_EXPORTER_PORT"):
        assert env[port].isdigit(), port
    # The machine's own services hold these; the lab must never take them.
    taken = {"5432", "5672", "6379", "3306", "1883", "4222"}
    assert not taken & {v for k, v in env.items() if k.endswith("_PORT")}


def test_free_ports_are_different_ports():
    from labctl.proc import free_ports

    ports = free_ports(40)
    assert len(set(ports)) == 40 and all(1024 < p < 65536 for p in ports)


def test_the_lab_script_puts_every_packages_commands_together():
    """labctl's commands, then bench's, k8s, gameday's and the harness's, as before the split."""
    sub = next(a for a in lab_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [
        "up", "down", "status", "logs", "stop", "start", "restart", "chaos", "alerts", "rules",
        "traffic", "sampling", "profile", "check", "doctor", "progress", "dashboard", "bench",
        "k8s", "gameday", "test"]
    assert lab_parser().parse_args(["gameday", "status"]).lifecycle is False


def test_the_lab_command_runs_on_a_bare_python3():
    """./lab is run by the machine's python3 before anything is installed: only `./lab test`
    needs a package beyond the standard library (PyYAML, for the compose phase)."""
    r = subprocess.run(["python3", "-I", "-S", str(ROOT / "lab"), "--help"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "gameday" in r.stdout, r.stderr
