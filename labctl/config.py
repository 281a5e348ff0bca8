"""Where the lab's settings come from: defaults < .env < the process environment."""

import os
from dataclasses import dataclass
from pathlib import Path

from labctl.proc import LabError
from labkit.settings import admin_token, lab_home, read_env
from recordstore.exposure import admin_token_problem

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LabConfig:
    env: dict[str, str]  # everything the lab's programs receive
    home: Path  # state, logs and pid files

    def port(self, name: str) -> int:
        return int(self.env[name])

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def venv_bin(self) -> Path:
        return ROOT / ".venv" / "bin"

    def url(self, port_name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port(port_name)}{path}"


def load(environ: dict[str, str] | None = None) -> LabConfig:
    environ = dict(os.environ if environ is None else environ)
    env = read_env(ROOT / ".env")
    env.update(environ)
    home = lab_home(env)
    env["LAB_HOME"] = str(home)
    env["ADMIN_TOKEN"] = admin_token(env)
    # Natively every program reaches the others on loopback.
    env.setdefault("POSTGRES_HOST", "127.0.0.1")
    env.setdefault("RABBITMQ_HOST", "127.0.0.1")
    env.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{env['OTLP_HTTP_PORT']}")
    env.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    return LabConfig(env=env, home=home)


def check_exposure(cfg: LabConfig) -> None:
    """Refuse to serve the admin routes beyond loopback with a token anyone may know."""
    problem = admin_token_problem(cfg.env["ADMIN_TOKEN"], cfg.env.get("GATEWAY_BIND", ""))
    if problem:
        raise LabError(problem)
