"""Compose mode of ./lab: its lifecycle commands as `docker compose` on docker-compose.yml.

Which mode runs is the one rule of labkit/settings.py (`run_mode`): compose when a
Docker engine answers and natively otherwise; LAB_MODE=compose or LAB_MODE=native forces one,
and a native stack already running from the lab's home keeps the commands native. Service
names are the same in both modes, so `./lab stop db` means the same everywhere. The other
commands (alerts, chaos, dashboard, traffic) talk HTTP to the lab's published ports, which
compose keeps, so they work unchanged in both modes; `./lab test` is always native, and
`./lab profile` refuses compose mode (profile.py's COMPOSE_NOTE says why).
"""

import argparse
import os
import shutil
import subprocess
import sys

from labctl import traffic
from labctl.config import ROOT, load
from labctl.proc import LabError

LIFECYCLE = ("up", "down", "status", "logs", "stop", "start", "restart")
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


def compose_args(args: argparse.Namespace, v2: bool) -> list[str]:
    """The compose arguments for one parsed lifecycle command of ./lab."""
    if args.command == "up":
        # v2 waits for every healthcheck, as native `./lab up` waits until healthy.
        return ["up", "-d", "--build", *(["--wait"] if v2 else [])]
    if args.command == "down":
        return ["down", *(["--volumes"] if args.volumes else [])]
    if args.command == "status":
        return ["ps", *(["--format", "json"] if v2 and args.json else [])]
    if args.command == "logs":
        return ["logs", *(["--follow"] if args.follow else []), args.service]
    if args.command in ("stop", "start", "restart"):
        return [args.command, args.service]
    raise LabError(f"./lab {args.command} has no compose form")


def run(args: argparse.Namespace) -> int:
    command = compose_command()
    # `down` ends the background shoppers too: compose's own (the `traffic` profile, named so
    # that every Compose version takes it down) and those of `./lab traffic start` (a host process).
    profiles = ["--profile", "traffic"] if args.command == "down" else []
    argv = [*command, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), *profiles,
            *compose_args(args, v2=command[-1] == "compose")]
    if args.command == "down":
        traffic.stop(load())
    # The lab's own admin token (.lab/admin-token), which .env does not hold: compose reads it
    # from the environment into the API's.
    env = {**os.environ, "ADMIN_TOKEN": load().env["ADMIN_TOKEN"]}
    return subprocess.run(argv, cwd=ROOT, env=env).returncode
