"""docker-compose.yml run for real on a private engine: one stack of the real file plus an
override that only swaps the upstream images for their stand-ins and forbids pulls.

Used by the compose phase of `./lab test` and by the tests it runs (tests/compose/), which
find the stack through the environment the phase gives them (`from_env`).
"""

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from labctl.config import ROOT
from labctl.proc import LabError

COMPOSE_FILE = ROOT / "docker-compose.yml"
# The published ports: the phase picks free ones, so a learner's lab on .env's ports is untouched.
PUBLISHED_PORTS = ("GATEWAY_PORT", "JAEGER_UI_PORT", "OTLP_HTTP_PORT", "PROMETHEUS_PORT",
                   "ALERTMANAGER_PORT", "RABBITMQ_MANAGEMENT_PORT", "ALERT_RECEIVER_PORT",
                   "GRAFANA_PORT")
UP_TIMEOUT_S = 240
LOG_LINES = 25


def override(config: dict, standins: dict[str, str]) -> dict:
    """The one override: every service `pull_policy: never`, stand-in images swapped in."""
    services = {}
    for name in config["services"]:
        services[name] = {"pull_policy": "never"}
        if name in standins:
            services[name]["image"] = standins[name]
    return {"services": services}


def project_builds(config: dict) -> dict[tuple[str, str], list[str]]:
    """(context, Dockerfile) -> the image tags of the services built from it."""
    builds: dict[tuple[str, str], list[str]] = {}
    for service in config["services"].values():
        if "build" in service:
            context = service["build"]["context"]
            dockerfile = str(Path(context) / service["build"].get("dockerfile", "Dockerfile"))
            builds.setdefault((context, dockerfile), []).append(service["image"])
    return builds


@dataclass
class ComposeStack:
    """One compose project on one engine: the files, the environment, the commands."""

    env: dict[str, str]  # DOCKER_HOST, the published ports, .env's values come from compose
    files: list[Path] = field(default_factory=lambda: [COMPOSE_FILE])

    ENV_FILES = "LAB_COMPOSE_FILES"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "ComposeStack":
        env = dict(os.environ if env is None else env)
        files = [Path(p) for p in env.get(cls.ENV_FILES, "").split(os.pathsep) if p]
        if not files or "DOCKER_HOST" not in env:
            raise LabError("no compose stack: run the compose phase with ./lab test --compose")
        return cls(env=env, files=files)

    def exported(self) -> dict[str, str]:
        return {**self.env, self.ENV_FILES: os.pathsep.join(str(f) for f in self.files)}

    def argv(self, *args: str) -> list[str]:
        files = [a for f in self.files for a in ("-f", str(f))]
        return ["docker-compose", "--project-directory", str(ROOT), *files, *args]

    def run(self, *args: str, timeout_s: float = 180, check: bool = True
            ) -> subprocess.CompletedProcess:
        r = subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True,
                           timeout=timeout_s, cwd=ROOT)
        if check and r.returncode != 0:
            raise LabError(f"docker-compose {' '.join(args)} failed:\n{r.stderr[-3000:]}")
        return r

    def config(self) -> dict:
        return yaml.safe_load(self.run("config").stdout)

    def docker(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout_s)

    def container(self, service: str) -> dict | None:
        """`docker inspect` of the service's container, None before compose created it."""
        ids = self.run("ps", "-a", "-q", service).stdout.split()
        if not ids:
            return None
        r = self.docker("inspect", ids[0])
        return json.loads(r.stdout)[0] if r.returncode == 0 else None

    def logs(self, service: str, lines: int = LOG_LINES) -> str:
        """The container's last log lines, from the engine: every run of a restarting container
        (docker-compose 1.29's `logs` can answer nothing between two runs). Polled for up to
        5 s while the log is still empty."""
        deadline = time.monotonic() + 5
        while True:
            info = self.container(service)
            r = self.docker("logs", "--tail", str(lines), info["Id"]) if info else None
            text = (r.stdout + r.stderr) if r is not None else ""
            if text.strip() or time.monotonic() >= deadline:
                return text
            time.sleep(0.5)

    def state(self, service: str, one_shot: bool) -> tuple[str, str]:
        """(ready | waiting | failed, what was seen) for one service's container."""
        info = self.container(service)
        if info is None:
            return "waiting", "not created yet"
        state = info["State"]
        health = (state.get("Health") or {}).get("Status")
        if one_shot and state["Status"] == "exited":
            code = state["ExitCode"]
            return ("ready", "completed") if code == 0 else ("failed", f"exited with {code}")
        if state["Status"] in ("exited", "dead") or info.get("RestartCount", 0) > 0:
            return "failed", (f"exited with {state['ExitCode']} (restarted "
                              f"{info.get('RestartCount', 0)} times)"
                              + (", killed for memory" if state.get("OOMKilled") else ""))
        if health == "unhealthy":
            log = (state["Health"].get("Log") or [{}])[-1].get("Output", "").strip()
            return "failed", f"unhealthy: {log[-300:]}"
        if state["Status"] == "running" and health in (None, "healthy"):
            return "ready", health or "running"
        return "waiting", f"{state['Status']}, health {health}"

    def up(self, services: list[str], one_shot: tuple[str, ...] = ("migrate",),
           timeout_s: float = UP_TIMEOUT_S) -> float:
        """`up -d` of these services, waiting until each is healthy (or, one-shot, done): the
        seconds it took, or a LabError naming the service that failed and its last log."""
        started = time.monotonic()
        proc = subprocess.Popen(self.argv("up", "-d", "--no-build", *services), env=self.env,
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            while True:
                states = {s: self.state(s, s in one_shot) for s in services}
                failed = {s: seen for s, (st, seen) in states.items() if st == "failed"}
                if failed:
                    raise LabError(self._failure(failed))
                if proc.poll() not in (None, 0):
                    raise LabError(f"docker-compose up failed:\n{proc.stdout.read()[-3000:]}")
                if proc.poll() == 0 and all(st == "ready" for st, _ in states.values()):
                    return time.monotonic() - started
                if time.monotonic() - started > timeout_s:
                    waiting = {s: seen for s, (st, seen) in states.items() if st != "ready"}
                    raise LabError(f"not healthy after {timeout_s}s: " + self._failure(waiting))
                time.sleep(1)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def _failure(self, services: dict[str, str]) -> str:
        return "\n\n".join(f"{name}: {seen}; its last log lines:\n{self.logs(name)}"
                           for name, seen in services.items())

    def down(self) -> None:
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout_s=300)
