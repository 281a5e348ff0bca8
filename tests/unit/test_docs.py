"""README.md, docs/ and the exercises tell the truth: their commands parse, their paths exist, their
ports are the defaults, the alerts and the dashboard panels they name exist."""

import re
import shlex
import subprocess

import pytest
import yaml

from labctl.config import ROOT
from labkit.settings import read_env
from tests.helpers import lab_parser

README = (ROOT / "README.md").read_text()
README_MAX_LINES = 210  # a learner's first page: the rest lives in docs/, linked
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "exercises").glob("**/README.md"))]


def code_of(text: str) -> list[str]:
    """Inline code and the lines of bash blocks."""
    return re.findall(r"`([^`\n]+)`", text) + [
        line.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
        for line in block.splitlines()
    ]


CODE = [snippet for doc in DOCS for snippet in code_of(doc.read_text())]
RUNTIME_PATHS = {".lab/", ".lab-test/", ".lab/logs", ".lab/profiles/",  # created by ./lab
                 ".lab/k8s-secrets.json",  # by ./lab k8s render
                 ".lab/admin-token",  # by ./lab, on first use
                 ".lab/progress.json",  # by the first check run (labkit/progress.py)
                 ".lab-bench/", "artifacts/benchmark.json"}  # created by ./lab bench


def lab_commands() -> list[str]:
    found = set()
    for snippet in CODE:
        for m in re.finditer(r"\./lab(?: [^|#`,;>]+)?", snippet):  # > a redirection
            found.add(m.group(0).strip())
    return sorted(found)


@pytest.mark.parametrize("command", lab_commands())
def test_every_lab_command_in_the_docs_exists(command):
    argv = shlex.split(command.replace("SERVICE", "api"))[1:]
    if not argv:
        return
    try:
        lab_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"README names `{command}`, which ./lab refuses (exit {exc.code})")


def test_the_readme_is_a_learners_first_page():
    lines = README.count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail to docs/"
    sections = re.findall(r"^## (.+)$", README, re.M)
    for wanted in ("Quick start", "Open the store", "Your first ten minutes",
                   "Break it on purpose: the exercises", "Everyday commands"):
        assert wanted in sections, wanted


def test_the_readme_says_how_lab_up_picks_its_run_mode():
    """`./lab up` runs compose whenever a Docker engine answers: what it runs there is quoted."""
    from labctl import compose

    quoted = " ".join(["docker compose", *compose.compose_args("up", v2=True)])
    assert f"`{quoted}`" in README
    assert "LAB_MODE=native ./lab up" in README


def test_the_readmes_exercise_skills_are_the_exercise_indexs():
    """One wording of what each exercise teaches: README's table is the index's column."""
    row = r"^\| (\d\d) \| \[[^\]]+\]\([^)]+\) \| ([^|]+?) \|"
    readme = dict(re.findall(row + "$", README, re.M))
    index_text = (ROOT / "exercises" / "README.md").read_text()
    assert "| # | exercise | the skill |" in index_text
    index = dict(re.findall(row, index_text, re.M))
    folders = [p for p in (ROOT / "exercises").glob("[0-9][0-9]-*") if p.is_dir()]
    assert len(readme) == len(folders) and readme == index


def test_the_quick_start_is_exactly_two_commands():
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", README, re.S).group(1)
    assert [ln.split("#")[0].strip() for ln in block.splitlines()] == ["./lab up", "./lab test"]


@pytest.mark.parametrize("path", sorted({
    c for c in CODE
    if re.fullmatch(r"\.?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]*)*", c) and ("/" in c or "." in c)
    and not c.startswith("./lab") and not re.fullmatch(r"[a-z_]+\.[a-z_]+", c)
    and not re.fullmatch(r"[a-z_]+(\.[a-z_]+){2,}", c)  # span attributes: db.query.text
}))
def test_every_path_in_the_docs_exists(path):
    if path in RUNTIME_PATHS:
        return
    assert (ROOT / path).exists(), f"the docs name {path}, which is not in the repository"


def test_the_port_table_matches_the_defaults():
    env = read_env(ROOT / ".env")
    table = {
        "gateway": "GATEWAY_PORT", "Jaeger query API": "JAEGER_UI_PORT",
        "OTLP/HTTP": "OTLP_HTTP_PORT", "Prometheus": "PROMETHEUS_PORT",
        "RabbitMQ management": "RABBITMQ_MANAGEMENT_PORT", "Alertmanager": "ALERTMANAGER_PORT",
        "Alert receiver": "ALERT_RECEIVER_PORT",
    }
    ports = (ROOT / "docs" / "commands-and-ports.md").read_text()
    for label, key in table.items():
        row = next(ln for ln in ports.splitlines() if ln.startswith(f"| {label}"))
        assert row.rstrip(" |").endswith(env[key]), (row, key)
    internal = next(ln for ln in ports.splitlines() if ln.startswith("| internal:"))
    for key in ("API_PORT", "POSTGRES_PORT", "RABBITMQ_PORT", "RABBITMQ_PROMETHEUS_PORT",
                "WORKER_METRICS_PORT", "GATEWAY_STATUS_PORT", "POSTGRES_EXPORTER_PORT",
                "NGINX_EXPORTER_PORT"):
        assert f" {env[key]}" in internal, key
    for doc in DOCS:
        for url_port in re.findall(r"localhost:(\d+)", doc.read_text()):
            assert url_port in env.values(), (doc, url_port)


def test_settings_the_docs_quote_are_the_defaults():
    """`NAME=value` in the docs, for a NAME that .env sets, is what .env sets."""
    env = read_env(ROOT / ".env")
    quoted = [(doc, name, value) for doc in DOCS
              for name, value in re.findall(r"`([A-Z][A-Z0-9_]+)=([^`\s]*)`", doc.read_text())
              if name in env]
    assert quoted
    for doc, name, value in quoted:
        assert value == env[name], (doc.name, name, value, env[name])


# README and the docs its metric names moved to (tests/e2e/test_journey.py: each is exported).
METRIC_DOCS = [ROOT / "README.md", *(ROOT / "docs" / name for name in (
    "purchase-journey.md", "metrics-and-alerts.md", "api.md", "course-guide.md"))]


def readme_metric_names() -> list[str]:
    return sorted({name for doc in METRIC_DOCS for name in
                   re.findall(r"`((?:http|recordstore)_[a-z_]+)`", doc.read_text())})


def test_the_readme_names_some_metrics():
    assert len(readme_metric_names()) >= 6


def golden_local() -> list[dict]:
    """The rendered manifests (tests/static/test_k8s.py proves the file is current)."""
    text = (ROOT / "deploy" / "k8s" / "rendered" / "local.yaml").read_text()
    return [d for d in yaml.safe_load_all(text) if d]


def test_the_docs_explain_the_kubernetes_way():
    section = (ROOT / "docs" / "kubernetes.md").read_text()
    for needle in ("./lab k8s render | kubectl apply -f -",
                   "kubectl kustomize --load-restrictor LoadRestrictionsNone "
                   "deploy/k8s/overlays/local",
                   "./lab k8s render --overlay classroom | kubectl apply -f -",
                   "## What is validated, and what has not run on a cluster",
                   "**None of it has run on a cluster**"):
        assert needle in section, needle
    manifests = golden_local()
    built = {c["image"] for o in manifests if o["kind"] in ("Deployment", "StatefulSet", "Job")
             for c in o["spec"]["template"]["spec"]["containers"] if c["image"].endswith(":local")}
    loaded = re.search(r"^kind load docker-image (.+)$", section, re.M).group(1).split()
    assert sorted(loaded) == sorted(built), "kind load names every image compose builds"
    # Each port compose publishes (but OTLP, which the browser reaches through the gateway)
    # is forwarded from its .env port to its Service.
    env = read_env(ROOT / ".env")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    published = {(svc, int(m.group(2))): m.group(1)
                 for svc, service in compose.items() for port in service.get("ports", [])
                 if (m := re.fullmatch(r"(?:127\.0\.0\.1|\$\{GATEWAY_BIND:\?[^}]+\}):"
                                       r"\$\{([A-Z_]+):\?[^}]+\}:(\d+)", port))}
    assert len(published) >= 8
    forwards = re.findall(r"^kubectl port-forward svc/([a-z-]+) (\d+):(\d+)$", section, re.M)
    services = {o["metadata"]["name"]: {p["port"] for p in o["spec"]["ports"]}
                for o in manifests if o["kind"] == "Service"}
    for svc, local, remote in forwards:
        assert int(remote) in services[svc], (svc, remote)
        assert local == env[published[(svc, int(remote))]], (svc, local)
    assert {(s, int(r)) for s, _, r in forwards} | {("jaeger", 4318)} >= set(published)


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_link_between_the_docs_resolves(doc):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
        if "://" not in target:
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}"


def test_the_readme_points_to_every_doc():
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{doc.name})" in README, doc.name
    assert "## Performance\n" not in README and "## How it is built\n" not in README


def test_no_file_keeps_a_merge_conflict():
    """A merge once left its conflict markers in docs/how-it-is-built.md, and every docs test
    passed: git knows every tracked file, so look at them all."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    marked = []
    for name in files:
        path = ROOT / name
        if path.is_file() and path.stat().st_size < 2_000_000:
            text = path.read_bytes().decode(errors="replace")
            if re.search(r"^(<<<<<<<|>>>>>>>)( |$)", text, re.M):
                marked.append(name)
    assert not marked, f"merge conflict markers in {marked}"
