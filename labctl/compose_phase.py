"""The compose phase of `./lab test` (alone: `./lab test --compose`): the real
docker-compose.yml, up on a private Docker engine with images built here, then the tests of
tests/compose/ against it, then `down --volumes` and proof that nothing is left on the host.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from labctl import bootstrap, standins
from labctl.compose_stack import PUBLISHED_PORTS, ComposeStack, override, project_builds
from labctl.config import ROOT
from labctl.engine import Engine
from labctl.proc import LabError, free_ports

# Debian's engine and the base image's builder; Debian's docker-compose is a test package.
COMPOSE_APT_PACKAGES = {"docker.io": "/usr/sbin/dockerd", "debootstrap": "/usr/sbin/debootstrap"}
TESTS = ROOT / "tests" / "compose"


def say(msg: str) -> None:
    print(f"lab: compose: {msg}", flush=True)


def services_to_start(config: dict) -> list[str]:
    """Every service but those behind a profile and those no image can stand in for."""
    return [name for name, s in config["services"].items()
            if not s.get("profiles") and name not in standins.WITHOUT_STANDIN]


def assert_images_present(stack: ComposeStack, config: dict, services: list[str]) -> None:
    """Debian's docker-compose ignores pull_policy: an image missing here would be pulled."""
    missing = [f"{s} ({config['services'][s]['image']})" for s in services
               if stack.docker("image", "inspect", config["services"][s]["image"]).returncode]
    if missing:
        raise LabError(f"images not built: {', '.join(missing)}")


def prepare(engine: Engine, home: Path) -> tuple[ComposeStack, list[str]]:
    """The stack's files and environment, every image built: what `up` needs."""
    stack = ComposeStack(env={**engine.env, "LAB_MODE": "compose", "LAB_HOME": str(home)})
    config = stack.config()
    images = {name: t for name, (_, t) in standins.SERVICE_STANDINS.items()}
    path = home / "compose.standins.yml"
    path.write_text("# Written by the compose phase of ./lab test: stand-in images, no pulls.\n"
                    + yaml.safe_dump(override(config, images), sort_keys=True))
    stack.files.append(path)
    standins.build_all(engine, home / "docker", project_builds(config),
                       app_image=config["services"]["api"]["image"])
    # Free ports for what compose publishes, picked last: the builds take minutes.
    stack.env.update(zip(PUBLISHED_PORTS, map(str, free_ports(len(PUBLISHED_PORTS))),
                         strict=True))
    config = stack.config()
    services = services_to_start(config)
    assert_images_present(stack, config, services)
    return stack, services


def run_phase(home: Path, pytest_args: list[str]) -> int:
    started = time.monotonic()
    if os.geteuid() != 0:
        say("needs root, to run a private Docker engine (dockerd); run ./lab test as root")
        return 1
    bootstrap.ensure_packages(COMPOSE_APT_PACKAGES)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    engine = Engine(home / "docker" / "data")
    stack: ComposeStack | None = None
    rc = 1
    try:
        engine.start()
        stack, services = prepare(engine, home)
        say(f"up -d {' '.join(services)}")
        took = stack.up(services)
        say(f"{len(services)} services healthy {took:.0f}s after up; not started: "
            + "; ".join(f"{n} ({why})" for n, why in standins.WITHOUT_STANDIN.items()))
        argv = [str(ROOT / ".venv" / "bin" / "pytest"), "-p", "no:xdist", str(TESTS),
                *pytest_args]
        rc = subprocess.run(argv, cwd=ROOT, env=stack.exported()).returncode
    except LabError as exc:
        say(f"error: {exc}")
    finally:
        rc = _tear_down(engine, stack) or rc
        shutil.rmtree(home, ignore_errors=True)
        minutes, seconds = divmod(int(time.monotonic() - started), 60)
        say(f"phase {'passed' if rc == 0 else 'FAILED'} in {minutes} min {seconds} s")
    return rc


def _tear_down(engine: Engine, stack: ComposeStack | None) -> int:
    """down --volumes, the engine stopped, and nothing of either left: 0, or 1 saying what."""
    problems = []
    if stack is not None:
        try:
            stack.down()
            for kind in ("container", "network", "volume"):
                ls = stack.docker(kind, "ls", *(["-a"] if kind == "container" else []),
                                  "--format", "{{.Names}}" if kind == "container"
                                  else "{{.Name}}").stdout.split()
                problems += [f"{kind} {n}" for n in ls if n not in ("host", "none")]
        except LabError as exc:
            problems.append(str(exc))
    engine.stop()
    problems += engine.leftovers()
    if problems:
        say("left behind after down --volumes: " + "; ".join(problems))
        return 1
    say("down --volumes left no container, network or volume; the engine left no process, "
        "mount, network interface or iptables rule")
    return 0
