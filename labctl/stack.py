"""The native stack's lifecycle: up, down, status, the migrate step, isolated stacks of their
own (`./lab test`, `./lab bench`) and the processes that belong to a stack.

`up` starts every component (components.py) as soon as what it depends on is healthy; `down`
stops them and proves, by a marker in every process's environment, that none is left.
"""

import os
import shutil
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from labctl import supervisor, traffic
from labctl.components import BY_NAME, COMPONENTS
from labctl.config import ROOT, LabConfig
from labctl.proc import (
    MARKER,
    LabError,
    free_ports,
    pid_alive,
    processes,
    run,
    tail,
    terminate,
)

PORT_NAMES = [
    "GATEWAY_PORT", "GATEWAY_STATUS_PORT", "API_PORT", "JAEGER_UI_PORT", "OTLP_HTTP_PORT",
    "PROMETHEUS_PORT", "ALERTMANAGER_PORT", "ALERT_RECEIVER_PORT", "POSTGRES_PORT",
    "POSTGRES_EXPORTER_PORT", "RABBITMQ_PORT", "RABBITMQ_DIST_PORT", "RABBITMQ_MANAGEMENT_PORT",
    "RABBITMQ_PROMETHEUS_PORT", "WORKER_METRICS_PORT", "NGINX_EXPORTER_PORT",
]
STOP_ORDER = ["nginx-exporter", "gateway", "postgres-exporter", "worker", "api", "alertmanager",
              "alert-receiver", "prometheus", "jaeger", "rabbitmq", "db"]
URLS = [
    ("Storefront and API (gateway)", "GATEWAY_PORT", "/"),
    ("Jaeger query API (native stand-in)", "JAEGER_UI_PORT", "/api/services"),
    ("Prometheus", "PROMETHEUS_PORT", "/"),
    ("Alertmanager", "ALERTMANAGER_PORT", "/"),
    ("Alert receiver (notifications)", "ALERT_RECEIVER_PORT", "/alerts"),
    ("RabbitMQ management", "RABBITMQ_MANAGEMENT_PORT", "/"),
]


_print_lock = threading.Lock()


def say(msg: str) -> None:
    with _print_lock:  # components start in parallel threads
        print(f"lab: {msg}", flush=True)


def with_marker(cfg: LabConfig) -> LabConfig:
    """Every program the lab starts carries a marker, so `down` can prove none is left."""
    env = {**cfg.env, MARKER: str(cfg.home)}
    os.environ[MARKER] = str(cfg.home)  # programs started through sudo-like wrappers inherit it
    return LabConfig(env=env, home=cfg.home)


def migrate(cfg: LabConfig) -> None:
    log = cfg.logs / "migrate.log"
    r = run([str(cfg.venv_bin / "python"), "-m", "recordstore.manage", "migrate"],
            env={**cfg.env, "OTEL_SERVICE_NAME": "kodekloud-record-store-migrate"},
            log=log, cwd=ROOT, timeout_s=120)
    if r.returncode != 0:
        raise LabError(f"migrate failed (exit {r.returncode}).\nIts log: {log}\n{tail(log)}")


def up(cfg: LabConfig) -> None:
    """Start every component as soon as what it depends on is healthy (migrate is a step)."""
    cfg = with_marker(cfg)
    t0 = time.monotonic()
    cfg.home.mkdir(parents=True, exist_ok=True)
    supervisor.ensure(cfg)
    steps = {c.name: (lambda c=c: c.start(cfg), c.depends_on) for c in COMPONENTS}
    steps["migrate"] = (lambda: migrate(cfg), ("db",))
    failed: dict[str, str] = {}
    futures: dict[str, Future] = {}

    def run_step(name: str) -> None:
        action, deps = steps[name]
        for dep in deps:
            futures[dep].exception()  # wait for it; its own failure is reported by itself
        if interrupted.is_set():
            return
        blocked = [d for d in deps if d in failed]
        if blocked:
            failed[name] = f"{name}: not started, because {', '.join(blocked)} failed"
            return
        started = time.monotonic()
        try:
            action()
        except LabError as exc:
            failed[name] = str(exc)
            return
        except Exception as exc:  # noqa: BLE001 - report, do not hide, unexpected failures
            failed[name] = f"{name}: {type(exc).__name__}: {exc}"
            return
        say(f"{name} healthy ({time.monotonic() - started:.1f}s)")

    interrupted = threading.Event()
    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        try:
            for name in _topological(steps):
                futures[name] = pool.submit(run_step, name)
            pool.shutdown(wait=True)
        except BaseException:  # a signal (./lab test): only what is starting ends its start,
            interrupted.set()  # so that the caller's down finds everything that was started
            pool.shutdown(wait=True)
            raise
    if failed:
        roots = [msg for msg in failed.values() if "not started, because" not in msg]
        raise LabError("\n\n".join(roots + [m for m in failed.values() if m not in roots]))
    say(f"all components healthy in {time.monotonic() - t0:.1f}s")
    for label, port, path in URLS:
        print(f"  {label:<38} {cfg.url(port, path)}")
    print(f"  {'Logs':<38} ./lab logs SERVICE   (files in {cfg.logs})")


def _topological(steps: dict[str, tuple]) -> list[str]:
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            for dep in steps[name][1]:
                visit(dep)
            order.append(name)

    for name in steps:
        visit(name)
    return order


def lab_processes(cfg: LabConfig) -> list[int]:
    """Pids of processes that belong to this lab home, whatever started them."""
    home = str(cfg.home)
    marker = f"{MARKER}={home}".encode()

    def ours(seen: dict[str, bytes]) -> bool:
        return marker + b"\0" in seen["environ"] + b"\0" or home.encode() + b"/" in seen["cmdline"]

    return [pid for pid, seen in processes("cmdline", "environ")
            if ours(seen) and pid_alive(pid) and not _is_lab_cli(seen["cmdline"])]


def _is_lab_cli(cmdline: bytes) -> bool:
    args = cmdline.split(b"\0")
    return any(a.endswith(b"/lab") or a == b"./lab" for a in args[:3])


def down(cfg: LabConfig, volumes: bool = False) -> None:
    supervisor.stop(cfg)
    traffic.stop(cfg)
    for name in STOP_ORDER:
        BY_NAME[name].stop(cfg)
    for counted in cfg.run.glob("*.restarts"):
        counted.unlink()
    left = lab_processes(cfg)
    for pid in left:
        terminate(pid, timeout_s=3, sig=signal.SIGKILL)
    still = [p for p in lab_processes(cfg) if pid_alive(p)]
    if still:
        raise LabError(f"processes still running after down: {still}")
    if volumes and cfg.home.exists():
        shutil.rmtree(cfg.home)
        say(f"removed {cfg.home} (data, logs)")
    say("stopped" + (f"; stray processes killed: {left}" if left else ""))


def status(cfg: LabConfig) -> list[dict]:
    rows = []
    for comp in COMPONENTS:
        ok, detail = comp.healthy(cfg)
        rows.append({"component": comp.name, "description": comp.description,
                     "running": comp.running(cfg), "healthy": ok, "detail": detail,
                     "log": str(comp.log(cfg)), "restarts": supervisor.restarts(cfg, comp)})
    return rows


def isolated_environment(home: Path) -> dict[str, str]:
    """A second, isolated stack: its own home and free ports, so a running lab is untouched."""
    env = dict(zip(PORT_NAMES, map(str, free_ports(len(PORT_NAMES))), strict=True))
    env.update({
        "LAB_HOME": str(home),
        "LAB_MODE": "native",  # the suite proves native mode, even where a Docker engine runs
        "PAYMENT_LATENCY_MS": "100",
        "EMAIL_DELAY_MS": "50",
        "TASK_RETRY_BACKOFF_S": "0.2",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OUTBOX_RELAY_INTERVAL_S": "0.5",
        "OUTBOX_RELAY_GRACE_S": "1",
        # Orders left unfinished are overdue (OrdersNotFinal) in seconds, not minutes.
        "ORDER_FINAL_WITHIN_S": "15",
    })
    return env


def start(cfg: LabConfig, name: str) -> None:
    """Start one component (what it depends on must be up)."""
    comp = BY_NAME[name]
    cfg = with_marker(cfg)
    comp.start(cfg)
    supervisor.ensure(cfg)
    say(f"{comp.name} healthy")


def stop(cfg: LabConfig, name: str) -> None:
    comp = BY_NAME[name]
    comp.stop(cfg)
    say(f"{comp.name} stopped")
