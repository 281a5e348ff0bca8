"""The lab's Kubernetes manifests as Python data, for the static tests: rendered by the code of
`./lab k8s render` (the kubectl uv.lock pins), and read back one namespace at a time."""

import re
from functools import cache

import yaml

from labctl import k8s
from labctl.config import ROOT

GOLDEN = ROOT / "deploy" / "k8s" / "rendered"
FAULTS = sorted((ROOT / "deploy" / "k8s" / "faults").glob("*.yaml"))
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
LONG_RUNNING = ("Deployment", "StatefulSet")


@cache
def render_text(overlay: str) -> str:
    return k8s.render(overlay)


@cache
def objects(overlay: str) -> tuple[dict, ...]:
    return tuple(d for d in yaml.safe_load_all(render_text(overlay)) if d)


def labs(overlay: str) -> dict[str, list[dict]]:
    """The namespaced objects of each namespace: one lab per namespace."""
    found: dict[str, list[dict]] = {}
    for obj in objects(overlay):
        if obj["kind"] != "Namespace":
            found.setdefault(obj["metadata"]["namespace"], []).append(obj)
    return found


def local_lab() -> list[dict]:
    (lab,) = labs("local").values()
    return lab


def of_kind(objs: list[dict], *kinds: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] in kinds}


def workloads(objs: list[dict]) -> dict[str, dict]:
    return of_kind(objs, *WORKLOAD_KINDS)


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def main_container(workload: dict) -> dict:
    """The container named as its workload (the compose service)."""
    name = workload["metadata"]["name"]
    return next(c for c in pod_spec(workload)["containers"] if c["name"] == name)


def all_containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def quantity(value: str | int) -> float:
    """A Kubernetes quantity: bytes for memory (Ki, Mi, Gi), cores for CPU (m)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?", str(value))
    assert m, value
    scale = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[m.group(2)]
    return float(m.group(1)) * scale


def config_data(objs: list[dict], kind: str, name: str) -> dict[str, str]:
    obj = of_kind(objs, kind)[name]
    return obj.get("data", {}) if kind == "ConfigMap" else obj.get("stringData", {})


def resolved_env(container: dict, objs: list[dict]) -> dict[str, str]:
    """The environment the container gets: envFrom, then env, $(VAR) expanded as the kubelet
    expands it (only variables defined before)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind, ref = next((k, v) for k, v in (("ConfigMap", source.get("configMapRef")),
                                              ("Secret", source.get("secretRef"))) if v)
        env.update(config_data(objs, kind, ref["name"]))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                                      lambda m: env.get(m.group(1), m.group(0)), var["value"])
            continue
        ref = var["valueFrom"]
        kind, key_ref = (("ConfigMap", ref["configMapKeyRef"]) if "configMapKeyRef" in ref
                         else ("Secret", ref["secretKeyRef"]))
        env[var["name"]] = config_data(objs, kind, key_ref["name"])[key_ref["key"]]
    return env


def dependent_variables(container: dict) -> set[str]:
    """Variables that only compose another one's value, as $(VAR)."""
    used = {m for var in container.get("env", []) if "value" in var
            for m in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", var["value"])}
    return used


def selects(selector: dict[str, str], workload: dict) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


def service_of(objs: list[dict], host: str) -> dict:
    services = of_kind(objs, "Service")
    assert host in services, f"no Service {host}"
    return services[host]


def service_ports(service: dict) -> set[int]:
    return {p["port"] for p in service["spec"]["ports"]}
