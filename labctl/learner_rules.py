"""`./lab rules load FILE | unload [FILE] | show`: a learner's own alert rules (exercise 10) in the
running Prometheus, natively and in compose.

`load` has promtool check the file first (nothing is loaded when it refuses: its message names
the line), copies it into the folder prometheus.yml's second rule_files glob reads
(labkit/own_rules.py says where, in each mode), makes Prometheus reload (SIGHUP: neither mode
runs it with --web.enable-lifecycle), and waits until /api/v1/rules lists the file's groups.
Every load is recorded in the lab's home, with the alerts Prometheus loaded, for the check.
"""

import argparse
import hashlib
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from labctl import config_files
from labctl.components import BY_NAME
from labctl.config import LabConfig, load
from labctl.proc import LabError
from labctl.stack import say
from labkit import http
from labkit.own_rules import (
    COMPOSE_CONTAINER,
    COMPOSE_DIR,
    LEARNER_DIR,
    PromtoolMissing,
    alerting_rules,
    default_test,
    is_learners,
    promtool,
    read_record,
    write_record,
)
from labkit.prometheus import Prometheus, PrometheusError
from labkit.settings import run_mode

RELOAD_TIMEOUT_S = 20.0


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["load", "unload", "show"])
    p.add_argument("file", nargs="?", help="load: your rule file; unload: one loaded file "
                   "(default: every one)")
    p.add_argument("--test", metavar="FILE", help="load: its promtool test, which the check "
                   "runs (default: the .test.yml beside it, mine.yml -> mine.test.yml)")


def cmd_rules(args: argparse.Namespace) -> int:
    cfg = load()
    mode = run_mode(home=cfg.home)
    if args.action == "load":
        if not args.file:
            raise LabError("./lab rules load FILE: which rule file?")
        load_file(cfg, mode, Path(args.file), Path(args.test) if args.test else None)
    elif args.action == "unload":
        unload(cfg, mode, args.file)
    else:
        show(cfg)
    return 0


def stored_name(source: Path) -> str:
    """The name a learner's file gets in the rules folder: its own, made safe, .yml."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", source.stem) + ".yml"


def docker_argv(command: str, *args: str) -> list[str]:
    """What compose mode runs on the prometheus container (a static test holds these)."""
    if command == "copy":  # a file into the learner-rules volume
        return ["docker", "cp", args[0], f"{COMPOSE_CONTAINER}:{COMPOSE_DIR}/{args[1]}"]
    if command == "remove":  # the volume is root's, Prometheus runs as nobody
        return ["docker", "exec", "-u", "0", COMPOSE_CONTAINER, "rm", "-f",
                *[f"{COMPOSE_DIR}/{name}" for name in args]]
    if command == "reload":
        return ["docker", "kill", "--signal", "HUP", COMPOSE_CONTAINER]
    raise ValueError(command)


def _docker(argv: list[str]) -> None:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise LabError(f"{' '.join(argv[:3])} failed: {(r.stderr or r.stdout).strip()}")


def native_dir(cfg: LabConfig) -> Path:
    return config_files.prometheus_dir(cfg) / LEARNER_DIR


def validate(cfg: LabConfig, mode: str, source: Path) -> None:
    """promtool check rules, or a LabError with what it said (the line and what is wrong)."""
    try:
        r = promtool(mode, cfg.env.get("PROMETHEUS_IMAGE", ""), source.parent, "check", "rules",
                     source.name)
    except PromtoolMissing as exc:
        raise LabError(str(exc)) from None
    if r.returncode != 0:
        noise = ("FAILED:", f"Checking {source.name}")
        said = "\n".join(dict.fromkeys(  # promtool says a YAML error twice
            line for line in (r.stderr + r.stdout).splitlines()
            if line.strip() and line.strip() not in noise))
        raise LabError(f"promtool check rules refused {source}, so nothing was loaded:\n{said}")


def load_file(cfg: LabConfig, mode: str, source: Path, test: Path | None) -> None:
    source = source.resolve()
    if not source.is_file():
        raise LabError(f"no such file: {source}")
    if source.suffix not in (".yml", ".yaml"):
        raise LabError(f"{source}: a rule file is YAML, named .yml")
    data = source.read_bytes()
    validate(cfg, mode, source)
    name = stored_name(source)
    install(cfg, mode, data, name)
    reload(cfg, mode)
    try:
        groups = wait_for_groups(cfg, lambda gs: [g for g in gs if _named(g, name)], "appear")
    except LabError:
        remove(cfg, mode, [name])
        reload(cfg, mode)
        raise
    alerts = [a for g in groups for a in alerting_rules(g)]
    test = (test or default_test(source)).resolve()
    loads = read_record(cfg.home)
    now = time.time()
    for entry in loads:  # loading a file again replaces what it held
        if entry["file"] == name and entry.get("unloaded_at") is None:
            entry["unloaded_at"] = now
    loads.append({"file": name, "source": str(source), "test": str(test) if test.is_file()
                  else None, "sha256": hashlib.sha256(data).hexdigest(), "loaded_at": now,
                  "unloaded_at": None, "alerts": alerts})
    write_record(cfg.home, loads)
    say(f"loaded {source} into Prometheus: " + ", ".join(
        f"group {g['name']} ({len(g['rules'])} rule{'s' * (len(g['rules']) != 1)})"
        for g in groups))
    for a in alerts:
        say(f"  alert {a['name']}: pending while `{a['query']}` holds, firing after "
            f"{a['for_s']:g} s; watch it at {cfg.url('PROMETHEUS_PORT', '/alerts')}")
    if not alerts:
        say("  it holds no alerting rule (alert: NAME): nothing of it will fire")
    say(f"  its promtool test, which ./lab check 10 runs: {test}" if test.is_file() else
        f"  no promtool test at {test}: write one (or name it with --test), the check runs it")


def install(cfg: LabConfig, mode: str, data: bytes, name: str) -> None:
    """The file, readable by Prometheus (which runs as another user), in the rules folder."""
    if mode == "native":
        folder = native_dir(cfg)
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        tmp = folder / f".{name}.new"  # not *.yml: no reload reads it half written
        tmp.write_bytes(data)
        tmp.chmod(0o644)
        tmp.replace(folder / name)
        return
    with tempfile.TemporaryDirectory() as d:
        copy = Path(d) / name
        copy.write_bytes(data)
        copy.chmod(0o644)
        _docker(docker_argv("copy", str(copy), name))


def remove(cfg: LabConfig, mode: str, names: list[str]) -> None:
    if mode == "native":
        for name in names:
            (native_dir(cfg) / name).unlink(missing_ok=True)
    elif names:
        _docker(docker_argv("remove", *names))


def reload(cfg: LabConfig, mode: str) -> None:
    if mode != "native":
        _docker(docker_argv("reload"))
        return
    pid = BY_NAME["prometheus"].pid(cfg)
    if pid is None:
        raise LabError("Prometheus is not running: ./lab up (or ./lab start prometheus)")
    os.kill(pid, signal.SIGHUP)


def _named(group: dict, name: str) -> bool:
    return is_learners(group) and Path(group["file"]).name == name


def _groups(cfg: LabConfig) -> list[dict]:
    try:
        return Prometheus(cfg.url("PROMETHEUS_PORT")).rule_groups()
    except (http.Unreachable, PrometheusError) as exc:
        raise LabError(f"cannot read Prometheus's rules: {exc}") from None


def wait_for_groups(cfg: LabConfig, pick, what: str) -> list[dict]:
    """`pick(groups)` once it is true (appear) or false (go), as Prometheus reloads."""
    deadline = time.monotonic() + RELOAD_TIMEOUT_S
    while True:
        picked = pick(_groups(cfg))
        if bool(picked) == (what == "appear"):
            return picked
        if time.monotonic() > deadline:
            raise LabError(f"Prometheus did not reload its rules within {RELOAD_TIMEOUT_S:g} s "
                           f"(the rules did not {what}); its log: ./lab logs prometheus")
        time.sleep(0.5)


def unload(cfg: LabConfig, mode: str, file: str | None) -> None:
    loaded = sorted({Path(g["file"]).name for g in _groups(cfg) if is_learners(g)})
    if mode == "native" and native_dir(cfg).is_dir():
        loaded = sorted({*loaded, *(p.name for p in native_dir(cfg).glob("*.yml"))})
    names = [stored_name(Path(file))] if file else loaded
    if file and names[0] not in loaded:
        raise LabError(f"{file} is not loaded; loaded: {', '.join(loaded) or 'none'}")
    if names:
        remove(cfg, mode, names)
        reload(cfg, mode)
        wait_for_groups(cfg, lambda gs: [g for g in gs if is_learners(g)
                                         and Path(g["file"]).name in names], "go")
    loads = read_record(cfg.home)
    for entry in loads:
        if entry["file"] in names and entry.get("unloaded_at") is None:
            entry["unloaded_at"] = time.time()
    write_record(cfg.home, loads)
    say(f"unloaded {', '.join(names)}" if names else "none of your rule files is loaded")


def show(cfg: LabConfig) -> None:
    groups = [g for g in _groups(cfg) if is_learners(g)]
    if not groups:
        say("none of your rule files is loaded (./lab rules load FILE)")
    for g in groups:
        say(f"{Path(g['file']).name}: group {g['name']}")
        for r in g["rules"]:
            state = r.get("state", "recording")
            say(f"  {r['name']:<28} {state:<9} health {r.get('health')}"
                + (f": {r['lastError']}" if r.get("lastError") else ""))
