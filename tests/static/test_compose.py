"""docker-compose.yml, proven without a Docker engine.

- Debian's docker-compose validates the file, and refuses it without .env's required values.
- hadolint passes every Dockerfile; every bind-mounted path exists; every environment variable
  a service receives is one its program reads; the memory limits add up to at most 2 GiB.
- The configs compose mounts pass their programs' own checks, laid out the way compose mounts
  them: the gateway's (`nginx -t`, with the compose host names resolvable), Prometheus's
  (promtool, and Prometheus itself discovering the compose addresses), Alertmanager's
  (amtool). They are the files native mode runs.
"""

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from labctl import app_commands, bootstrap, components
from labctl.app_commands import API_COMMAND, WORKER_COMMAND
from labctl.config import ROOT, load
from labctl.config_files import render_template
from labctl.proc import free_port, http_ok
from labkit.settings import read_env
from recordstore.config import Settings
from tests.helpers import get_json
from tests.static.k8s import main_container
from tests.unit.test_labctl import write_dotenv

COMPOSE_FILE = ROOT / "docker-compose.yml"
STANDINS = ROOT / "tests" / "compose" / "standins"
ENV = read_env(ROOT / ".env")
SERVICES = {"gateway", "api", "worker", "migrate", "db", "rabbitmq", "jaeger", "prometheus",
            "alertmanager", "grafana", "postgres-exporter", "nginx-exporter", "alert-receiver",
            "traffic"}
ONE_SHOT = {"migrate"}
STATEFUL = {"db", "rabbitmq", "jaeger", "prometheus", "alertmanager", "grafana"}
MEMORY_BUDGET = 2 * 1024**3
# What the images compose pulls read from their environment, from their documentation.
IMAGE_READS = {
    # docker-library postgres: the superuser and database the first start creates.
    "db": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"},
    # RabbitMQ itself reads these since 3.9 (rabbitmq-server#3299), the image's docs say so.
    "rabbitmq": {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"},
    # Grafana maps GF_<SECTION>_<KEY> onto grafana.ini: [security] admin_*, [users], [log].
    "grafana": {"GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD", "GF_USERS_ALLOW_SIGN_UP",
                "GF_LOG_MODE"},
    # The Go runtime's soft memory limit (Go >= 1.19; both are built with newer Go).
    "jaeger": {"GOMEMLIMIT"},
    "prometheus": {"GOMEMLIMIT"},
    "alertmanager": set(),
}
# The exporters image installs these Debian packages: its programs are the binaries here.
EXPORTER_BINARIES = {"postgres-exporter": "/usr/bin/prometheus-postgres-exporter",
                     "nginx-exporter": "/usr/bin/prometheus-nginx-exporter"}
# RabbitMQ's Prometheus plugin listens on its default port in the image (EXPOSE 15692).
RABBITMQ_PROMETHEUS_PORT = 15692


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(ROOT / ".venv" / "bin"))
    if not found:
        pytest.fail(f"{name} is not installed; ./lab test installs what the suite needs")
    return found


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)


def learner_env() -> dict[str, str]:
    """Only .env feeds compose, as on a learner's machine (./lab test exports its own ports)."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}


@pytest.fixture(scope="module")
def compose() -> dict:
    """The file as compose resolves it: .env interpolated, anchors merged, paths absolute."""
    r = run([tool("docker-compose"), "config"], cwd=ROOT, env=learner_env())
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def raw() -> dict:
    """The file as written (YAML anchors merged, nothing interpolated)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def mem_bytes(value: str | int) -> int:
    m = re.fullmatch(r"(\d+)([bkmg]?)", str(value).lower())
    assert m, value
    return int(m.group(1)) * 1024 ** "bkmg".index(m.group(2) or "b")


def binds(service: dict) -> list[tuple[Path, str]]:
    """(host path, container path) of each bind mount."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                found.append((Path(volume["source"]), volume["target"]))
        elif volume.startswith("/"):
            source, target = volume.split(":")[:2]
            found.append((Path(source), target))
    return found


def named_volumes(service: dict) -> list[str]:
    names = []
    for volume in service.get("volumes", []):
        source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
        if source and not source.startswith(("/", ".")):
            names.append(source)
    return names


def health_port(service: dict) -> int:
    """The port a service's healthcheck asks on 127.0.0.1: the one it listens on."""
    test = " ".join(service["healthcheck"]["test"])
    m = re.search(r"http://127\.0\.0\.1:(\d+)/", test)
    assert m, test
    return int(m.group(1))


# --- the file itself ---------------------------------------------------------------------------

def test_docker_compose_validates_the_file():
    r = run([tool("docker-compose"), "config", "-q"], cwd=ROOT, env=learner_env())
    assert r.returncode == 0, r.stderr


def test_labkit_reads_dotenv_quotes_as_compose_does(tmp_path):
    """labkit's one .env reader (./lab's and the learner scripts') against docker-compose's
    own reading of the same quoted, escaped and commented values."""
    expected = write_dotenv(tmp_path / ".env")
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump({"version": "3", "services": {
        "probe": {"image": "probe", "environment": {k: f"${{{k}}}" for k in expected}}}}))
    r = run([tool("docker-compose"), "config"], cwd=tmp_path, env=learner_env())
    assert r.returncode == 0, r.stderr
    compose_reads = yaml.safe_load(r.stdout)["services"]["probe"]["environment"]
    assert compose_reads == expected == read_env(tmp_path / ".env")


def test_required_values_fail_fast_without_their_env_file(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    r = run([tool("docker-compose"), "--env-file", str(empty), "config", "-q"], cwd=ROOT,
            env=learner_env())
    assert r.returncode != 0
    assert "must be set in .env" in r.stdout + r.stderr
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE_FILE.read_text()))
    assert required and not required - ENV.keys(), required - ENV.keys()
    # But ADMIN_TOKEN: not in .env, the lab's own (./lab passes it); unset, admin routes are off.
    defaults = re.findall(r"\$\{([A-Z0-9_]+)(?:-|:-)", COMPOSE_FILE.read_text())
    assert defaults == ["ADMIN_TOKEN"], "a default in compose would hide a missing .env value"


def test_the_services_and_containers_have_the_design_names(services):
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service["container_name"] == f"kodekloud-record-store-{name}"


def test_long_running_services_have_healthchecks_restarts_and_wait_for_healthy(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        assert service["restart"] == "unless-stopped", name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            wanted = ("service_completed_successfully" if dependency in ONE_SHOT
                      else "service_healthy")
            assert how == {"condition": wanted}, (name, dependency, how)
    for app in ("api", "worker"):
        assert "migrate" in services[app]["depends_on"], app


def test_memory_limits_add_up_to_at_most_2_gib(services):
    limits = {name: mem_bytes(s["mem_limit"]) for name, s in services.items()}
    assert sum(limits.values()) <= MEMORY_BUDGET, {n: v // 2**20 for n, v in limits.items()}


def test_every_service_logs_through_the_one_shared_anchor(raw, services):
    assert COMPOSE_FILE.read_text().count("&logging") == 1
    for name, service in services.items():
        assert service["logging"] == raw["x-logging"], name


def test_published_ports_bind_to_loopback(services):
    published = 0
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)
            published += 1
    assert published >= 6


def test_every_port_a_learner_opens_is_published(services):
    """The host ports of the port table (docs/commands-and-ports.md; and Grafana): compose
    publishes each one, so ./lab alerts, ./lab check and the URLs of the docs work in compose
    as natively."""
    published = set()
    for service in services.values():
        for port in service.get("ports", []):
            published.add(int(port["published"]) if isinstance(port, dict)
                          else int(str(port).split(":")[1]))
    for key in ("GATEWAY_PORT", "JAEGER_UI_PORT", "OTLP_HTTP_PORT", "PROMETHEUS_PORT",
                "ALERTMANAGER_PORT", "ALERT_RECEIVER_PORT", "RABBITMQ_MANAGEMENT_PORT",
                "GRAFANA_PORT"):
        assert int(ENV[key]) in published, key


def test_alertmanagers_port_is_the_gateways(services):
    """Alertmanager answers every web origin itself: the host reaches it only through the
    gateway's server for its port, which refuses other pages' origins and host names."""
    assert "ports" not in services["alertmanager"]
    gateway = services["gateway"]
    published = {(p["host_ip"], str(p["published"]), str(p["target"])) if isinstance(p, dict)
                 else tuple(p.split("/")[0].split(":")) for p in gateway["ports"]}
    assert ("127.0.0.1", ENV["ALERTMANAGER_PORT"], "9093") in published
    assert gateway["environment"]["GATEWAY_ALERTMANAGER_LISTEN"] == "9093"
    assert (gateway["environment"]["GATEWAY_ALERTMANAGER_UPSTREAM"]
            == f"alertmanager:{health_port(services['alertmanager'])}")
    assert gateway["depends_on"]["alertmanager"]["condition"] == "service_healthy"


def builds_app(service: dict) -> bool:
    """Built from the project's own Dockerfile (API, worker, migrate, receiver, traffic)."""
    return Path(service.get("build", {}).get("context", "/nonexistent")) == ROOT


def test_every_built_service_has_an_image_tag_of_its_own(services):
    """Compose v2 bakes one target per service: two targets exporting one tag fail on the
    containerd image store (docker/buildx#3576)."""
    built = {name: s["image"] for name, s in services.items() if "build" in s}
    assert {"api", "worker", "migrate", "postgres-exporter", "nginx-exporter"} <= set(built)
    for name, image in built.items():
        assert image == f"kodekloud-record-store-{name}:local", name


def test_every_image_is_pinned(raw):
    pinned = re.compile(r"^[\w./-]+:v?\d+(\.\d+)+(-[\w.]+)*$")
    for name, service in raw["services"].items():
        if "build" in service:
            continue
        m = re.fullmatch(r"\$\{([A-Z_]+_IMAGE):\?[^}]+\}", service["image"])
        assert m, f"{name}: the image tag belongs in .env"
        assert pinned.fullmatch(ENV[m.group(1)]), ENV[m.group(1)]
    for dockerfile in dockerfiles():
        stages = set()
        for line in dockerfile.read_text().splitlines():
            m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
            if m:
                base = m.group(1)
                if dockerfile.is_relative_to(STANDINS):  # built here, from the machine's mirror
                    assert base.startswith("lab-standin/") or base == "${APP_IMAGE}", line
                    continue
                assert base in stages or pinned.fullmatch(base), (dockerfile, line)
                stages.add(m.group(2))


def test_state_lives_in_named_volumes(compose, services):
    used = {v for s in services.values() for v in named_volumes(s)}
    assert used == set(compose["volumes"])
    for name in STATEFUL:
        assert named_volumes(services[name]), f"{name} keeps its data in the container"


def test_every_bind_mounted_path_and_build_context_exists(services):
    for name, service in services.items():
        for source, target in binds(service):
            assert source.exists(), f"{name} mounts {source}, which does not exist"
            assert source.is_relative_to(ROOT), source
            if Path(target).suffix:  # a config file, not a directory
                assert source.is_file(), (name, source)
        if "build" in service:
            context = Path(service["build"]["context"])
            assert (context / "Dockerfile").is_file(), name


def app_reads() -> set[str]:
    """What the application image's programs read: the settings, the OpenTelemetry SDK's
    variables, and any variable the code or its metrics library names."""
    import opentelemetry.environment_variables as otel_api
    import opentelemetry.sdk.environment_variables as otel_sdk
    import prometheus_client

    names = {field.upper() for field in Settings.model_fields}
    names |= {n for module in (otel_api, otel_sdk) for n in dir(module) if n.startswith("OTEL_")}
    sources = [p for d in ("api", "worker", "recordstore", "alertreceiver", "scripts", "labkit")
               for p in (ROOT / d).rglob("*.py")]
    sources += list(Path(prometheus_client.__file__).parent.rglob("*.py"))
    text = "\n".join(p.read_text() for p in sources)
    names |= set(re.findall(r"""(?:environ(?:\.get)?|getenv)\(?\[?\s*["']([A-Z][A-Z0-9_]+)["']""",
                            text))
    return names


def test_each_environment_variable_is_read_by_the_program_that_gets_it(services, monkeypatch):
    from opentelemetry.instrumentation._semconv import OTEL_SEMCONV_STABILITY_OPT_IN
    from opentelemetry.util.http import get_excluded_urls

    # The FastAPI instrumentation composes this name (OTEL_PYTHON_<NAME>_EXCLUDED_URLS).
    monkeypatch.setenv("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "probe")
    assert get_excluded_urls("FASTAPI").url_disabled("http://api/probe")
    # The instrumentations' switch to the stable semantic conventions.
    reads = app_reads() | {"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", OTEL_SEMCONV_STABILITY_OPT_IN}
    template = (ROOT / "nginx/templates/default.conf.template").read_text()
    template_vars = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)\}", template))
    for name, service in services.items():
        env = set(service.get("environment") or {})
        if builds_app(service):
            allowed = reads
        elif name in EXPORTER_BINARIES:
            binary = Path(EXPORTER_BINARIES[name]).read_bytes()
            allowed = {v for v in env if v.encode() in binary}
        elif name == "gateway":
            # The image's entrypoint substitutes exactly the filtered names into the template.
            assert env - {"NGINX_ENVSUBST_FILTER"} == template_vars
            flt = re.compile(service["environment"]["NGINX_ENVSUBST_FILTER"])
            assert all(flt.search(v) for v in template_vars)
            assert not any(flt.search(v) for v in ("HOSTNAME", "PATH", "NGINX_VERSION"))
            allowed = template_vars | {"NGINX_ENVSUBST_FILTER"}
        else:
            allowed = IMAGE_READS[name]
        assert env <= allowed, f"{name} receives {sorted(env - allowed)}, which nothing reads"


def test_the_exporter_binaries_accept_their_compose_command_lines(services):
    for name, binary in EXPORTER_BINARIES.items():
        argv = services[name]["command"]
        assert Path(binary).name == argv[0]
        version = "-version" if name == "nginx-exporter" else "--version"  # Go flag vs kingpin
        checked = run([binary, *argv[1:], version])
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_setting_in_env_reaches_the_app_and_addresses_are_compose_names(services):
    settings = {field.upper() for field in Settings.model_fields} & ENV.keys()
    given = set(services["api"]["environment"]) | set(services["worker"]["environment"])
    assert settings <= given, sorted(settings - given)
    for name in ("api", "worker", "migrate"):
        env = services[name]["environment"]
        assert (env["POSTGRES_HOST"], env["RABBITMQ_HOST"]) == ("db", "rabbitmq")
        assert env["OTEL_SERVICE_NAME"] == f"kodekloud-record-store-{name}"
        assert env["OTEL_RESOURCE_ATTRIBUTES"] == ENV["OTEL_RESOURCE_ATTRIBUTES"]


def test_the_resource_names_the_namespace_the_projects_version_and_the_environment():
    """service.namespace, service.version and deployment.environment.name come from .env
    (OTEL_RESOURCE_ATTRIBUTES, W3C baggage form); the version is pyproject.toml's."""
    import tomllib

    resource = dict(pair.split("=", 1) for pair in ENV["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert resource == {"service.namespace": "kodekloud-record-store",
                        "service.version": project["version"],
                        "deployment.environment.name": "lab"}
    assert ENV["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http,database", "the stable names, no /dup"


# --- the images --------------------------------------------------------------------------------

def dockerfiles() -> list[Path]:
    return sorted(p for p in ROOT.rglob("Dockerfile*")
                  if not any(part.startswith(".") for part in p.relative_to(ROOT).parts))


def test_hadolint_passes_every_dockerfile(services):
    found = dockerfiles()
    built = {Path(s["build"]["context"]) / "Dockerfile" for s in services.values() if "build" in s}
    assert built and built <= set(found)
    for dockerfile in found:
        r = run([tool("hadolint"), str(dockerfile)])
        assert (r.returncode, r.stdout + r.stderr) == (0, ""), dockerfile


def test_the_app_image_installs_the_lock_before_the_code_and_runs_unprivileged(services):
    lines = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines()
             if ln and not ln.startswith("#")]
    stages = [i for i, ln in enumerate(lines) if ln.startswith("FROM ")]
    assert len(stages) == 2
    lock = next(i for i, ln in enumerate(lines) if ln.startswith("COPY") and "uv.lock" in ln)
    sync = next(i for i, ln in enumerate(lines) if "uv sync --frozen" in ln)
    code = [i for i, ln in enumerate(lines) if re.match(r"COPY (recordstore|api|worker)\b", ln)]
    assert lock < sync < min(code)
    user = [ln for ln in lines if ln.startswith("USER ")]
    assert user and re.fullmatch(r"USER [1-9]\d*:[1-9]\d*", user[-1])
    copied = {m.group(1) for ln in lines if (m := re.match(r"COPY (\S+) \./", ln))}
    for name, service in services.items():
        if not builds_app(service):
            continue
        argv = service["command"]
        module = argv[argv.index("-m") + 1] if "-m" in argv else (
            argv[argv.index("-A") + 1] if "-A" in argv else argv[1])
        top = re.split(r"[./:]", module)[0]
        assert top in copied, f"{name} runs {module}, which the image does not copy"


def test_the_api_and_the_worker_run_the_one_command_line_everywhere(services):
    """labctl/app_commands.py is the one definition; compose's commands, the image's CMD and the
    Kubernetes manifests write it out literally, and native mode builds its argv from it. Only
    the fields differ, as each mode fills them in."""
    api = {"host": "0.0.0.0", "port": "8081", "workers": ENV["API_WORKERS"]}
    worker = {"processes": ENV["WORKER_PROCESSES"], "pool": ENV["WORKER_POOL"],
              "concurrency": ENV["WORKER_CONCURRENCY"], "queues": app_commands.queues()}
    assert app_commands.fields_of(API_COMMAND, services["api"]["command"]) == api
    assert app_commands.fields_of(WORKER_COMMAND, services["worker"]["command"]) == worker
    dockerfile = re.sub(r"\\\n\s*", "", (ROOT / "Dockerfile").read_text())  # continued lines
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd, "the Dockerfile's CMD is the API's, in exec form"
    assert app_commands.fields_of(API_COMMAND, json.loads(cmd.group(1))) == api
    # The base's placeholders, replaced from .env by kustomize (deploy/k8s/base/env-replacements).
    placeholders = {"api": (API_COMMAND, {**api, "workers": "API_WORKERS"}),
                    "worker": (WORKER_COMMAND, {**worker, "processes": "WORKER_PROCESSES",
                                                "pool": "WORKER_POOL",
                                                "concurrency": "WORKER_CONCURRENCY"})}
    for name, (command, fields) in placeholders.items():
        manifest = yaml.safe_load_all((ROOT / "deploy/k8s/base" / f"{name}.yaml").read_text())
        deployment = next(d for d in manifest if d and d["kind"] == "Deployment")
        assert app_commands.fields_of(command, main_container(deployment)["args"]) == fields, name
    cfg = load({**ENV, "LAB_HOME": "/nonexistent", "API_PORT": "18081", "QUEUE_PREFIX": "t-"})
    native_api = components.api_argv(cfg)
    assert native_api[0] == str(cfg.venv_bin / "uvicorn")
    assert app_commands.fields_of(API_COMMAND, ["uvicorn", *native_api[1:]]) == {
        **api, "host": "127.0.0.1", "port": "18081"}
    native_worker = components.worker_argv(cfg)
    assert native_worker[0] == str(cfg.venv_bin / "python")
    assert app_commands.fields_of(WORKER_COMMAND, ["python", *native_worker[1:]]) == {
        **worker, "queues": "t-orders,t-emails"}


def test_the_app_image_layout_runs_every_compose_command(services, tmp_path):
    """The image's /app rebuilt here from the Dockerfile's own COPY and `uv sync` lines: the
    runtime dependencies of the lock (no dev tools) and exactly the copied code are enough for
    every command compose gives the image."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    app = tmp_path / "app"
    app.mkdir()
    for sources, dest in re.findall(r"^COPY (?!--)(.+) (\S+)$", dockerfile, re.M):
        for source in sources.split():
            target = app / dest / source if dest.endswith("/") else app / dest
            target.parent.mkdir(parents=True, exist_ok=True)  # as COPY makes them
            (shutil.copytree if (ROOT / source).is_dir() else shutil.copy)(ROOT / source, target)
    assert f"uv=={bootstrap.UV_VERSION}" in dockerfile, "the image's uv is the one ./lab uses"
    sync = re.search(r"^RUN (uv sync .+)$", dockerfile, re.M).group(1).split()
    # uv keeps the machine's own settings (cache, index, certificates), as ./lab's sync does.
    synced = run([bootstrap.uv_binary(), *sync[1:]], cwd=app, env={
        **os.environ, "UV_PROJECT_ENVIRONMENT": str(app / ".venv"), "UV_PYTHON_DOWNLOADS": "never",
        "VIRTUAL_ENV": ""})
    assert synced.returncode == 0, synced.stderr
    assert not (app / ".venv" / "bin" / "pytest").exists(), "dev tools in the image"
    for name, service in services.items():
        if not builds_app(service):
            continue
        argv = service["command"]
        if argv[0] == "python":  # python -m module ..., python script ...
            probe = [*argv[:3 if argv[1] == "-m" else 2], "--help"]
        else:  # uvicorn module:app, celery -A module
            target = argv[1] if argv[0] == "uvicorn" else argv[argv.index("-A") + 1]
            module, _, attr = target.partition(":")
            probe = ["python", "-c", f"import {module} as m; getattr(m, '{attr or 'app'}')"]
            assert (app / ".venv" / "bin" / argv[0]).exists(), argv[0]
        path = f"{app / '.venv' / 'bin'}:/usr/bin:/bin"
        result = run(probe, cwd=app, env={"PATH": path, "HOME": str(tmp_path)})
        assert result.returncode == 0, f"{name}: {result.stderr[-2000:]}"


# --- the configs compose mounts, checked by their own programs ---------------------------------

def mounted(service: dict, container_path: str) -> Path:
    return next(src for src, target in binds(service) if target == container_path)


def strip_otel(nginx_conf: str) -> tuple[str, int]:
    """The compose main config without what needs ngx_otel_module (Debian's nginx lacks it)."""
    text, blocks = re.subn(r"^\s*otel_exporter\s*\{[^}]*\}\s*\n", "", nginx_conf, flags=re.M)
    kept, dropped = [], blocks
    for line in text.splitlines():
        if re.match(r"\s*(load_module\s+modules/ngx_otel_module\.so|otel_[a-z_]+\s)", line):
            dropped += 1
        else:
            kept.append(line)
    return "\n".join(kept) + "\n", dropped


def nginx_t(tmp_path: Path, conf: str, rendered: str, hosts: str) -> subprocess.CompletedProcess:
    """`nginx -t` on the compose layout in a private mount namespace: /etc/nginx holds the
    compose files, /etc/hosts maps the compose names, and only the nginx user is added to
    /etc/passwd and /etc/group, as the image has it; nothing outside the namespace changes."""
    etc = tmp_path / "etc-nginx"
    (etc / "conf.d").mkdir(parents=True)
    (etc / "nginx.conf").write_text(conf)
    (etc / "conf.d" / "default.conf").write_text(rendered)
    shutil.copy("/etc/nginx/mime.types", etc / "mime.types")
    files = {
        "hosts": hosts,
        "resolv.conf": "",  # no DNS: a name resolves from the hosts file or not at all
        "passwd": Path("/etc/passwd").read_text() + "nginx:x:101:101::/nonexistent:/bin/false\n",
        "group": Path("/etc/group").read_text() + "nginx:x:101:\n",
    }
    mounts = [f"mount --bind {etc} /etc/nginx"]
    for name, content in files.items():
        (tmp_path / name).write_text(content)
        mounts.append(f"mount --bind {tmp_path / name} /etc/{name}")
    # nginx -t opens the log files: the image's /var/log/nginx and the log volume's mount point.
    mounts += ["mount -t tmpfs tmpfs /var/log", "mkdir -p /var/log/nginx /var/log/lab"]
    script = " && ".join([*mounts, "exec nginx -t -c /etc/nginx/nginx.conf"])
    return run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script])


def test_the_gateway_config_compose_runs_passes_nginx_t(services, tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root for a private mount namespace (unshare), as ./lab test has")
    gateway = services["gateway"]
    env = gateway["environment"]
    template = mounted(gateway, "/etc/nginx/templates") / "default.conf.template"
    rendered = render_template(template.read_text(), {k: str(v) for k, v in env.items()})
    # Debian's nginx 1.22 predates the upstream servers' `resolve` (1.27.3): nginx -t here
    # resolves the names at start instead, which the unresolvable control below relies on.
    rendered, resolving = re.subn(r"(\n\s*server \S+) resolve ", r"\1 ", rendered)
    assert resolving == 5, "every upstream follows a recreated container"
    conf, dropped = strip_otel(mounted(gateway, "/etc/nginx/nginx.conf").read_text())
    assert dropped == 5, "only the OpenTelemetry directives may differ from what Debian runs"
    assert "include /etc/nginx/conf.d/*.conf;" in conf
    upstreams = set(re.findall(r"^\s*server\s+([a-z][\w-]*):\d+", rendered, re.M))
    assert upstreams == {"api", "jaeger", "prometheus", "alertmanager"}
    assert upstreams <= set(services)

    checked = nginx_t(tmp_path / "resolvable", conf, rendered,
                      "127.0.0.1 localhost\n127.0.0.1 " + " ".join(sorted(upstreams)) + "\n")
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    # The control: without the compose names the same check fails, so they were resolved.
    unresolved = nginx_t(tmp_path / "unresolvable", conf, rendered, "127.0.0.1 localhost\n")
    assert unresolved.returncode != 0 and "host not found in upstream" in unresolved.stderr


def prometheus_layout(service: dict, tmp_path: Path) -> Path:
    """The container's /etc/prometheus as compose mounts it, under tmp_path."""
    etc = tmp_path / "etc" / "prometheus"
    for source, target in binds(service):
        dest = tmp_path / target.lstrip("/")
        assert dest.is_relative_to(etc), target
        dest.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, dest)
    return etc / "prometheus.yml"


def test_prometheus_runs_the_compose_layout_and_finds_the_compose_addresses(services, tmp_path):
    prometheus = services["prometheus"]
    config = prometheus_layout(prometheus, tmp_path)
    checked = run([tool("promtool"), "check", "config", str(config)])
    assert checked.returncode == 0 and "WARNING" not in checked.stdout, checked.stdout

    port = free_port()
    flags = [f for f in prometheus["command"]
             if not f.startswith(("--config.file", "--storage.tsdb.path"))]
    proc = subprocess.Popen(
        [tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", *flags],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not http_ok(f"{base}/-/ready") and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        targets = {}
        while len(targets) < 8 and time.monotonic() < deadline:
            targets = {t["labels"]["job"]: t["scrapeUrl"]
                       for t in get_json(f"{base}/api/v1/targets")["data"]["activeTargets"]}
            time.sleep(0.2)
        alertmanagers = [a["url"] for a in get_json(f"{base}/api/v1/alertmanagers")["data"]
                         ["activeAlertmanagers"]]
        rules = get_json(f"{base}/api/v1/rules")["data"]["groups"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)

    listening = {"api": health_port(services["api"]), "worker": health_port(services["worker"]),
                 "rabbitmq": RABBITMQ_PROMETHEUS_PORT,
                 "postgres-exporter": health_port(services["postgres-exporter"]),
                 "nginx-exporter": health_port(services["nginx-exporter"]),
                 "alertmanager": health_port(services["alertmanager"]),
                 "localhost": health_port(prometheus)}
    assert targets == {
        "api": f"http://api:{listening['api']}/metrics",
        "worker": f"http://worker:{listening['worker']}/metrics",
        "rabbitmq": f"http://rabbitmq:{listening['rabbitmq']}/metrics",
        "rabbitmq-queues":
            f"http://rabbitmq:{listening['rabbitmq']}/metrics/detailed?family=queue_metrics",
        "postgres": f"http://postgres-exporter:{listening['postgres-exporter']}/metrics",
        "nginx": f"http://nginx-exporter:{listening['nginx-exporter']}/metrics",
        "alertmanager": f"http://alertmanager:{listening['alertmanager']}/metrics",
        "prometheus": f"http://localhost:{listening['localhost']}/metrics",
    }
    assert alertmanagers == [f"http://alertmanager:{listening['alertmanager']}/api/v2/alerts"]
    assert rules, "the alert rules compose mounts were not loaded"


def test_the_alertmanager_config_compose_runs_passes_amtool(services):
    config = mounted(services["alertmanager"], "/etc/alertmanager/alertmanager.yml")
    checked = run([tool("amtool"), "check-config", str(config)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    receiver = f"alert-receiver:{health_port(services['alert-receiver'])}"
    urls = re.findall(r"url:\s*(\S+)", config.read_text())
    assert urls and all(u.startswith(f"http://{receiver}/") for u in urls), urls


def test_the_storefront_links_follow_the_ports_set_for_jaeger_and_grafana():
    """The order page links to Jaeger's UI and Grafana on the ports the gateway renders at
    /gateway/links (tests/unit/test_storefront.py): compose passes .env's, or the shell's."""
    r = run([tool("docker-compose"), "config"], cwd=ROOT,
            env={**learner_env(), "JAEGER_UI_PORT": "26686", "GRAFANA_PORT": "13000"})
    assert r.returncode == 0, r.stderr
    gateway = yaml.safe_load(r.stdout)["services"]["gateway"]["environment"]
    assert (gateway["GATEWAY_JAEGER_UI_PORT"], gateway["GATEWAY_GRAFANA_PORT"]) == (
        "26686", "13000")
    for name in ("GATEWAY_JAEGER_UI_PORT", "GATEWAY_GRAFANA_PORT"):  # the image renders them
        assert re.match(gateway["NGINX_ENVSUBST_FILTER"], name), name


def test_the_gateway_runs_two_workers_and_traces_only_what_it_proxies_to_the_api(services):
    """Each nginx worker runs an OTel exporter thread of its own (nginx-otel 0.1.2), and
    `auto` counts the host's CPUs: two, as natively. Only API routes are spans: not the
    healthcheck, the exporter's scrapes, the storefront's files or the browser's exports."""
    conf = mounted(services["gateway"], "/etc/nginx/nginx.conf").read_text()
    assert re.search(r"^worker_processes 2;$", conf, re.M)
    # `resolve` on the upstream servers asks this resolver: Docker's DNS, again every 10 s.
    assert re.search(r"^\s*resolver 127\.0\.0\.11 valid=10s", conf, re.M)
    assert services["gateway"]["environment"]["GATEWAY_UPSTREAM_RESOLVE"] == "resolve"
    assert "otel_trace $gateway_traced;" in conf
    block = re.search(r"map \$uri \$gateway_traced \{(.*?)\}", conf, re.S).group(1)
    rules = [line.split() for line in block.strip().splitlines()]
    assert rules[-1] == ["default", "off;"]

    def traced(uri: str) -> bool:
        # nginx's map: the first regular expression that matches decides.
        value = next((value for pattern, value in rules[:-1]
                      if pattern.startswith("~") and re.search(pattern[1:], uri)), "off;")
        return value == "on;"

    for uri in ("/checkout", "/orders/12", "/products", "/products/3", "/health"):
        assert traced(uri), uri
    # Nor the order page's reads of its own trace, logs and exemplars (a trace per poll).
    for uri in ("/", "/index.html", "/assets/app.js", "/otlp/v1/traces", "/gateway/health",
                "/gateway/links", "/stub_status", "/healthz", "/orders/12/logs",
                "/api/traces/" + "a" * 32, "/api/v1/query_exemplars"):
        assert not traced(uri), uri


# The program each healthcheck runs, and where reading the pinned image's upstream sources found
# it (docs/compose.md: "what was verified by reading"). The compose run proves it on the stand-ins.
HEALTHCHECK_PROGRAMS = {
    "db": "pg_isready",  # docker-library/postgres 15/alpine3.22: make install-world-bin
    "rabbitmq": "wget",  # rabbitmq:3.13 alpine: busybox
    "jaeger": "wget",  # jaeger cmd/jaeger/Dockerfile on baseimg_alpine (alpine 3.23): busybox
    "prometheus": "wget",  # FROM quay.io/prometheus/busybox
    "alertmanager": "wget",  # FROM quay.io/prometheus/busybox
    "grafana": "wget",  # grafana Dockerfile: alpine base (busybox), curl added as well
    "gateway": "curl",  # nginx:1.28.0-alpine: apk add --no-cache curl (not in -alpine-slim)
    "postgres-exporter": "wget", "nginx-exporter": "wget",  # exporters/Dockerfile installs it
}


def test_each_healthcheck_runs_a_program_its_image_has(services):
    for name, service in services.items():
        if name == "migrate":  # one-shot: compose waits for it to complete instead
            assert "healthcheck" not in service
        elif builds_app(service):
            assert service["healthcheck"]["test"][1] == "python", name  # the image's own
        elif name in HEALTHCHECK_PROGRAMS:
            test = service["healthcheck"]["test"]
            program = test[1].split()[0] if test[0] == "CMD-SHELL" else test[1]
            assert program == HEALTHCHECK_PROGRAMS[name], name
        else:
            pytest.fail(f"{name}: which program its healthcheck may run is not recorded")
    assert "wget" in (ROOT / "exporters" / "Dockerfile").read_text()


def test_the_build_context_leaves_out_state_and_benchmarks():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".lab", ".lab-test", ".lab-test-*", ".lab-bench", ".venv", ".git"} <= set(ignored)


def test_the_broker_knows_its_container_memory_limit(services):
    conf = mounted(services["rabbitmq"], "/etc/rabbitmq/conf.d/30-compose.conf").read_text()
    m = re.search(r"^total_memory_available_override_value\s*=\s*(\d+)MiB$", conf, re.M)
    assert m and int(m.group(1)) * 2**20 == mem_bytes(services["rabbitmq"]["mem_limit"])
    shared = mounted(services["rabbitmq"], "/etc/rabbitmq/conf.d/20-lab.conf")
    assert shared == ROOT / "rabbitmq" / "rabbitmq.conf"


def container_ports(service: dict) -> set[int]:
    """The ports a service listens on in the network: its healthcheck's and its published."""
    ports = set()
    if "http://127.0.0.1:" in " ".join(service.get("healthcheck", {}).get("test", [])):
        ports.add(health_port(service))
    for port in service.get("ports", []):
        target = port.get("target") if isinstance(port, dict) else port.split(":")[-1]
        ports.add(int(str(target).split("/")[0]))
    return ports


def test_grafana_datasources_name_compose_services(services):
    provisioning = mounted(services["grafana"], "/etc/grafana/provisioning")
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yaml").read_text())
    urls = [s["url"] for s in sources["datasources"]]
    assert urls
    for url in urls:
        m = re.fullmatch(r"http://([a-z-]+):(\d+)/?", url)
        assert m and m.group(1) in services, url
        assert int(m.group(2)) in container_ports(services[m.group(1)]), url


def duration_s(value: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd])", value)
    assert m, value
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def test_jaeger_takes_what_the_lab_sends_and_outlives_prometheus_retention(services):
    jaeger = services["jaeger"]
    config = yaml.safe_load(mounted(jaeger, "/etc/jaeger/config.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(config[kind]), kind
    assert set(config["service"]["extensions"]) <= set(config["extensions"])
    otlp = config["receivers"]["otlp"]["protocols"]
    # Early Jaeger 2.x bound OTLP to localhost by default: other containers need 0.0.0.0.
    assert (otlp["grpc"]["endpoint"], otlp["http"]["endpoint"]) == ("0.0.0.0:4317", "0.0.0.0:4318")
    nginx_conf = mounted(services["gateway"], "/etc/nginx/nginx.conf").read_text()
    assert re.search(r"endpoint\s+jaeger:4317;", nginx_conf)
    for app in ("api", "worker"):
        assert services[app]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert services["gateway"]["environment"]["OTLP_UPSTREAM"] == "jaeger:4318"
    health = config["extensions"]["healthcheckv2"]["http"]["endpoint"]
    assert health.endswith(f":{health_port(jaeger)}")
    backend = config["extensions"]["jaeger_query"]["storage"]["traces"]
    badger = config["extensions"]["jaeger_storage"]["backends"][backend]["badger"]
    assert badger["ephemeral"] is False
    assert all(d.startswith("/tmp/") for d in badger["directories"].values())
    assert "jaeger-data:/tmp:rw" in jaeger["volumes"]
    retention = next(f.split("=", 1)[1] for f in services["prometheus"]["command"]
                     if f.startswith("--storage.tsdb.retention.time="))
    assert duration_s(badger["ttl"]["spans"]) > duration_s(retention)


def test_the_docs_explain_the_compose_way():
    section = (ROOT / "docs" / "compose.md").read_text()
    for command in ("docker-compose up -d", "docker compose up -d", "docker compose ps",
                    "python3 scripts/check_stack.py"):
        assert command in section, command
    for port in ("GRAFANA_PORT", "JAEGER_UI_PORT", "PROMETHEUS_PORT", "GATEWAY_PORT"):
        assert f"http://localhost:{ENV[port]}" in section, port
    assert "admin / admin" in section
    assert "## Compose and native mode: what differs and why" in section
    assert "](docs/compose.md)" in (ROOT / "README.md").read_text()
