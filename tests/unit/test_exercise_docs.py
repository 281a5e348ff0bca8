"""The exercises are complete: each has its sections, commands for both run modes, folded
answers and a check that runs on the standard library alone; the alerts and dashboard panels
they name exist; the index lists every one."""

import json
import re
import subprocess
import sys

import pytest
import yaml

from labctl.cli import exercise_check
from labctl.config import ROOT
from tests.helpers import lab_parser

EXERCISES = sorted(p for p in (ROOT / "exercises").glob("[0-9][0-9]-*") if p.is_dir())
SECTIONS = ["## Steps", "## What to look at", "## Questions", "## Clean-up", "## Check"]
ALERT_NAMES = {r["alert"] for g in yaml.safe_load(
    (ROOT / "prometheus" / "rules" / "alerts.yml").read_text())["groups"]
    for r in g["rules"] if "alert" in r}


def panel_titles() -> set[str]:
    titles = set()

    def walk(panels):
        for panel in panels:
            titles.add(panel.get("title", ""))
            walk(panel.get("panels", []))

    for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
        board = json.loads(path.read_text())
        titles.add(board["title"])
        walk(board.get("panels", []))
    return titles


def ids(paths):
    return [p.name for p in paths]


def test_the_exercises_are_numbered_in_order_with_the_game_day_last():
    """01 to NN with no gap; the game day comes last, then only its postmortem."""
    numbers = [int(p.name[:2]) for p in EXERCISES]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    names = [p.name[3:] for p in EXERCISES]
    assert names[-2:] == ["game-day", "postmortem"] or names[-1] == "game-day", names


@pytest.mark.parametrize("folder", EXERCISES, ids=ids(EXERCISES))
def test_each_exercise_has_every_section_in_order(folder):
    text = (folder / "README.md").read_text()
    assert text.startswith(f"# {folder.name[:2]} · "), "title: # NN · name"
    assert "**Goal.**" in text
    positions = [text.find(s) for s in SECTIONS]
    where = dict(zip(SECTIONS, positions, strict=True))
    assert -1 not in positions and positions == sorted(positions), where
    questions = text[text.index("## Questions"):text.index("## Clean-up")]
    assert questions.count("<details><summary>") >= 2, "at least two questions, answers folded"
    assert questions.count("<details>") == questions.count("</details>")
    assert f"./lab check {folder.name[:2]}" in text


@pytest.mark.parametrize("folder", EXERCISES, ids=ids(EXERCISES))
def test_each_exercise_gives_commands_for_both_run_modes(folder):
    text = (folder / "README.md").read_text()
    assert "./lab " in text
    if re.search(r"\./lab (stop|start) ", text):
        assert re.search(r"docker compose (stop|start) ", text), "compose commands too"
    if "./lab logs" in text:
        assert "docker logs kodekloud-record-store-" in text


@pytest.mark.parametrize("folder", EXERCISES, ids=ids(EXERCISES))
def test_the_alerts_and_panels_an_exercise_names_exist(folder):
    text = (folder / "README.md").read_text()
    for name in re.findall(r"`([A-Z][A-Za-z]+)`", text):
        if re.fullmatch(r"(?:[A-Z][a-z]+){2,}", name):  # CamelCase: an alert name
            assert name in ALERT_NAMES, f"{folder.name} names alert {name}, which does not exist"
    titles = panel_titles()
    for title in re.findall(r"(?<![*\w])\*([^*\n]+)\*(?!\*)", text):
        assert title in titles, f"{folder.name} names panel *{title}*, which no dashboard has"


@pytest.mark.parametrize("folder", EXERCISES, ids=ids(EXERCISES))
def test_each_check_runs_on_the_standard_library_alone(folder):
    # -I -S: no site-packages, no environment: what a learner's bare python3 has.
    r = subprocess.run([sys.executable, "-I", "-S", str(folder / "check.py"), "--help"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "--since" in r.stdout, r.stderr


@pytest.mark.parametrize("folder", EXERCISES, ids=ids(EXERCISES))
def test_the_lab_commands_a_check_suggests_exist(folder):
    for command in re.findall(r"\./lab [a-z]+(?: [\w.=-]+)*", (folder / "check.py").read_text()):
        lab_parser().parse_args(command.split()[1:])


def test_lab_check_finds_an_exercise_by_number_or_name():
    assert exercise_check("2") == exercise_check("02") == \
        exercise_check("02-database-failure") == EXERCISES[1] / "check.py"


def test_the_index_links_every_exercise():
    index = (ROOT / "exercises" / "README.md").read_text()
    for folder in EXERCISES:
        assert f"({folder.name}/README.md)" in index, folder.name


def rendered_resources() -> dict[tuple[str, str], int]:
    """(kind, name) of what `kubectl` can name in the local render, with its replicas; a
    StatefulSet's pods by their ordinal names."""
    text = (ROOT / "deploy" / "k8s" / "rendered" / "local.yaml").read_text()
    found = {}
    for obj in (d for d in yaml.safe_load_all(text) if d):
        kind, name = obj["kind"].lower(), obj["metadata"]["name"]
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        found[(kind, name)] = replicas
        if kind == "statefulset":
            found.update({("pod", f"{name}-{i}"): 1 for i in range(replicas)})
    return found


KIND_NAMES = {"deploy": "deployment", "deployment": "deployment", "statefulset": "statefulset",
              "sts": "statefulset", "svc": "service", "service": "service", "pod": "pod",
              "job": "job"}


def kubectl_commands(text: str) -> list[str]:
    return [c for c in re.findall(r"`([^`\n]+)`", text) if c.startswith("kubectl ")]


@pytest.mark.parametrize("folder", EXERCISES, ids=ids(EXERCISES))
def test_the_kubernetes_steps_name_what_the_manifests_have(folder):
    text = (folder / "README.md").read_text()
    if re.search(r"docker compose (stop|start) ", text):
        assert "kubectl scale " in text, "Kubernetes steps beside compose's"
        assert "| native | compose | Kubernetes |" in text
    if "docker logs kodekloud-record-store-" in text:
        assert "kubectl logs deploy/" in text
    resources = rendered_resources()
    for command in kubectl_commands(text):
        named = re.findall(r"\b([a-z]+)/([a-z0-9-]+)", re.sub(r" -f \S+", "", command))
        named += re.findall(r"^kubectl (?:delete|get|describe) (pod|job) ([a-z0-9-]+)", command)
        for kind, name in named:
            if kind in KIND_NAMES:
                assert (KIND_NAMES[kind], name) in resources, f"{command}: no {kind}/{name}"
        for path in re.findall(r" -f (\S+)", command):
            assert (ROOT / path).is_file(), f"{command}: no {path}"
        scaled = re.fullmatch(r"kubectl scale (\w+)/([\w-]+) --replicas=(\d+)", command)
        if scaled and scaled.group(3) != "0":  # back to what the manifests run
            kind, name, replicas = scaled.groups()
            assert resources[(KIND_NAMES[kind], name)] == int(replicas), command
