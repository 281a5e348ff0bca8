"""`./lab rules` (labctl/learner_rules.py) without a stack: what compose mode runs on the
prometheus container, that docker-compose.yml and prometheus.yml give it the folder it copies
into, that a file promtool refuses is never copied, and the record the check reads. Natively
the command runs against a real Prometheus in tests/e2e/test_exercise_10_own_alert.py."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labctl import learner_rules
from labctl.config import ROOT, load
from labctl.proc import LabError
from labkit.own_rules import (
    COMPOSE_CONTAINER,
    COMPOSE_DIR,
    LEARNER_DIR,
    loaded_during,
    read_record,
)

RULES = "groups:\n  - name: mine\n    rules:\n      - alert: Mine\n        expr: up == 0\n"


def test_compose_runs_these_commands_on_the_prometheus_container():
    assert learner_rules.docker_argv("copy", "/tmp/x/mine.yml", "mine.yml") == [
        "docker", "cp", "/tmp/x/mine.yml",
        "kodekloud-record-store-prometheus:/etc/prometheus/learner-rules/mine.yml"]
    assert learner_rules.docker_argv("remove", "a.yml", "b.yml") == [
        "docker", "exec", "-u", "0", "kodekloud-record-store-prometheus", "rm", "-f",
        "/etc/prometheus/learner-rules/a.yml", "/etc/prometheus/learner-rules/b.yml"]
    assert learner_rules.docker_argv("reload") == [
        "docker", "kill", "--signal", "HUP", "kodekloud-record-store-prometheus"]


def test_compose_mounts_the_folder_prometheus_yml_reads_the_learners_rules_from():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    prometheus = compose["services"]["prometheus"]
    assert prometheus["container_name"] == COMPOSE_CONTAINER
    config_dir = "/etc/prometheus"  # where --config.file is
    assert f"--config.file={config_dir}/prometheus.yml" in prometheus["command"]
    assert f"learner-rules:{COMPOSE_DIR}" in prometheus["volumes"]  # writable: docker cp
    assert "learner-rules" in compose["volumes"]
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    assert f"{LEARNER_DIR}/*.yml" in config["rule_files"]
    assert f"{config_dir}/{LEARNER_DIR}" == COMPOSE_DIR


def test_a_load_in_compose_checks_copies_and_reloads_in_that_order(tmp_path, monkeypatch):
    source = tmp_path / "my alert.yml"
    source.write_text(RULES)
    ran: list[list[str]] = []

    def fake_run(argv, **kwargs):
        ran.append(argv)
        if argv[:2] == ["docker", "inspect"]:  # the image the running container was made of
            return subprocess.CompletedProcess(argv, 0, "registry.example/prometheus:x\n", "")
        return subprocess.CompletedProcess(argv, 0, "  SUCCESS: 1 rules found\n", "")

    group = {"name": "mine", "file": f"{COMPOSE_DIR}/my-alert.yml",
             "rules": [{"type": "alerting", "name": "Mine", "query": "up == 0", "duration": 15}]}
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(learner_rules, "_groups",
                        lambda cfg: [group] if any("kill" in a for a in ran) else [])
    cfg = load({"LAB_HOME": str(tmp_path / "home")})
    learner_rules.load_file(cfg, "compose", source, None)
    assert ran[0][:2] == ["docker", "inspect"] and ran[0][-1] == COMPOSE_CONTAINER
    assert ran[1] == ["docker", "run", "--rm", "--network", "none", "--user",
                      f"{os.getuid()}:{os.getgid()}", "-v", f"{tmp_path}:/rules:ro",
                      "-w", "/rules", "--entrypoint", "promtool",
                      "registry.example/prometheus:x", "check", "rules", "my alert.yml"]
    assert ran[2][:2] == ["docker", "cp"] and ran[2][3].endswith("/learner-rules/my-alert.yml")
    assert ran[3] == learner_rules.docker_argv("reload")
    [entry] = read_record(cfg.home)
    assert entry["file"] == "my-alert.yml" and entry["test"] is None
    assert entry["alerts"] == [{"name": "Mine", "query": "up == 0", "for_s": 15}]
    assert loaded_during([entry], since=entry["loaded_at"] - 60) == [entry]
    assert loaded_during([{**entry, "unloaded_at": entry["loaded_at"] + 1}],
                         since=entry["loaded_at"] + 2) == []


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (Debian's prometheus)")
def test_a_file_promtool_refuses_is_not_copied_and_the_error_names_its_line(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(RULES.replace("up == 0", "rate(up[1m] > 0"))
    cfg = load({"LAB_HOME": str(tmp_path / "home")})
    with pytest.raises(LabError, match=r"nothing was loaded:\n.*bad\.yml: 5:\d+: .*parse error"):
        learner_rules.load_file(cfg, "native", bad, None)
    assert not (cfg.home / "prometheus" / LEARNER_DIR).exists()
    assert read_record(cfg.home) == []


def test_a_stored_name_is_safe_and_ends_in_yml():
    assert learner_rules.stored_name(Path("/x/my alert.yaml")) == "my-alert.yml"
    assert learner_rules.stored_name(Path("../orders.yml")) == "orders.yml"
