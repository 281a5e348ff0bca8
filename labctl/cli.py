"""The `./lab` command line."""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from labctl import alerts, bootstrap, chaos, compose, compose_phase, k8s, traffic
from labctl.components import BY_NAME, COMPONENTS
from labctl.config import ROOT, LabConfig, load
from labctl.proc import LabError, free_ports, pid_alive, run, tail, terminate

MARKER = "LAB_COMPONENT_OF"
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
    steps = {c.name: (lambda c=c: c.start(cfg), c.depends_on) for c in COMPONENTS}
    steps["migrate"] = (lambda: migrate(cfg), ("db",))
    failed: dict[str, str] = {}
    futures: dict[str, Future] = {}

    def run_step(name: str) -> None:
        action, deps = steps[name]
        for dep in deps:
            futures[dep].exception()  # wait for it; its own failure is reported by itself
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

    with ThreadPoolExecutor(max_workers=len(steps)) as pool:
        for name in _topological(steps):
            futures[name] = pool.submit(run_step, name)
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
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        ours = marker + b"\0" in environ + b"\0" or home.encode() + b"/" in cmdline
        if ours and pid_alive(int(entry.name)) and not _is_lab_cli(cmdline):
            found.append(int(entry.name))
    return found


def _is_lab_cli(cmdline: bytes) -> bool:
    args = cmdline.split(b"\0")
    return any(a.endswith(b"/lab") or a == b"./lab" for a in args[:3])


def down(cfg: LabConfig, volumes: bool = False) -> None:
    traffic.stop(cfg)
    for name in STOP_ORDER:
        BY_NAME[name].stop(cfg)
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
                     "log": str(comp.log(cfg))})
    return rows


def run_tests(cfg_env: dict[str, str], pytest_args: list[str], keep: bool,
              lint: bool = True, phases: tuple[str, ...] = ("native", "compose")) -> int:
    """The suite: the native stack's phases, then the compose phase (compose_phase.py)."""
    bootstrap.ensure_all(for_tests=True)
    venv = ROOT / ".venv" / "bin"
    if lint:
        say("ruff check")
        if subprocess.run([str(venv / "ruff"), "check", "."], cwd=ROOT).returncode != 0:
            return 1
    if "native" in phases:
        rc = run_native_tests(cfg_env, pytest_args, keep)
        if rc != 0:
            return rc
    if "compose" in phases:
        home = Path(cfg_env.get("LAB_COMPOSE_TEST_HOME") or ROOT / ".lab-test-compose").resolve()
        return compose_phase.run_phase(home, pytest_args)
    return 0


def run_native_tests(cfg_env: dict[str, str], pytest_args: list[str], keep: bool) -> int:
    venv = ROOT / ".venv" / "bin"
    # LAB_TEST_HOME lets two suites run side by side (e.g. .lab-test-mine, ignored by git).
    home = Path(cfg_env.get("LAB_TEST_HOME") or ROOT / ".lab-test").resolve()
    env = dict(cfg_env)
    env.update(isolated_environment(home))
    cfg = load(env)
    if home.exists():
        down(cfg, volumes=True)
    try:
        say(f"starting the test stack under {home}")
        up(cfg)
        n = os.environ.get("LAB_TEST_WORKERS", "4")
        # Parallel first; then the tests that stop components, one at a time, on the same stack.
        phases = [["-n", n, "--dist", "loadgroup", "-m", "not disruptive and not compose"],
                  ["-p", "no:xdist", "-m", "disruptive and not compose"]]
        for phase in phases:
            argv = [str(venv / "pytest"), *phase, *pytest_args]
            say(" ".join(argv[1:]))
            rc = subprocess.run(argv, cwd=ROOT, env=cfg.env).returncode
            if rc not in (0, 5):  # 5: no test selected in this phase
                return rc
        return 0
    finally:
        if keep:
            say(f"test stack kept running under {home} (LAB_HOME={home})")
        else:
            down(cfg, volumes=False)


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
    })
    return env


def exercise_check(name: str) -> Path:
    """exercises/<NN>-*/check.py for a number (2, 02) or a folder name."""
    folders = sorted(p for p in (ROOT / "exercises").glob("[0-9][0-9]-*") if p.is_dir())
    wanted = name.zfill(2) if name.isdigit() else name
    matches = [p for p in folders if p.name == wanted or p.name.split("-", 1)[0] == wanted]
    if not matches:
        raise LabError(f"no exercise {name!r}; there are: {', '.join(p.name for p in folders)}")
    return matches[0] / "check.py"


def run_check(cfg: LabConfig, exercise: str, check_args: list[str]) -> int:
    """An exercise's check against this lab's own ports (natively they may differ from .env)."""
    urls = ["--base-url", cfg.url("GATEWAY_PORT"), "--prometheus-url", cfg.url("PROMETHEUS_PORT"),
            "--jaeger-url", cfg.url("JAEGER_UI_PORT"),
            "--receiver-url", cfg.url("ALERT_RECEIVER_PORT"),
            "--mode", compose.mode(home=cfg.home)]
    argv = [sys.executable, str(exercise_check(exercise)), *urls, *check_args]
    return subprocess.run(argv, env={**os.environ, "LAB_HOME": str(cfg.home)}).returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="./lab", description="Run the record-store lab natively.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="install what is missing, start every component, wait until healthy")
    p = sub.add_parser("down", help="stop every component (data is kept)")
    p.add_argument("--volumes", action="store_true", help="also delete data and logs (.lab/)")
    p = sub.add_parser("status", help="health of every component")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("logs", help="a component's log")
    p.add_argument("service", choices=sorted([*BY_NAME, "migrate", "traffic"]))
    p.add_argument("-f", "--follow", action="store_true")
    for verb in ("stop", "start", "restart"):
        p = sub.add_parser(verb, help=f"{verb} one component")
        p.add_argument("service", choices=sorted(BY_NAME))
    p = sub.add_parser("chaos", help="switch runtime faults on or off (no restart)")
    p.add_argument("action", choices=["show", "set", "reset"])
    p.add_argument("assignments", nargs="*", metavar="NAME=VALUE")
    p = sub.add_parser("alerts", help="what is firing, and what was delivered to the receiver")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("traffic", help="background shoppers, so dashboards have live data")
    p.add_argument("action", choices=["start", "stop", "status"])
    p = sub.add_parser("check", help="an exercise's check: has the lab reached its state?")
    p.add_argument("exercise", help="its number (02) or folder name (02-database-failure)")
    p.add_argument("check_args", nargs=argparse.REMAINDER,
                   help="passed on to the check, e.g. --since 10m --wait 60")
    p = sub.add_parser("dashboard", help="a Grafana dashboard in the terminal, by its own queries")
    p.add_argument("name", nargs="?", default="Purchase Journey", help="title or uid")
    p.add_argument("--list", action="store_true", help="list the provisioned dashboards")
    p.add_argument("--var", action="append", metavar="NAME=VALUE",
                   help="set a dashboard variable, e.g. --var trace_id=<id>")
    p = sub.add_parser("bench", help="benchmark the native stack: latency, throughput, and what "
                       "telemetry costs (on a stack of its own)")
    from bench.cli import configure_parser  # imported here: bench imports labctl.cli

    configure_parser(p)
    k8s.configure_parser(sub)
    p = sub.add_parser("test", help="install what is missing and run the whole test suite")
    p.add_argument("--keep", action="store_true", help="leave the test stack running")
    p.add_argument("--no-lint", dest="lint", action="store_false", help="skip ruff (while editing)")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--compose", dest="phases", action="store_const", const=("compose",),
                      help="only the compose phase: docker-compose.yml up on a private engine "
                      "(the whole suite runs it after the native phases, unless pytest "
                      "arguments pick tests)")
    only.add_argument("--native", dest="phases", action="store_const", const=("native",),
                      help="only the native phases (no Docker engine)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    try:
        if args.command in compose.LIFECYCLE and compose.mode(home=load().home) == "compose":
            return compose.run(args)
        if args.command == "test":
            pytest_args = [a for a in args.pytest_args if a != "--"]
            phases = args.phases or (("native",) if pytest_args else ("native", "compose"))
            return run_tests(dict(os.environ), pytest_args, args.keep, args.lint, phases)
        if args.command == "k8s":
            return k8s.run(args)
        if args.command == "bench":
            from bench.cli import run as run_bench

            return run_bench(args)
        cfg = load()
        if args.command == "up":
            bootstrap.ensure_all()
            up(cfg)
        elif args.command == "down":
            down(cfg, args.volumes)
        elif args.command == "status":
            rows = status(cfg)
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                for r in rows:
                    mark = ("healthy" if r["healthy"]
                            else "UNHEALTHY" if r["running"] else "stopped")
                    print(f"{r['component']:<11} {mark:<10} {r['detail']}")
            return 0 if all(r["healthy"] for r in rows) else 3
        elif args.command == "chaos":
            if args.action == "set":
                view = chaos.call(cfg, "PUT", chaos.parse_assignments(args.assignments))
            else:
                view = chaos.call(cfg, "DELETE" if args.action == "reset" else "GET")
            if args.action != "show":
                chaos.wait_in_effect(view)
            print(chaos.render(view))
        elif args.command == "alerts":
            report = alerts.collect(cfg)
            print(json.dumps(report, indent=2) if args.json else alerts.render(report))
        elif args.command == "traffic":
            if args.action == "start":
                traffic.start(cfg)
                say(f"traffic running: background shoppers, log {traffic.log(cfg)}")
            elif args.action == "stop":
                traffic.stop(cfg)
                say("traffic stopped")
            else:
                running = traffic.status(cfg)
                say(f"traffic {'running' if running else 'stopped'}")
                return 0 if running else 3
        elif args.command == "check":
            return run_check(cfg, args.exercise, [a for a in args.check_args if a != "--"])
        elif args.command == "dashboard":
            from labctl import dashboard

            return dashboard.main(cfg, args.name, list_only=args.list, var=args.var)
        elif args.command == "logs":
            log = cfg.logs / f"{args.service}.log"
            if not log.exists():
                raise LabError(f"no log yet for {args.service} ({log})")
            if args.follow:
                os.execvp("tail", ["tail", "-n", "+1", "-F", str(log)])
            with open(log, "rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer)
        else:
            cfg = with_marker(cfg)
            comp = BY_NAME[args.service]
            if args.command in ("stop", "restart"):
                comp.stop(cfg)
                say(f"{comp.name} stopped")
            if args.command in ("start", "restart"):
                comp.start(cfg)
                say(f"{comp.name} healthy")
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0
