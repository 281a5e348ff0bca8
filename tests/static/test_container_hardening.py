"""The containers hold no more privilege than they use (issue 27, part 6), in docker-compose.yml
and in deploy/k8s: every capability dropped and only those an entrypoint needs added back (each
with its reason in the file), no privilege gained through a setuid binary, a read-only root
filesystem with tmpfs (Memory emptyDir) where a program writes outside its volumes.
tests/compose/test_compose_stack.py proves the engine applies it and the stack stays healthy."""

import re

import yaml

from labctl.config import ROOT
from tests.static.k8s import all_containers, labs, main_container, pod_spec, workloads
from tests.static.test_compose import learner_env, run, tool

# What each service's entrypoint does as root before it becomes its user (docker-compose.yml).
CAPABILITIES = {
    "db": {"CHOWN", "DAC_READ_SEARCH", "FOWNER", "SETGID", "SETUID"},
    "rabbitmq": {"CHOWN", "DAC_READ_SEARCH", "SETGID", "SETUID"},
    "gateway": {"CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"},
}
# Where each image writes beyond its volumes (the images' documentation and entrypoints).
WRITES = {
    "db": {"/var/run/postgresql"},
    "rabbitmq": {"/var/log/rabbitmq"},
    "gateway": {"/etc/nginx/conf.d", "/var/cache/nginx", "/run"},
    "api": {"/tmp/prometheus-multiproc"},
    "worker": {"/tmp/prometheus-multiproc"},
}


def compose_services() -> dict[str, dict]:
    r = run([tool("docker-compose"), "config"], cwd=ROOT, env=learner_env())
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)["services"]


def test_every_compose_service_drops_all_capabilities_but_what_its_entrypoint_needs():
    for name, service in compose_services().items():
        assert service.get("cap_drop") == ["ALL"], name
        assert set(service.get("cap_add", [])) == CAPABILITIES.get(name, set()), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name


def test_every_compose_service_runs_on_a_read_only_root_with_tmpfs_where_it_writes():
    for name, service in compose_services().items():
        assert service.get("read_only") is True, name
        assert WRITES.get(name, set()) <= set(service.get("tmpfs", [])), name


def test_each_added_capability_is_explained_beside_it():
    text = (ROOT / "docker-compose.yml").read_text()
    for name, caps in CAPABILITIES.items():
        block = re.search(rf"^  {name}:\n(.*?)^    cap_add:", text, re.M | re.S)
        assert block, name
        comment = " ".join(line for line in block.group(1).splitlines()
                           if line.strip().startswith("#"))
        for cap in caps:
            assert cap in comment, f"{name}: why {cap}?"


def test_every_kubernetes_container_has_a_read_only_root_and_memory_for_compose_tmpfs():
    services = compose_services()
    for overlay in ("local", "classroom"):
        for lab in labs(overlay).values():
            for name, workload in workloads(lab).items():
                volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
                for c in all_containers(workload):
                    assert c["securityContext"]["readOnlyRootFilesystem"] is True, (name, c)
                mounts = {m["mountPath"]: m["name"]
                          for m in main_container(workload).get("volumeMounts", [])}
                for path in services[name].get("tmpfs", []):
                    assert path in mounts, (name, path)
                    assert volumes[mounts[path]]["emptyDir"]["medium"] == "Memory", (name, path)


def test_prometheus_lifecycle_api_is_off_in_compose_and_kubernetes():
    """POST /-/quit would stop Prometheus for any pod of the cluster, or any page a learner's
    browser opens; the lab never reloads or stops it through the API."""
    assert "--web.enable-lifecycle" not in compose_services()["prometheus"]["command"]
    for overlay in ("local", "classroom"):
        for lab in labs(overlay).values():
            args = main_container(workloads(lab)["prometheus"])["args"]
            assert "--web.enable-lifecycle" not in args, overlay


def test_the_standins_say_what_they_cannot_prove_of_the_hardening():
    for name in CAPABILITIES:
        folder = {"db": "postgres", "rabbitmq": "rabbitmq", "gateway": "nginx"}[name]
        text = (ROOT / "tests" / "compose" / "standins" / folder / "Dockerfile").read_text()
        assert "cap_add" in text.split("Cannot prove", 1)[1], name
