"""Compose mode of ./lab: its lifecycle commands as `docker compose` on docker-compose.yml.

Which mode runs is the one rule of labkit/settings.py (`run_mode`): compose when a
Docker engine answers and natively otherwise; LAB_MODE=compose or LAB_MODE=native forces one,
and a native stack already running from the lab's home keeps the commands native. Service
names are the same in both modes, so `./lab stop db` means the same everywhere. The other
commands (alerts, chaos, dashboard, traffic) talk HTTP to the lab's published ports, which
compose keeps, so they work unchanged in both modes; `./lab test` is always native, and
`./lab profile` refuses compose mode (profile.py's COMPOSE_NOTE says why).
"""

import os
import shutil
import subprocess
import sys

from labctl import traffic
from labctl.config import ROOT, LabConfig, load
from labctl.proc import LabError
from labkit import sampling

LIFECYCLE = ("up", "down", "status", "logs", "stop", "start", "restart")
OPTIONS = ("service", "volumes", "json", "follow")  # what a lifecycle command may take
COMPOSE_FILE = ROOT / "docker-compose.yml"
LEGACY_NOTE = (
    "no `docker compose` (Compose v2) here: using Debian's docker-compose 1.29, which works with "
    "Debian's own docker.io (Engine 20.10). With Docker Engine 26 or newer it fails on any up "
    "that recreates a container (KeyError: 'ContainerConfig'; docker/compose#11742): install "
    "the Compose v2 plugin there.")


def compose_command() -> list[str]:
    """`docker compose` (Compose v2) when the plugin is there, else Debian's `docker-compose`."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"],
                                 capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        print(f"lab: {LEGACY_NOTE}", file=sys.stderr, flush=True)
        return [legacy]
    raise LabError("compose mode needs `docker compose` (Compose v2) or `docker-compose`; "
                   "install one, or run natively with LAB_MODE=native")


def compose_args(command: str, v2: bool, service: str = "", volumes: bool = False,
                 json: bool = False, follow: bool = False) -> list[str]:
    """The compose arguments for one lifecycle command of ./lab, with its options."""
    if command == "up":
        # v2 waits for every healthcheck, as native `./lab up` waits until healthy.
        return ["up", "-d", "--build", *(["--wait"] if v2 else [])]
    if command == "down":
        return ["down", *(["--volumes"] if volumes else [])]
    if command == "status":
        return ["ps", *(["--format", "json"] if v2 and json else [])]
    if command == "logs":
        return ["logs", *(["--follow"] if follow else []), service]
    if command in ("stop", "start", "restart"):
        return [command, service]
    raise LabError(f"./lab {command} has no compose form")


def run(command: str, **options: str | bool) -> int:
    """`./lab COMMAND` in compose; `options` as compose_args takes them."""
    compose = compose_command()
    # `down` ends the background shoppers too: compose's own (the `traffic` profile, named so
    # that every Compose version takes it down) and those of `./lab traffic start` (a host process).
    profiles = ["--profile", "traffic"] if command == "down" else []
    argv = [*compose, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), *profiles,
            *compose_args(command, v2=compose[-1] == "compose", **options)]
    if command == "down":
        traffic.stop(load())
    return subprocess.run(argv, cwd=ROOT, env=environment(load())).returncode


def environment(cfg: LabConfig, environ: dict[str, str] | None = None) -> dict[str, str]:
    """What compose interpolates docker-compose.yml with: the shell's environment, the lab's
    own admin token (.lab/admin-token, which .env does not hold; compose passes it to the API)
    and the trace sampling `./lab sampling` chose (the shell's variables win over .env's)."""
    return {**(os.environ if environ is None else environ), "ADMIN_TOKEN": cfg.env["ADMIN_TOKEN"],
            **sampling.environment(cfg.home)}
