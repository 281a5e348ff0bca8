"""The lab's addresses as a learner's scripts see them: the ports of the repository's .env."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def read_env(path: Path = REPO / ".env") -> dict[str, str]:
    """KEY=VALUE lines of the repository's .env (the subset of the format compose reads)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def default_url(env: dict[str, str], port_name: str, default: str) -> str:
    """http://localhost:<port>, the port from .env: where both run modes publish it."""
    return f"http://localhost:{env.get(port_name, default)}"
