"""`./lab traffic start|stop|status`: background shoppers, so dashboards have live data.

Never on by default, so that a learner's own journey stays easy to find. It runs the same
generator as `scripts/trace_purchase_journey.py load-test` (and the compose service of the
`traffic` profile), with the system `python3`, since the script needs nothing else.
"""

from pathlib import Path

from labctl.config import ROOT, LabConfig
from labctl.proc import LabError, pid_alive, read_pid, spawn, tail, terminate, wait_until

SCRIPT = ROOT / "scripts" / "trace_purchase_journey.py"
STARTED_LINE = "Load test against"  # the script's first line: it is up and running


def pidfile(cfg: LabConfig) -> Path:
    return cfg.run / "traffic.pid"


def log(cfg: LabConfig) -> Path:
    return cfg.logs / "traffic.log"


def argv(cfg: LabConfig) -> list[str]:
    return ["python3", str(SCRIPT), "load-test", "--pattern", "business-hours", "--forever",
            "--quiet", "--mode", "native", "--base-url", cfg.url("GATEWAY_PORT"),
            "--jaeger-url", cfg.url("JAEGER_UI_PORT")]


def status(cfg: LabConfig) -> bool:
    pid = read_pid(pidfile(cfg))
    return pid is not None and pid_alive(pid)


def start(cfg: LabConfig) -> None:
    """Start the generator unless it runs; LabError (with its log) if it exits at once."""
    if status(cfg):
        return
    path = log(cfg)
    offset = path.stat().st_size if path.exists() else 0
    try:
        pid = spawn(argv(cfg), {**cfg.env, "PYTHONUNBUFFERED": "1"}, path, pidfile(cfg), ROOT)
    except FileNotFoundError:
        raise LabError("traffic: python3 is not on PATH") from None

    def started_or_exited() -> bool:
        with open(path, "rb") as f:
            f.seek(offset)
            return STARTED_LINE.encode() in f.read() or not pid_alive(pid)

    wait_until(started_or_exited, timeout_s=10)
    if not pid_alive(pid):
        pidfile(cfg).unlink(missing_ok=True)
        raise LabError(f"traffic: the generator exited at once. Its log: {path}\n{tail(path)}")


def stop(cfg: LabConfig) -> None:
    """Stop the generator (it prints its summary to its log first); harmless when stopped."""
    pid = read_pid(pidfile(cfg))
    if pid is not None and pid_alive(pid):
        terminate(pid, timeout_s=20)  # the shoppers finish their current request first
    pidfile(cfg).unlink(missing_ok=True)
