"""The `./lab` command line: one parser, one handler per subcommand (`set_defaults(func=...)`).

These are the lab's own commands; the `lab` script adds those of the packages built on labctl
(bench, gameday, the test harness), each from its `configure_parser` and `run`, so that labctl
imports none of them. The stack's lifecycle is in stack.py, compose mode in compose.py; a
lifecycle command runs in compose when the run mode says so (labkit/settings.py, `run_mode`).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from labctl import (
    alerts,
    bootstrap,
    chaos,
    compose,
    dashboard,
    learner_rules,
    profile,
    sampling,
    signals,
    stack,
    supervisor,
    traffic,
)
from labctl.components import BY_NAME
from labctl.config import ROOT, check_exposure, load
from labctl.proc import LabError
from labctl.stack import say
from labkit import progress
from labkit import sampling as lab_sampling
from labkit.settings import SettingsError, run_mode


def cmd_up(args: argparse.Namespace) -> int:
    cfg = load()
    bootstrap.ensure_all()
    stack.up(cfg)
    signals.print_readiness(cfg)
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
        width = max(len(r["component"]) for r in rows) + 1
        for r in rows:
            mark = "healthy" if r["healthy"] else "UNHEALTHY" if r["running"] else "stopped"
            count, last = r["restarts"]["count"], r["restarts"]["last"]
            restarted = f"; restarted {count} time{'s' * (count > 1)}, last {last}" if count else ""
            print(f"{r['component']:<{width}} {mark:<10} {r['detail']}{restarted}")
        pid = supervisor.pid(cfg)
        print(f"supervisor: running (pid {pid}), restarts what crashes; its log: ./lab logs "
              "supervisor" if pid else "supervisor: NOT running: nothing restarts a component "
              "that crashes (./lab up starts it)")
        print(lab_sampling.describe(lab_sampling.current(cfg.home),
                                    cfg.env["OTEL_TRACES_SAMPLER"]))
        signals.print_readiness(cfg)
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


def cmd_service(args: argparse.Namespace) -> int:
    """`./lab stop|start|restart SERVICE`."""
    cfg = load()
    if args.command in ("stop", "restart"):
        stack.stop(cfg, args.service)
    if args.command in ("start", "restart"):
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


def build_parser(commands: tuple = ()) -> argparse.ArgumentParser:
    """labctl's commands, then each of `commands` (a module with `configure_parser(sub)` and
    `run(args)`), in that order."""
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
    for verb in ("stop", "start", "restart"):
        p = command(verb, cmd_service, f"{verb} one component", lifecycle=True)
        p.add_argument("service", choices=sorted(BY_NAME))
    p = command("chaos", cmd_chaos, "switch runtime faults on or off (no restart)")
    p.add_argument("action", choices=["show", "set", "reset"])
    p.add_argument("assignments", nargs="*", metavar="NAME=VALUE")
    p = command("alerts", cmd_alerts, "what is firing, and what was delivered to the receiver")
    p.add_argument("--json", action="store_true")
    p = command("rules", learner_rules.cmd_rules, "load your own alert rules into the running "
                "Prometheus (checked by promtool first), unload them, or show them")
    learner_rules.configure(p)
    p = command("traffic", cmd_traffic, "background shoppers, so dashboards have live data")
    p.add_argument("action", choices=["start", "stop", "status"])
    p = command("sampling", sampling.run, "keep a share of the traces (head sampling, "
                "OTEL_TRACES_SAMPLER); restarts the API and the worker")
    sampling.configure(p)
    p = command("profile", cmd_profile, "a CPU profile of the running API or worker (py-spy)")
    p.add_argument("target", choices=profile.TARGETS)
    p.add_argument("--seconds", type=int, default=10, metavar="N",
                   help="how long to sample (default 10)")
    p = command("check", cmd_check, "an exercise's check: has the lab reached its state?")
    p.add_argument("exercise", help="its number (02) or folder name (02-database-failure)")
    p.add_argument("check_args", nargs=argparse.REMAINDER,
                   help="passed on to the check, e.g. --since 10m --wait 60")
    p = command("doctor", signals.cmd_doctor, "follow each signal (traces, metrics, logs, "
                "alerts) end to end and name the first place it breaks")
    signals.configure_doctor(p)
    command("progress", cmd_progress, "each exercise: not started, in progress or passed, with "
            "the hints and reveals its checks used")
    p = command("dashboard", cmd_dashboard,
                "a Grafana dashboard in the terminal, by its own queries")
    p.add_argument("name", nargs="?", default="Purchase Journey", help="title or uid")
    p.add_argument("--list", action="store_true", help="list the provisioned dashboards")
    p.add_argument("--var", action="append", metavar="NAME=VALUE",
                   help="set a dashboard variable, e.g. --var trace_id=<id>")
    for module in commands:
        module.configure_parser(sub).set_defaults(func=module.run, lifecycle=False)
    return parser


def lifecycle_options(args: argparse.Namespace) -> dict:
    """The options a parsed lifecycle command carries, as compose.run takes them."""
    return {name: value for name, value in vars(args).items() if name in compose.OPTIONS}


def main(argv: list[str] | None = None, commands: tuple = ()) -> int:
    args = build_parser(commands).parse_args(argv)
    try:
        if args.command == "up":
            check_exposure(load())
        if args.lifecycle and run_mode(home=load().home) == "compose":
            code = compose.run(args.command, **lifecycle_options(args))
            if code == 0 and args.command in ("up", "status") and not getattr(args, "json", 0):
                signals.print_readiness(load())
            return code
        return args.func(args)
    except (LabError, SettingsError) as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
