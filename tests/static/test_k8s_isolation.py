"""Nobody in a lab's namespace who does not belong there (issue 27, part 1), proven on the
rendered manifests without a cluster: the NetworkPolicies, evaluated as the Kubernetes
NetworkPolicy API defines them (a connection passes when its source may send it and its
destination may take it; policies add up), let exactly the lab's own connections through,
nothing from another namespace in and nothing out but DNS; and every namespace gets
passwords and an admin token of its own, none of them .env's published ones."""

import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
import yaml

from labctl import k8s as labk8s
from labctl.config import ROOT
from labkit.settings import read_env
from tests.static.k8s import labs, objects, of_kind, render_text, service_ports, workloads

# (source, destination, port): who talks to whom in one lab, by the names and ports that the
# config files and environments give (test_every_address_a_config_names_is_one_of_these).
FLOWS = {
    ("api", "db", 5432), ("worker", "db", 5432), ("migrate", "db", 5432),
    ("postgres-exporter", "db", 5432),
    ("api", "rabbitmq", 5672), ("worker", "rabbitmq", 5672), ("prometheus", "rabbitmq", 15692),
    ("api", "jaeger", 4318), ("worker", "jaeger", 4318), ("migrate", "jaeger", 4318),
    ("gateway", "jaeger", 4318), ("gateway", "jaeger", 4317), ("gateway", "jaeger", 16686),
    ("grafana", "jaeger", 16686),
    ("gateway", "api", 8081), ("prometheus", "api", 8081), ("prometheus", "worker", 9808),
    ("traffic", "gateway", 8000), ("nginx-exporter", "gateway", 8088),
    ("gateway", "prometheus", 9090), ("grafana", "prometheus", 9090),
    ("prometheus", "alertmanager", 9093), ("grafana", "alertmanager", 9093),
    ("gateway", "alertmanager", 9093),
    ("alertmanager", "alert-receiver", 9095),
    ("prometheus", "postgres-exporter", 9187), ("prometheus", "nginx-exporter", 9113),
}
PUBLISHED_IN_ENV = ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "ADMIN_TOKEN",
                    "GRAFANA_ADMIN_PASSWORD")


@dataclass(frozen=True)
class Pod:
    namespace: str | None  # None: an address outside the cluster's pods
    labels: dict = field(default_factory=dict, hash=False)

    @property
    def namespace_labels(self) -> dict:
        return {"kubernetes.io/metadata.name": self.namespace} if self.namespace else {}


def selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels"}, f"the evaluator reads matchLabels only: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def peer_matches(peer: dict, policy_namespace: str, other: Pod) -> bool:
    assert set(peer) <= {"podSelector", "namespaceSelector"}, peer
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], other.namespace_labels)
    else:
        in_namespace = other.namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector", {}), other.labels)


def side_allows(policies: list[dict], direction: str, subject: Pod, other: Pod, port: int,
                protocol: str) -> bool:
    """Whether the policies selecting `subject` let this connection out (Egress) or in."""
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    chosen = [p for p in policies if p["metadata"]["namespace"] == subject.namespace
              and direction in p["spec"]["policyTypes"]
              and selects(p["spec"]["podSelector"], subject.labels)]
    if not chosen:
        return True  # a pod no policy isolates takes and sends anything
    for policy in chosen:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            ports = rule.get("ports")
            if peers is not None and not any(
                    peer_matches(p, policy["metadata"]["namespace"], other) for p in peers):
                continue
            if ports is not None and not any(p["port"] == port and p.get("protocol", "TCP")
                                             == protocol for p in ports):
                continue
            return True
    return False


def allowed(policies: list[dict], src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
    return (src.namespace is None or side_allows(policies, "Egress", src, dst, port, protocol)) \
        and (dst.namespace is None or side_allows(policies, "Ingress", dst, src, port, protocol))


def pods(lab: list[dict], namespace: str) -> dict[str, Pod]:
    return {name: Pod(namespace, w["spec"]["template"]["metadata"]["labels"])
            for name, w in workloads(lab).items()}


def policies_of(overlay: str) -> list[dict]:
    return [o for o in objects(overlay) if o["kind"] == "NetworkPolicy"]


def connections(policies: list[dict], lab: list[dict], namespace: str) -> set:
    """Every (source, destination, Service port) the policies let through inside one lab."""
    found = set()
    members = pods(lab, namespace)
    for dst_name, dst in members.items():
        if dst_name not in of_kind(lab, "Service"):
            continue
        for port in service_ports(of_kind(lab, "Service")[dst_name]):
            for src_name, src in members.items():
                if allowed(policies, src, dst, port):
                    found.add((src_name, dst_name, port))
    return found


@pytest.mark.parametrize("overlay", labk8s.OVERLAYS)
def test_inside_a_lab_exactly_its_own_connections_pass(overlay):
    for namespace, lab in labs(overlay).items():
        assert connections(policies_of(overlay), lab, namespace) == FLOWS, namespace


@pytest.mark.parametrize("overlay", labk8s.OVERLAYS)
def test_every_pod_is_isolated_both_ways_by_default(overlay):
    for namespace, lab in labs(overlay).items():
        deny = of_kind(lab, "NetworkPolicy")["default-deny"]["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, namespace


def test_no_pod_of_another_namespace_reaches_a_learners_lab():
    policies = policies_of("classroom")
    namespaces = sorted(labs("classroom"))
    assert len(namespaces) >= 2
    for namespace in namespaces:
        lab = labs("classroom")[namespace]
        targets = [(name, port) for name, svc in of_kind(lab, "Service").items()
                   for port in service_ports(svc)]
        others = [p for ns in namespaces if ns != namespace
                  for p in pods(labs("classroom")[ns], ns).values()]
        # Any pod elsewhere, even one that carries the lab's own labels.
        others += [Pod("default", {"app.kubernetes.io/name": n}) for n in ("gateway", "api")]
        for name, port in targets:
            dst = pods(lab, namespace)[name]
            passed = [o for o in others if allowed(policies, o, dst, port)]
            assert passed == [], (namespace, name, port)


@pytest.mark.parametrize("overlay", labk8s.OVERLAYS)
def test_a_lab_reaches_nothing_outside_but_the_clusters_dns(overlay):
    policies = policies_of(overlay)
    dns = Pod("kube-system", {"k8s-app": "kube-dns"})
    apiserver = Pod("kube-system", {"component": "kube-apiserver"})
    outside = [Pod(None), Pod("default", {"app": "anything"})]
    for namespace, lab in labs(overlay).items():
        for name, pod in pods(lab, namespace).items():
            for protocol in ("UDP", "TCP"):
                assert allowed(policies, pod, dns, 53, protocol), name
            for port in (80, 443, 6443):
                assert not side_allows(policies, "Egress", pod, apiserver, port, "TCP"), name
            for other in outside:
                for port in (53, 80, 443, 5432):
                    assert not side_allows(policies, "Egress", pod, other, port, "TCP"), name


def test_every_address_a_config_names_is_one_of_these_flows():
    from tests.static.test_compose import learner_env, run, tool
    from tests.static.test_k8s_compose import addresses

    r = run([tool("docker-compose"), "config"], cwd=ROOT, env=learner_env())
    named = addresses(yaml.safe_load(r.stdout)["services"], labs("local")["record-store"])
    assert named and {(host, port) for host, port in named} <= {(d, p) for _, d, p in FLOWS}


def test_the_broker_fault_cuts_every_connection_to_it_and_the_lab_policies_heal_it():
    (fault,) = yaml.safe_load_all((ROOT / "deploy/k8s/faults/cut-broker.yaml").read_text())
    name = fault["metadata"]["name"]
    base = (ROOT / "deploy/k8s/base/network-policies.yaml").read_text()
    (lab_policy,) = [p for p in yaml.safe_load_all(base) if p["metadata"]["name"] == name]
    for overlay in labk8s.OVERLAYS:
        for namespace, lab in labs(overlay).items():
            def applied(policy: dict, policies: list[dict], ns: str = namespace) -> list[dict]:
                """kubectl apply -n <ns> -f: the object of that name, replaced."""
                new = {**policy, "metadata": {"name": name, "namespace": ns}}
                return [new if (p["metadata"]["name"], p["metadata"]["namespace"]) == (name, ns)
                        else p for p in policies]

            cut = applied(fault, policies_of(overlay))
            assert connections(cut, lab, namespace) == {f for f in FLOWS if f[1] != "rabbitmq"}
            assert connections(applied(lab_policy, cut), lab, namespace) == FLOWS


# --- each namespace's own credentials ----------------------------------------------------------

def secret_values(text: str) -> dict[str, dict[str, str]]:
    """namespace -> {Secret/key: value} of every Secret in a render."""
    found: dict[str, dict[str, str]] = {}
    for obj in yaml.safe_load_all(text):
        if obj and obj["kind"] == "Secret":
            values = found.setdefault(obj["metadata"]["namespace"], {})
            for key, value in obj.get("stringData", {}).items():
                values[f"{obj['metadata']['name']}/{key}"] = value
    return found


@pytest.mark.parametrize("overlay", labk8s.OVERLAYS)
def test_no_secret_holds_a_credential_published_in_env(overlay):
    env = read_env(ROOT / ".env")
    published = {env[k] for k in PUBLISHED_IN_ENV if env.get(k)} | {"change-me-lab-admin"}
    for namespace, values in secret_values(render_text(overlay)).items():
        # The Grafana admin's name is .env's (admin), and no secret.
        leaked = {k for k, v in values.items() if v in published and not k.endswith("_USER")}
        assert leaked == set(), (namespace, leaked)


def test_each_namespace_gets_passwords_of_its_own_kept_from_one_render_to_the_next(tmp_path):
    store = tmp_path / "home" / labk8s.SECRETS_FILE
    first = labk8s.fill_secrets(render_text("classroom"), store)
    values = secret_values(first)
    generated = {ns: {k: v for k, v in vals.items() if k.split("/")[1] != "GF_SECURITY_ADMIN_USER"}
                 for ns, vals in values.items()}
    assert len(generated) >= 2
    seen: list[str] = []
    for namespace, vals in generated.items():
        assert set(vals) == {"app-credentials/POSTGRES_PASSWORD",
                             "app-credentials/RABBITMQ_PASSWORD", "api-admin-token/ADMIN_TOKEN",
                             "grafana-admin/GF_SECURITY_ADMIN_PASSWORD"}, namespace
        assert all(re.fullmatch(r"[0-9a-f]{32}", v) for v in vals.values()), namespace
        seen += vals.values()
    assert len(seen) == len(set(seen)), "no two namespaces, no two keys share a value"
    assert labk8s.PLACEHOLDER not in first
    # Nothing else of the render changes.
    placeholders = re.sub(r'(?m)^(  \w+): "[0-9a-f]{32}"$', rf"\1: {labk8s.PLACEHOLDER}", first)
    assert placeholders == render_text("classroom")
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    assert labk8s.fill_secrets(render_text("classroom"), store) == first, "a re-apply keeps them"
    store.unlink()
    again = secret_values(labk8s.fill_secrets(render_text("classroom"), store))
    assert not set(seen) & {v for vals in again.values() for v in vals.values()}


def test_lab_k8s_render_prints_the_manifests_with_the_namespaces_own_secrets(tmp_path):
    def lab_render(*flags: str) -> str:
        r = subprocess.run([sys.executable, str(ROOT / "lab"), "k8s", "render", *flags],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "LAB_HOME": str(tmp_path)})
        assert r.returncode == 0, r.stderr
        return r.stdout

    assert lab_render("--placeholder-secrets") == render_text("local")
    filled = lab_render()
    assert filled == labk8s.fill_secrets(render_text("local"), tmp_path / labk8s.SECRETS_FILE)
    assert labk8s.PLACEHOLDER not in filled
