"""The compose phase of `./lab test` (alone: `./lab test --compose`): the real
docker-compose.yml, up on a private Docker engine with images built here, then the tests of
tests/compose/ against it, then `down --volumes` and proof that nothing is left on the host.
"""

import os
import shutil
import threading
import time
from pathlib import Path

import yaml

from harness import standins
from harness.compose_stack import PUBLISHED_PORTS, ComposeStack, override, project_builds
from harness.engine import Engine
from labctl import bootstrap
from labctl.config import ROOT
from labctl.proc import LabError, foreground, free_ports
from labkit.settings import admin_token

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
    stack = ComposeStack(env={**engine.env, "LAB_MODE": "compose", "LAB_HOME": str(home),
                              "ADMIN_TOKEN": admin_token({"LAB_HOME": str(home)})})
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


class Phase:
    """The phase in two halves: `bring_up` (the engine, the images, `up` until healthy: minutes
    of building that need no test) and `run` (the tests, then down and the leftovers check).
    `./lab test` starts the first half in the background while the native stack's disruptive
    tests run, which mostly wait on alerts and timeouts."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.started = time.monotonic()
        self.engine: Engine | None = None
        self.stack: ComposeStack | None = None
        self.error: str | None = None
        self.cancelled = False
        self._thread: threading.Thread | None = None

    def bring_up(self) -> None:
        self.started = time.monotonic()
        try:
            if os.geteuid() != 0:
                raise LabError("needs root, to run a private Docker engine (dockerd); run "
                               "./lab test as root")
            bootstrap.ensure_packages(COMPOSE_APT_PACKAGES)
            shutil.rmtree(self.home, ignore_errors=True)
            self.home.mkdir(parents=True)
            self.engine = Engine(self.home / "docker" / "data")
            self.engine.start()
            if self.cancelled:  # cancel() may have come before the engine did
                raise LabError("interrupted")
            self.stack, services = prepare(self.engine, self.home)
            say(f"up -d {' '.join(services)}")
            took = self.stack.up(services)
            say(f"{len(services)} services healthy {took:.0f}s after up; not started: "
                + "; ".join(f"{n} ({why})" for n, why in standins.WITHOUT_STANDIN.items()))
        except Exception as exc:  # noqa: BLE001 - in a thread: reported by run(), never lost
            self.error = str(exc) if isinstance(exc, LabError) else f"{type(exc).__name__}: {exc}"

    def bring_up_in_background(self) -> None:
        say("building and starting in the background, while the native tests run")
        self._thread = threading.Thread(target=self.bring_up, name="compose-phase", daemon=True)
        self._thread.start()

    def run(self, pytest_args: list[str]) -> int:
        """The tests against the stack (brought up now unless it was in the background), then
        down and the leftovers check, whatever happened."""
        rc = 1
        try:
            if self._thread is None:
                self.bring_up()
            else:
                self._thread.join()
            if self.error is not None:
                say(f"error: {self.error}")
            else:
                argv = [str(ROOT / ".venv" / "bin" / "pytest"), "-p", "no:xdist", str(TESTS),
                        *pytest_args]
                rc = foreground(argv, self.stack.exported(), ROOT)
        finally:
            rc = self.tear_down() or rc
            minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
            say(f"phase {'passed' if rc == 0 else 'FAILED'} in {minutes} min {seconds} s")
        return rc

    def abandon(self) -> None:
        """The native phases failed: no tests, but nothing of a background bring-up left."""
        if self._thread is not None:
            self._thread.join()
            self.tear_down()

    def cancel(self) -> None:
        """Interrupted: the engine stops now (a bring-up in the background then fails at its
        next docker command), and once that has ended, nothing of the phase is left."""
        self.cancelled = True
        if self.engine is not None:
            self.engine.stop()  # its containers stop with it; its data goes with the home
        if self._thread is not None:
            self._thread.join(timeout=120)
        if self.engine is not None:
            self.engine.stop()  # one that came up after the first stop
            if left := self.engine.leftovers():
                say("left behind: " + "; ".join(left))
        self.engine = None
        shutil.rmtree(self.home, ignore_errors=True)

    def tear_down(self) -> int:
        rc = _tear_down(self.engine, self.stack) if self.engine is not None else 0
        self.engine = self.stack = None
        shutil.rmtree(self.home, ignore_errors=True)
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
