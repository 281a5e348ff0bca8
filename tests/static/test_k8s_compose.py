"""The Kubernetes manifests are docker-compose.yml's lab, read from both at test time: the same
components, commands, environments, memory limits, healthchecks (as probes), images (.env's
tags; the built images by compose's own names), ports, and config files mounted byte for byte
where compose mounts them."""

import json
import re
from pathlib import Path

import pytest
import yaml

from labctl.config import ROOT
from labctl.config_files import render_template
from labctl.k8s import PLACEHOLDER
from tests.static.k8s import (
    all_containers,
    dependent_variables,
    local_lab,
    main_container,
    of_kind,
    pod_spec,
    quantity,
    resolved_env,
    service_of,
    service_ports,
    workloads,
)
from tests.static.test_compose import ENV, binds, learner_env, mem_bytes, named_volumes, run, tool

# What the manifests set beyond compose, and why.
EXTRA_ENV = {
    # initdb needs a directory it owns: a subdirectory of the volume, not its root.
    "db": {"PGDATA": "/var/lib/postgresql/data/pgdata"},
    # A Service's address is stable and Docker's DNS is not in a cluster: no `resolve`.
    # A pod's emptyDir is its own: the API could never read the gateway's or the worker's copy
    # of their log lines, so neither writes one (the API reads its own).
    # The learner's progress is recorded where ./lab check runs, not in the cluster.
    "gateway": {"GATEWAY_UPSTREAM_RESOLVE": "", "GATEWAY_ACCESS_LOG_COPY": "/dev/null",
                "GATEWAY_PROGRESS_ROOT": "/usr/share/nginx/no-progress-in-the-cluster"},
    "worker": {"LOG_FILE": ""},
    # Any pod of the cluster reaches the gateway's Service: beyond loopback, as the API knows.
    "api": {"GATEWAY_BIND": "0.0.0.0"},
}
# compose's healthcheck gates the API's start (startupProbe), not its readiness: see api.yaml.
HEALTHCHECK_PROBE = {"api": "startupProbe"}
# Binds of the learner's own records (.lab/: progress), not of the lab's config: they stay on
# the learner's machine, where the checks run.
LEARNER_STATE = {"/usr/share/nginx/lab"}
DOCKER_DNS = "127.0.0.11"


@pytest.fixture(scope="module")
def services() -> dict[str, dict]:
    r = run([tool("docker-compose"), "config"], cwd=ROOT, env=learner_env())
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)["services"]


@pytest.fixture(scope="module")
def lab() -> list[dict]:
    return local_lab()


def seconds(value: str) -> int:
    m = re.fullmatch(r"(\d+)s", value)
    assert m, value
    return int(m.group(1))


def test_every_compose_service_is_a_workload_of_its_name(services, lab):
    kinds = {name: w["kind"] for name, w in workloads(lab).items()}
    assert set(kinds) == set(services)
    assert {n for n, k in kinds.items() if k == "StatefulSet"} == {"db", "rabbitmq"}
    assert {n for n, k in kinds.items() if k == "Job"} == {"migrate"}
    for name, service in services.items():
        replicas = workloads(lab)[name]["spec"].get("replicas", 1)
        # A compose profile keeps a service off by default; here it is scaled to zero.
        assert replicas == (0 if service.get("profiles") else 1), name


def test_each_container_runs_composes_command_with_the_images_entrypoint(services, lab):
    for name, service in services.items():
        container = main_container(workloads(lab)[name])
        # compose's `command` replaces the image's CMD, as `args` does; `command` would
        # replace its ENTRYPOINT too (postgres' and rabbitmq's initialise the data).
        assert "command" not in container, name
        assert container.get("args") == service.get("command"), name


def test_each_container_gets_composes_environment(services, lab):
    for name, service in services.items():
        container = main_container(workloads(lab)[name])
        env = resolved_env(container, lab)
        for helper in dependent_variables(container):
            env.pop(helper)
        wanted = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        # The passwords and the admin token: each namespace's own (./lab k8s render), not .env's.
        generated = {k for k, v in env.items() if v == PLACEHOLDER}
        assert generated <= set(wanted), name
        wanted.update({k: PLACEHOLDER for k in generated})
        assert env == {**wanted, **EXTRA_ENV.get(name, {})}, name


def test_each_memory_limit_is_composes(services, lab):
    for name, service in services.items():
        limits = main_container(workloads(lab)[name])["resources"]["limits"]
        assert quantity(limits["memory"]) == mem_bytes(service["mem_limit"]), name


def test_each_healthcheck_is_a_probe_with_the_same_test_and_timing(services, lab):
    for name, service in services.items():
        check = service.get("healthcheck")
        if not check:
            continue
        probe = main_container(workloads(lab)[name])[HEALTHCHECK_PROBE.get(name, "readinessProbe")]
        test = check["test"]
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/[^\s'\"]*)", " ".join(test))
        if url:
            assert probe["httpGet"] == {"path": url.group(2), "port": int(url.group(1))}, name
        else:
            argv = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1].replace("$$", "$")]
            assert probe["exec"]["command"] == argv, name
        assert probe["periodSeconds"] == seconds(check["interval"]), name
        assert probe["timeoutSeconds"] == seconds(check["timeout"]), name
        if name in HEALTHCHECK_PROBE:  # a start may take compose's whole grace and retries
            grace = seconds(check["start_period"]) + check["retries"] * seconds(check["interval"])
            assert probe["failureThreshold"] * probe["periodSeconds"] >= grace, name
        else:
            assert probe["failureThreshold"] == check["retries"], name


def test_images_are_envs_tags_and_composes_built_images(services, lab):
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    built = [s["image"] for s in services.values() if "build" in s]
    for name, service in services.items():
        images = {c["image"] for c in all_containers(workloads(lab)[name])}
        assert len(images) == 1, f"{name}'s init containers run its own image"
        (image,) = images
        assert not image.endswith(":latest") and re.search(r":[\w.-]+$", image), image
        m = re.fullmatch(r"\$\{([A-Z_]+_IMAGE):\?[^}]+\}", raw[name]["image"])
        if m:
            assert image == ENV[m.group(1)], name
        elif built.count(service["image"]) > 1:
            # docker-compose.yml still builds one image for several services: then each
            # manifest names the tag of its own service, kodekloud-record-store-<service>:local.
            assert image == f"kodekloud-record-store-{name}:local", name
        else:
            assert image == service["image"], name


def container_path_of(source: Path, root: Path, target: str) -> str:
    return target if source == root else f"{target}/{source.relative_to(root)}"


def mounted_file(workload: dict, path: str, lab: list[dict]) -> str:
    """The content the container sees at `path`, through a ConfigMap mount."""
    container = main_container(workload)
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    for mount in container["volumeMounts"]:
        if mount["mountPath"] == path and "subPath" in mount:
            key = mount["subPath"]
        elif path.startswith(mount["mountPath"] + "/") and "subPath" not in mount:
            key = path[len(mount["mountPath"]) + 1:]
            if "/" in key:
                continue
        else:
            continue
        config = volumes[mount["name"]]["configMap"]["name"]
        return of_kind(lab, "ConfigMap")[config]["data"][key]
    raise AssertionError(f"nothing mounted at {path}")


def test_the_shared_config_files_are_mounted_where_compose_mounts_them(services, lab):
    for name, service in services.items():
        workload = workloads(lab)[name]
        seen = set()
        for source, target in binds(service):
            if target in LEARNER_STATE:
                continue
            files = [source] if source.is_file() else sorted(p for p in source.rglob("*")
                                                             if p.is_file())
            for file in files:
                path = container_path_of(file, source, target)
                assert mounted_file(workload, path, lab) == file.read_text(), (name, path)
                seen.add(path)
        # Nothing more than compose mounts: each ConfigMap key is one of those files.
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        for mount in main_container(workload).get("volumeMounts", []):
            config = volumes.get(mount["name"], {}).get("configMap")
            if config and "subPath" not in mount:
                keys = of_kind(lab, "ConfigMap")[config["name"]]["data"]
                assert {f"{mount['mountPath']}/{k}" for k in keys} <= seen, (name, mount)


def test_composes_volumes_and_tmpfs_are_volumes_at_the_same_paths(services, lab):
    for name, service in services.items():
        workload = workloads(lab)[name]
        mounts = {m["mountPath"]: m["name"] for m in main_container(workload)["volumeMounts"]
                  } if named_volumes(service) or service.get("tmpfs") else {}
        volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source in named_volumes(service):
                kept = mounts[target] in claims or "emptyDir" in volumes[mounts[target]]
                assert kept, (name, target)
        for target in service.get("tmpfs", []):
            assert volumes[mounts[target]]["emptyDir"]["medium"] == "Memory", (name, target)
    for name in ("db", "rabbitmq"):  # the data a learner must not lose: orders, queued tasks
        assert workloads(lab)[name]["spec"]["volumeClaimTemplates"], name


def addresses(services: dict, lab: list[dict]) -> list[tuple[str, int]]:
    """Every host:port that a config file or an environment names inside the lab."""
    text = [p.read_text() for p in (ROOT / "prometheus" / "compose-targets").glob("*.json")]
    text += [(ROOT / "prometheus" / "alertmanager.yml").read_text(),
             (ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yaml").read_text(),
             (ROOT / "nginx" / "compose" / "nginx.conf").read_text()]
    for workload in workloads(lab).values():
        container = main_container(workload)
        text.append(json.dumps([resolved_env(container, lab), container.get("args", [])]))
    found = re.findall(r"(?<![\w.-])([a-z][a-z-]*[a-z]):(\d{2,5})\b", "\n".join(text))
    env = resolved_env(main_container(workloads(lab)["api"]), lab)
    found += [(env["POSTGRES_HOST"], env["POSTGRES_PORT"]),
              (env["RABBITMQ_HOST"], env["RABBITMQ_PORT"])]
    return sorted({(host, int(port)) for host, port in found
                   if host in services and host != "localhost"})


def test_every_address_a_config_or_environment_names_is_a_service_port(services, lab):
    named = addresses(services, lab)
    assert {h for h, _ in named} >= {"api", "db", "rabbitmq", "jaeger", "alert-receiver",
                                     "gateway", "worker", "prometheus", "alertmanager"}
    for host, port in named:
        assert port in service_ports(service_of(lab, host)), f"{host}:{port}"


def test_every_port_compose_publishes_is_a_service_port(services, lab):
    for name, service in services.items():
        for port in service.get("ports", []):
            target = port["target"] if isinstance(port, dict) else port.split(":")[-1]
            target = int(str(target).split("/")[0])  # 9095/tcp
            assert target in service_ports(service_of(lab, name)), (name, target)


def test_the_broker_is_told_its_container_memory_limit(lab):
    conf = (ROOT / "rabbitmq" / "compose.conf").read_text()
    told = re.search(r"^total_memory_available_override_value\s*=\s*(\d+)MiB$", conf, re.M)
    limit = main_container(workloads(lab)["rabbitmq"])["resources"]["limits"]["memory"]
    assert int(told.group(1)) * 2**20 == quantity(limit)


def test_the_gateway_can_write_what_nginx_and_the_image_write(lab):
    gateway = workloads(lab)["gateway"]
    conf = (ROOT / "nginx" / "compose" / "nginx.conf").read_text()
    volumes = {v["name"]: v for v in pod_spec(gateway)["volumes"]}
    writable = {m["mountPath"] for m in main_container(gateway)["volumeMounts"]
                if "emptyDir" in volumes[m["name"]]}
    pid = re.search(r"^pid\s+(\S+);", conf, re.M).group(1)
    assert str(Path(pid).parent) in writable, "nginx writes its pid file there"
    assert "include /etc/nginx/conf.d/*.conf;" in conf and "/etc/nginx/conf.d" in writable
    assert "/var/cache/nginx" in writable, "the image's temp paths"


def test_the_gateway_resolves_its_upstreams_with_what_a_cluster_has(lab):
    env = resolved_env(main_container(workloads(lab)["gateway"]), lab)
    template = (ROOT / "nginx" / "templates" / "default.conf.template").read_text()
    rendered = render_template(template, env)  # fails on a variable the manifest does not set
    conf = (ROOT / "nginx" / "compose" / "nginx.conf").read_text()
    # Resolving at run time would ask nginx.conf's resolver: Docker's, which is not here.
    assert DOCKER_DNS in re.findall(r"^\s*resolver\s+([^;]+);", conf, re.M)[0]
    assert not re.search(r"^\s*server\s+\S+[^;]*\bresolve\b", rendered, re.M)


def test_the_application_pods_run_as_the_user_their_dockerfile_names(lab):
    users = {}
    for dockerfile in (ROOT / "Dockerfile", ROOT / "exporters" / "Dockerfile"):
        uid, gid = re.findall(r"^USER (\d+):(\d+)$", dockerfile.read_text(), re.M)[-1]
        users[dockerfile.parent] = (int(uid), int(gid))
    for name, workload in workloads(lab).items():
        image = main_container(workload)["image"]
        if not image.endswith(":local"):
            continue
        ctx = pod_spec(workload)["securityContext"]
        where = ROOT / "exporters" if name.endswith("-exporter") else ROOT
        assert (ctx["runAsUser"], ctx["runAsGroup"]) == users[where], name
