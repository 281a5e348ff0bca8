"""Where the lab's settings come from: defaults < .env < the process environment."""

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def read_env_file(path: Path) -> dict[str, str]:
    """The subset of the dotenv format that compose also reads: KEY=VALUE, # comments, quotes."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


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
    env = read_env_file(ROOT / ".env")
    env.update({k: v for k, v in environ.items()})
    home = Path(env.get("LAB_HOME") or ROOT / ".lab").resolve()
    env["LAB_HOME"] = str(home)
    # Natively every program reaches the others on loopback.
    env.setdefault("POSTGRES_HOST", "127.0.0.1")
    env.setdefault("RABBITMQ_HOST", "127.0.0.1")
    env.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{env['OTLP_HTTP_PORT']}")
    env.setdefault("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    return LabConfig(env=env, home=home)
