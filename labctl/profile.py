"""`./lab profile api|worker`: a CPU profile of the running process, recorded with py-spy.

py-spy reads the target's memory from outside (ptrace), so the process runs on unchanged; the
API's uvicorn workers are children of the pid the lab keeps, hence `--subprocesses`. The
profile is speedscope JSON (open it at https://www.speedscope.app), under `<lab home>/profiles`.
"""

import subprocess
import time
from pathlib import Path

from labctl.components import BY_NAME
from labctl.config import LabConfig
from labctl.proc import LabError
from labkit import profiles

TARGETS = ("api", "worker")
TOP = 8
COMPOSE_NOTE = (
    "profile: natively only. In compose the app image has no py-spy (it installs the "
    "dependencies without the dev group) and its containers lack the SYS_PTRACE capability "
    "py-spy needs to attach. Run the lab natively to profile it (`./lab down` the compose one, "
    "then LAB_MODE=native ./lab up), or add `cap_add: [SYS_PTRACE]` to the service and py-spy to "
    "the image, then (the app runs as an unprivileged user, py-spy must be root there): "
    "docker compose exec --user root api py-spy record --pid 1 --subprocesses "
    "--duration 10 --format speedscope -o /tmp/api.speedscope.json")


def record(cfg: LabConfig, target: str, seconds: int) -> Path:
    """Sample `target`'s processes for `seconds`; the path of the speedscope file written."""
    pid = BY_NAME[target].pid(cfg)
    if pid is None:
        raise LabError(f"profile: {target} is not running (./lab start {target})")
    py_spy = cfg.venv_bin / "py-spy"
    if not py_spy.exists():
        raise LabError(f"profile: no py-spy at {py_spy}; ./lab up installs it")
    out_dir = cfg.home / "profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{target}-{time.strftime('%Y%m%d-%H%M%S')}{profiles.SUFFIX}"
    argv = [str(py_spy), "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
            "--duration", str(seconds), "--format", "speedscope", "--output", str(out)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0 or not out.exists():
        detail = (r.stderr or r.stdout).strip().splitlines()[:3]
        hint = (" (py-spy needs ptrace rights over the process: run as the user that started "
                "the lab, or as root)") if "ermission" in r.stderr else ""
        raise LabError(f"profile: py-spy failed (exit {r.returncode}){hint}: "
                       f"{' / '.join(detail)}")
    return out


def summary(path: Path, top: int = TOP) -> str:
    """The functions most often on the CPU, with the share of samples each was in."""
    total = profiles.samples(path)
    if not total:
        return "no samples: the process was idle (send it some traffic while it records)"
    lines = [f"{total} samples on the CPU; the functions that ran most (self time):"]
    for name, count in profiles.self_time(path).most_common(top):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)
