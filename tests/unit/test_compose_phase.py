"""The compose phase's own logic, without an engine: where the base image comes from, what the
override may change, what is built and started, and how a failing container is reported."""

from pathlib import Path

import pytest
import yaml

from harness import compose_phase, engine, standins
from harness.compose_phase import services_to_start
from harness.compose_stack import COMPOSE_FILE, ComposeStack, override, project_builds
from labctl import proc
from labctl.config import ROOT
from labctl.proc import LabError


def test_the_mirror_is_read_from_deb822_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
        "\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n")
    assert standins.debian_mirror(tmp_path) == "http://mirror.example/debian"


def test_the_mirror_is_read_from_a_one_line_sources_list(tmp_path):
    (tmp_path / "sources.list").write_text(
        "# a comment\ndeb [arch=amd64] http://old.example/debian bookworm main\n")
    assert standins.debian_mirror(tmp_path) == "http://old.example/debian"


def test_no_mirror_is_a_clear_error(tmp_path):
    with pytest.raises(LabError, match="no Debian bookworm mirror"):
        standins.debian_mirror(tmp_path)


def test_the_stand_ins_carry_the_tags_the_project_dockerfiles_start_from():
    assert standins.from_image(ROOT / "Dockerfile").startswith("python:3.11")
    assert standins.from_image(ROOT / "exporters" / "Dockerfile").startswith("debian:12")
    for folder, _ in standins.SERVICE_STANDINS.values():
        header = (standins.STANDINS / folder / "Dockerfile").read_text()
        assert "Honours" in header and "Cannot prove" in header, folder


@pytest.fixture(scope="module")
def raw_config() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_the_override_only_swaps_images_and_forbids_pulls(raw_config):
    images = {name: tag for name, (_, tag) in standins.SERVICE_STANDINS.items()}
    result = override(raw_config, images)
    assert set(result) == {"services"}
    assert set(result["services"]) == set(raw_config["services"])
    for name, service in result["services"].items():
        assert service.pop("pull_policy") == "never"
        assert service == ({"image": images[name]} if name in images else {}), name


def test_each_dockerfile_is_built_once_with_every_tag_compose_gives_it():
    config = {"services": {
        "api": {"build": {"context": "/r"}, "image": "a:local"},
        "worker": {"build": {"context": "/r"}, "image": "w:local"},
        "x": {"build": {"context": "/r/x", "dockerfile": "Other"}, "image": "x:local"},
        "db": {"image": "postgres:15"}}}
    assert project_builds(config) == {("/r", "/r/Dockerfile"): ["a:local", "w:local"],
                                      ("/r/x", "/r/x/Other"): ["x:local"]}


def test_everything_starts_but_profiles_and_what_has_no_stand_in(raw_config):
    started = services_to_start(raw_config)
    assert "grafana" not in started and "traffic" not in started
    assert {"gateway", "api", "worker", "db", "rabbitmq", "jaeger", "migrate"} <= set(started)


class _Inspected(ComposeStack):
    """A stack whose containers are given, not asked of an engine."""

    def __init__(self, info: dict | None) -> None:
        super().__init__(env={})
        self.info = info

    def container(self, service: str) -> dict | None:
        return self.info


def state(status: str, code: int = 0, health: str | None = None, restarts: int = 0) -> dict:
    s = {"Status": status, "ExitCode": code, "OOMKilled": False}
    if health:
        s["Health"] = {"Status": health, "Log": [{"Output": "connection refused"}]}
    return {"State": s, "RestartCount": restarts}


@pytest.mark.parametrize(("info", "one_shot", "expected"), [
    (None, False, "waiting"),
    (state("running", health="starting"), False, "waiting"),
    (state("running", health="healthy"), False, "ready"),
    (state("running"), False, "ready"),
    (state("running", health="unhealthy"), False, "failed"),
    (state("restarting", code=1, restarts=2), False, "failed"),
    (state("exited", code=0), True, "ready"),
    (state("exited", code=3), True, "failed"),
    (state("exited", code=0), False, "failed"),
])
def test_a_container_state_reads_as_ready_waiting_or_failed(info, one_shot, expected):
    assert _Inspected(info).state("svc", one_shot)[0] == expected


def test_what_docker_adds_to_the_firewall_is_seen_and_an_empty_table_is_not():
    before = ("*filter\n:INPUT ACCEPT [3:120]\n:FORWARD ACCEPT [0:0]\n"
              "-A INPUT -i lo -j ACCEPT\nCOMMIT\n")
    after = before.replace(":FORWARD ACCEPT [0:0]", ":FORWARD DROP [0:0]\n:DOCKER-USER - [0:0]")
    assert engine.firewall_state(before) == ["-A INPUT -i lo -j ACCEPT"]
    assert set(engine.firewall_state(after)) - set(engine.firewall_state(before)) == {
        ":FORWARD DROP", ":DOCKER-USER -"}
    assert engine.firewall_state("") == []


def test_only_rules_added_after_the_start_count_as_left_behind(monkeypatch, tmp_path):
    rules = ["-A INPUT -i lo -j ACCEPT"]
    monkeypatch.setattr(engine, "_iptables_rules", lambda: list(rules))
    e = engine.Engine(tmp_path / "data")
    try:
        assert e.leftovers() == []
        rules.append("-A FORWARD -j DOCKER-USER")
        assert e.leftovers() == ["iptables -A FORWARD -j DOCKER-USER"]
    finally:
        Path(e.exec_root).rmdir()


@pytest.mark.parametrize("background", [False, True], ids=["in-turn", "in-background"])
def test_a_failed_bring_up_fails_the_phase_saying_why(tmp_path, monkeypatch, capsys, background):
    """Brought up in turn or in the background while the native tests run, a failure of the
    first half is reported by run(), which fails and leaves nothing behind."""
    monkeypatch.setattr(compose_phase.os, "geteuid", lambda: 1000)
    phase = compose_phase.Phase(tmp_path / "compose-home")
    if background:
        phase.bring_up_in_background()
    assert phase.run([]) == 1
    out = capsys.readouterr().out
    assert "error: needs root" in out and "phase FAILED" in out
    assert not (tmp_path / "compose-home").exists()


def test_the_engine_never_carries_a_native_stacks_marker(tmp_path, monkeypatch):
    """The suite brings the engine up while a native stack runs; that stack's `down` kills
    whatever carries its marker, so nothing the engine starts may carry it."""
    monkeypatch.setenv(proc.MARKER, str(tmp_path / "native-home"))
    env = engine.Engine(tmp_path / "data").env
    assert proc.MARKER not in env and env["DOCKER_HOST"].startswith("unix://")
