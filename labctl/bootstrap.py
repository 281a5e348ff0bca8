"""Install what the lab needs and is missing: Debian packages and the Python environment."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from labctl import privileges
from labctl.config import ROOT
from labctl.proc import LabError

# Debian package -> a file it provides, to tell whether it is installed without asking dpkg.
APT_PACKAGES = {
    "postgresql": "/usr/lib/postgresql",
    "rabbitmq-server": "/usr/sbin/rabbitmq-server",
    "nginx": "/usr/sbin/nginx",
    "prometheus": "/usr/bin/prometheus",
    "prometheus-alertmanager": "/usr/bin/prometheus-alertmanager",
    "prometheus-postgres-exporter": "/usr/bin/prometheus-postgres-exporter",
    "prometheus-nginx-exporter": "/usr/bin/prometheus-nginx-exporter",
}
UV_VERSION = "0.13.8"
DEBIAN_PYTHON = Path("/usr/bin/python3.11")


def say(msg: str) -> None:
    print(f"lab: {msg}", flush=True)


def missing_packages(packages: dict[str, str]) -> list[str]:
    return [pkg for pkg, path in packages.items() if not os.path.exists(path)]


def ensure_packages(packages: dict[str, str]) -> None:
    missing = missing_packages(packages)
    if not missing:
        return
    if os.geteuid() != 0:
        raise LabError(f"missing Debian packages: {' '.join(missing)}. Install them with: "
                       f"sudo apt-get install -y {' '.join(missing)}")
    say(f"installing Debian packages: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        r = subprocess.run(argv, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    still = missing_packages(packages)
    if still:
        raise LabError(f"packages still missing after apt-get install: {' '.join(still)}")


def uv_binary() -> str:
    found = shutil.which("uv") or _uv_module_binary()
    if found:
        return found
    say(f"installing uv {UV_VERSION} from PyPI")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"pip install uv failed:\n{r.stderr[-2000:]}")
    found = shutil.which("uv") or _uv_module_binary()
    if not found:
        raise LabError("uv was installed but cannot be found")
    return found


def _uv_module_binary() -> str | None:
    """uv installed by pip but not on PATH (e.g. behind pyenv's shims)."""
    r = subprocess.run([sys.executable, "-c", "import uv; print(uv.find_uv_bin())"],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def ensure_python_env() -> None:
    """The venv at .venv, exactly as uv.lock pins it (a no-op when already in sync). Compiled
    to bytecode: every lab process and test starts Python afresh, and where
    PYTHONDONTWRITEBYTECODE is set (as in many CI images) each would otherwise compile
    every module it imports from source, seconds of CPU per start."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never",
           "UV_PROJECT_ENVIRONMENT": str(ROOT / ".venv")}
    r = subprocess.run([uv_binary(), "sync", "--frozen", "--quiet", "--compile-bytecode",
                        *_interpreter_for_everyone()],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"uv sync --frozen failed:\n{r.stderr[-3000:]}")


def _interpreter_for_everyone() -> list[str]:
    """As root, the lab's Python programs run as an unprivileged user (privileges.py), who
    must be able to run the venv's interpreter: not one under root's own home (pyenv's, say)
    but Debian's, when the venv's is not one others may run (uv then makes the venv anew)."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    if os.geteuid() != 0 or (venv_python.exists() and privileges.others_can_run(venv_python)):
        return []
    return ["--python", str(DEBIAN_PYTHON)] if DEBIAN_PYTHON.exists() else []


def ensure_all(extra_packages: dict[str, str] | None = None) -> None:
    """APT_PACKAGES and the Python environment; `extra_packages` too (the test suite's)."""
    ensure_packages({**APT_PACKAGES, **(extra_packages or {})})
    ensure_python_env()
