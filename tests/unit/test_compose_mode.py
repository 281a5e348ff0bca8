"""./lab's compose mode: which mode runs, and the `docker compose` command each lifecycle
command of ./lab becomes (the compose file itself is proven in tests/static/test_compose.py)."""

import json
import os

import pytest

from labctl import compose
from labctl.cli import build_parser, lifecycle_options
from labctl.proc import free_port
from labkit import checks, settings
from scripts import check_stack


@pytest.mark.parametrize("forced", ["compose", "native", " Compose "])
def test_lab_mode_forces_a_mode(forced):
    assert settings.run_mode({"LAB_MODE": forced}) == forced.strip().lower()


def test_an_unknown_lab_mode_is_refused():
    with pytest.raises(settings.SettingsError, match="LAB_MODE must be compose or native"):
        settings.run_mode({"LAB_MODE": "kubernetes"})


def test_without_an_engine_the_lab_runs_natively(monkeypatch, tmp_path):
    monkeypatch.setattr(settings.shutil, "which", lambda name, **_: None)
    assert not settings.engine_answers()
    assert settings.run_mode({}, home=tmp_path) == "native"


def test_a_docker_cli_without_a_daemon_is_not_an_engine(monkeypatch, tmp_path):
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert settings.run_mode({}, home=tmp_path) == "native"


@pytest.mark.parametrize(("command", "v2", "expected"), [
    ("up", True, ["up", "-d", "--build", "--wait"]),
    ("up", False, ["up", "-d", "--build"]),
    ("down", False, ["down"]),
    ("down --volumes", False, ["down", "--volumes"]),
    ("status", False, ["ps"]),
    ("status --json", True, ["ps", "--format", "json"]),
    ("logs api", False, ["logs", "api"]),
    ("logs -f worker", False, ["logs", "--follow", "worker"]),
    ("stop db", False, ["stop", "db"]),
    ("start db", False, ["start", "db"]),
    ("restart rabbitmq", False, ["restart", "rabbitmq"]),
])
def test_each_lifecycle_command_has_its_compose_form(command, v2, expected):
    args = build_parser().parse_args(command.split())
    assert args.command in compose.LIFECYCLE
    assert compose.compose_args(args.command, v2=v2, **lifecycle_options(args)) == expected


def test_a_compose_command_is_built_from_plain_values():
    """The game day stops a component in compose as `./lab stop` does, with no parsed arguments
    to imitate."""
    assert compose.compose_args("stop", v2=True, service="worker") == ["stop", "worker"]
    assert compose.compose_args("down", v2=False, volumes=True) == ["down", "--volumes"]


def test_a_running_native_stack_keeps_the_commands_native(monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "engine_answers", lambda: True)
    assert settings.run_mode({}, home=tmp_path) == "compose"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "api.pid").write_text(f"{os.getpid()}\n")
    assert settings.run_mode({}, home=tmp_path) == "native"
    assert settings.run_mode({"LAB_MODE": "compose"}, home=tmp_path) == "compose"
    assert settings.run_mode({"LAB_HOME": str(tmp_path)}) == "native"


def test_the_fallback_to_docker_compose_1_29_says_when_it_breaks(monkeypatch, tmp_path, capsys):
    """Debian's docker-compose 1.29 reads ContainerConfig, which Engine 26 (API 1.45) dropped."""
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\necho \"docker: unknown command: docker $1\" >&2\nexit 1\n")
    legacy = tmp_path / "docker-compose"
    legacy.write_text("#!/bin/sh\n")
    for program in (docker, legacy):
        program.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compose.compose_command() == [str(legacy)]
    note = capsys.readouterr().err
    assert "docker-compose 1.29" in note and "Engine 26" in note and "ContainerConfig" in note


def test_the_learner_scripts_take_the_same_run_mode(monkeypatch, capsys, tmp_path):
    """check_stack.py's --mode auto and an exercise check's default --mode are run_mode's."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    urls = ["--base-url", nowhere, "--prometheus-url", nowhere, "--jaeger-url", nowhere]
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    for mode in settings.MODES:
        monkeypatch.setenv("LAB_MODE", mode)
        assert check_stack.main(["--json", "--timeout", "1", "--grafana-url", nowhere, *urls]) == 1
        assert json.loads(capsys.readouterr().out)["mode"] == mode
        checks.run("t", [checks.Step("mode", lambda lab: lab.mode, "-")], ["--json", *urls])
        assert json.loads(capsys.readouterr().out)["steps"][0]["detail"] == mode
    monkeypatch.setenv("LAB_MODE", "kubernetes")  # not a run mode; --mode kubernetes still is
    with pytest.raises(SystemExit) as exit_:
        check_stack.main(["--json", *urls])
    assert exit_.value.code == 2
    assert "LAB_MODE must be compose or native" in capsys.readouterr().err


def test_background_traffic_alone_is_not_a_native_stack(monkeypatch, tmp_path):
    """`./lab traffic start` runs on the host in either mode: its pid file beside a compose lab
    must not turn the next `./lab down` or `./lab stop db` native."""
    monkeypatch.setattr(settings, "engine_answers", lambda: True)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "traffic.pid").write_text(f"{os.getpid()}\n")
    assert not settings.native_running(tmp_path)
    assert settings.run_mode({}, home=tmp_path) == "compose"


def test_lab_down_in_compose_stops_the_background_traffic_too(monkeypatch):
    """Both kinds: `./lab traffic start` (a host process) and compose's `traffic` profile."""
    ran, stopped = [], []
    monkeypatch.setattr(compose, "compose_command", lambda: ["docker", "compose"])
    monkeypatch.setattr(compose.traffic, "stop", lambda cfg: stopped.append(cfg.home))
    monkeypatch.setattr(compose.subprocess, "run",
                        lambda argv, **kw: ran.append(argv) or type("R", (), {"returncode": 0}))
    assert compose.run("down") == 0
    assert len(stopped) == 1
    (argv,) = ran
    assert argv[argv.index("down") - 2:argv.index("down")] == ["--profile", "traffic"]
    ran.clear()
    compose.run("stop", service="db")
    assert "--profile" not in ran[0] and len(stopped) == 1
