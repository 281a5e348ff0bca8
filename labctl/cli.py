"""The `./lab` command line: one parser, one handler per subcommand (`set_defaults(func=...)`).

The stack's lifecycle is in stack.py, the test suite in suite.py, compose mode in compose.py;
a lifecycle command runs in compose when the run mode says so
(labkit/settings.py, `run_mode`).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench import cli as bench_cli
from labctl import (
    alerts,
    bootstrap,
    chaos,
    compose,
    dashboard,
    gameday,
    k8s,
    profile,
    stack,
    suite,
    supervisor,
    traffic,
)
from labctl.components import BY_NAME
from labctl.config import ROOT, check_exposure, load
from labctl.proc import LabError
from labctl.stack import say
from labkit import progress
from labkit.settings import SettingsError, run_mode


def cmd_up(args: argparse.Namespace) -> int:
    cfg = load()
    bootstrap.ensure_all()
    stack.up(cfg)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    cfg = load()
    stack.down(cfg, args.volumes)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cfg = load()
    rows = stack.status(cfg)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            mark = "healthy" if r["healthy"] else "UNHEALTHY" if r["running"] else "stopped"
            count, last = r["restarts"]["count"], r["restarts"]["last"]
            restarted = f"; restarted {count} time{'s' * (count > 1)}, last {last}" if count else ""
            print(f"{r['component']:<11} {mark:<10} {r['detail']}{restarted}")
        pid = supervisor.pid(cfg)
        print(f"supervisor: running (pid {pid}), restarts what crashes; its log: ./lab logs "
              "supervisor" if pid else "supervisor: NOT running: nothing restarts a component "
              "that crashes (./lab up starts it)")
    return 0 if all(r["healthy"] for r in rows) else 3


def cmd_logs(args: argparse.Namespace) -> int:
    cfg = load()
    log = cfg.logs / f"{args.service}.log"
    if not log.exists():
        raise LabError(f"no log yet for {args.service} ({log})")
    if args.follow:
        os.execvp("tail", ["tail", "-n", "+1", "-F", str(log)])
    with open(log, "rb") as f:
        shutil.copyfileobj(f, sys.stdout.buffer)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    cfg = load()
    stack.stop(cfg, args.service)
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    cfg = load()
    stack.start(cfg, args.service)
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    cfg = load()
    stack.stop(cfg, args.service)
    stack.start(cfg, args.service)
    return 0


def cmd_chaos(args: argparse.Namespace) -> int:
    cfg = load()
    if args.action == "set":
        view = chaos.call(cfg, "PUT", chaos.parse_assignments(args.assignments))
    else:
        view = chaos.call(cfg, "DELETE" if args.action == "reset" else "GET")
    if args.action != "show":
        chaos.wait_in_effect(view)
    print(chaos.render(view))
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    cfg = load()
    report = alerts.collect(cfg)
    print(json.dumps(report, indent=2) if args.json else alerts.render(report))
    return 0


def cmd_traffic(args: argparse.Namespace) -> int:
    cfg = load()
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
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    cfg = load()
    if run_mode(home=cfg.home) == "compose":
        raise LabError(profile.COMPOSE_NOTE)
    say(f"recording {args.target} for {args.seconds}s with py-spy")
    path = profile.record(cfg, args.target, args.seconds)
    print(profile.summary(path))
    print(f"flame graph (speedscope JSON, open it at https://www.speedscope.app): {path}")
    return 0


def exercise_check(name: str) -> Path:
    """exercises/<NN>-*/check.py for a number (2, 02) or a folder name."""
    folders = sorted(p for p in (ROOT / "exercises").glob("[0-9][0-9]-*") if p.is_dir())
    wanted = name.zfill(2) if name.isdigit() else name
    matches = [p for p in folders if p.name == wanted or p.name.split("-", 1)[0] == wanted]
    if not matches:
        raise LabError(f"no exercise {name!r}; there are: {', '.join(p.name for p in folders)}")
    return matches[0] / "check.py"


def cmd_check(args: argparse.Namespace) -> int:
    """An exercise's check against this lab's own ports (natively they may differ from .env)."""
    cfg = load()
    urls = ["--base-url", cfg.url("GATEWAY_PORT"), "--prometheus-url", cfg.url("PROMETHEUS_PORT"),
            "--jaeger-url", cfg.url("JAEGER_UI_PORT"),
            "--receiver-url", cfg.url("ALERT_RECEIVER_PORT"),
            "--mode", run_mode(home=cfg.home)]
    check_args = [a for a in args.check_args if a != "--"]
    argv = [sys.executable, str(exercise_check(args.exercise)), *urls, *check_args]
    return subprocess.run(argv, env={**os.environ, "LAB_HOME": str(cfg.home)}).returncode


def cmd_progress(args: argparse.Namespace) -> int:
    return progress.main(load().home)


def cmd_dashboard(args: argparse.Namespace) -> int:
    cfg = load()
    return dashboard.main(cfg, args.name, list_only=args.list, var=args.var)


def cmd_test(args: argparse.Namespace) -> int:
    pytest_args = [a for a in args.pytest_args if a != "--"]
    phases = args.phases or (("native",) if pytest_args else ("native", "compose"))
    return suite.run_tests(dict(os.environ), pytest_args, args.keep, args.lint, phases)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="./lab", description="Run the record-store lab natively.")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help: str, lifecycle: bool = False) -> argparse.ArgumentParser:
        """A subcommand that `func(args)` runs; a lifecycle one has a compose form (compose.py)."""
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=func, lifecycle=lifecycle)
        return p

    command("up", cmd_up, "install what is missing, start every component, wait until healthy",
            lifecycle=True)
    p = command("down", cmd_down, "stop every component (data is kept)", lifecycle=True)
    p.add_argument("--volumes", action="store_true", help="also delete data and logs (.lab/)")
    p = command("status", cmd_status, "health of every component", lifecycle=True)
    p.add_argument("--json", action="store_true")
    p = command("logs", cmd_logs, "a component's log", lifecycle=True)
    p.add_argument("service", choices=sorted([*BY_NAME, "migrate", "supervisor", "traffic"]))
    p.add_argument("-f", "--follow", action="store_true")
    for verb, func in (("stop", cmd_stop), ("start", cmd_start), ("restart", cmd_restart)):
        p = command(verb, func, f"{verb} one component", lifecycle=True)
        p.add_argument("service", choices=sorted(BY_NAME))
    p = command("chaos", cmd_chaos, "switch runtime faults on or off (no restart)")
    p.add_argument("action", choices=["show", "set", "reset"])
    p.add_argument("assignments", nargs="*", metavar="NAME=VALUE")
    p = command("alerts", cmd_alerts, "what is firing, and what was delivered to the receiver")
    p.add_argument("--json", action="store_true")
    p = command("traffic", cmd_traffic, "background shoppers, so dashboards have live data")
    p.add_argument("action", choices=["start", "stop", "status"])
    p = command("profile", cmd_profile, "a CPU profile of the running API or worker (py-spy)")
    p.add_argument("target", choices=profile.TARGETS)
    p.add_argument("--seconds", type=int, default=10, metavar="N",
                   help="how long to sample (default 10)")
    p = command("check", cmd_check, "an exercise's check: has the lab reached its state?")
    p.add_argument("exercise", help="its number (02) or folder name (02-database-failure)")
    p.add_argument("check_args", nargs=argparse.REMAINDER,
                   help="passed on to the check, e.g. --since 10m --wait 60")
    command("progress", cmd_progress, "each exercise: not started, in progress or passed, with "
            "the hints and reveals its checks used")
    p = command("dashboard", cmd_dashboard,
                "a Grafana dashboard in the terminal, by its own queries")
    p.add_argument("name", nargs="?", default="Purchase Journey", help="title or uid")
    p.add_argument("--list", action="store_true", help="list the provisioned dashboards")
    p.add_argument("--var", action="append", metavar="NAME=VALUE",
                   help="set a dashboard variable, e.g. --var trace_id=<id>")
    p = command("bench", bench_cli.run, "benchmark the native stack: latency, throughput, and "
                "what telemetry costs (on a stack of its own)")
    bench_cli.configure_parser(p)
    k8s.configure_parser(sub).set_defaults(func=k8s.run, lifecycle=False)
    gameday.configure_parser(sub).set_defaults(func=gameday.run, lifecycle=False)
    p = command("test", cmd_test, "install what is missing and run the whole test suite")
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
        if args.command == "up":
            check_exposure(load())
        if args.lifecycle and run_mode(home=load().home) == "compose":
            return compose.run(args)
        return args.func(args)
    except (LabError, SettingsError) as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
