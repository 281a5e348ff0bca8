"""`./lab gameday start|hint|answer|status|stop`: one hidden fault, found from the signals.

`start` picks a cause (causes.py: a stopped component or a chaos fault) from
a seed and switches it on, with background traffic if asked; `hint` gives the next of three
graded hints, read from the signals; `answer CAUSE` grades the diagnosis, ends the fault and
waits until the lab is healthy again; `stop` gives up (the cause is told, nothing graded).
Natively and in compose alike: a component is stopped as `./lab stop` does in that mode,
and the faults go through the admin endpoint. The record is gameday.json in the lab's home.
"""

import argparse
import random
import time
from datetime import datetime

from gameday import games, hints
from gameday.causes import BY_CAUSE, CAUSES, Cause
from labctl import chaos, compose, sampling, stack, traffic
from labctl.config import LabConfig, load
from labctl.proc import LabError
from labctl.stack import say
from labkit import http
from labkit.probes import Lab, NotYet
from labkit.settings import run_mode

HEALTHY_WITHIN_S = 120
RULES = ("Find out what is wrong from the signals: the storefront, Prometheus, the alerts, "
         "the traces, the logs, the dashboards. `./lab status` and `./lab chaos show` would "
         "tell you at once: that is not the game.")


def lab_for(cfg: LabConfig, since: float | None = None) -> Lab:
    """The check library's view of this lab (probes.py), looking from `since`."""
    return Lab(base_url=cfg.url("GATEWAY_PORT"), prometheus_url=cfg.url("PROMETHEUS_PORT"),
               jaeger_url=cfg.url("JAEGER_UI_PORT"), receiver_url=cfg.url("ALERT_RECEIVER_PORT"),
               since=time.time() - 600 if since is None else since, mode=run_mode(home=cfg.home))


def switch(cfg: LabConfig, cause: Cause, on: bool) -> None:
    """A game's fault on or off: its component stopped or started as `./lab stop|start` does in
    the lab's run mode, its chaos faults set or reset, or its trace sampling set (`./lab
    sampling`) and every trace kept again."""
    verb = "stop" if on else "start"
    if cause.sampling is not None:  # the API and the worker restarted; off: every trace kept
        sampling.switch(cfg, cause.sampling if on else 1.0, quiet=True)
    elif not cause.stop:
        chaos.wait_in_effect(chaos.call(cfg, "PUT", dict(cause.faults)) if on
                             else chaos.call(cfg, "DELETE"))
    elif run_mode(home=cfg.home) != "compose":
        (stack.stop if on else stack.start)(cfg, cause.stop)
    elif compose.run(verb, service=cause.stop) != 0:
        raise LabError(f"gameday: docker compose {verb} {cause.stop} failed")


def wait_healthy(cfg: LabConfig) -> str:
    """Poll until /health answers 200 and no fault is on; LabError at the deadline."""
    lab = lab_for(cfg)
    deadline = time.monotonic() + HEALTHY_WITHIN_S
    while True:
        try:
            return f"{lab.api_healthy()}, {lab.faults_off()}"
        except (NotYet, http.Unreachable) as exc:
            if time.monotonic() >= deadline:
                raise LabError(f"gameday: the lab is not healthy {HEALTHY_WITHIN_S}s after "
                               f"the fault ended: {exc}") from None
        time.sleep(0.5)


def current(cfg: LabConfig) -> tuple[dict, dict]:
    record = games.load(cfg.home)
    if not record["current"]:
        raise LabError("gameday: no game day is running; start one: ./lab gameday start")
    return record, record["current"]


def start(cfg: LabConfig, seed: int | None, with_traffic: bool) -> None:
    record = games.load(cfg.home)
    if record["current"]:
        raise LabError("gameday: a game day is already running (since "
                       f"{_clock(record['current']['started_at'])}): answer it, "
                       "./lab gameday answer CAUSE, or give up, ./lab gameday stop")
    lab = lab_for(cfg)
    try:
        lab.api_healthy()
        lab.faults_off()
    except (NotYet, http.Unreachable) as exc:
        raise LabError(f"gameday: start from a healthy lab with no fault on ({exc}); "
                       "./lab up, ./lab chaos reset") from None
    seed = random.SystemRandom().randrange(1_000_000) if seed is None else seed
    cause = games.pick(seed)
    started_traffic = with_traffic and not traffic.status(cfg)
    game = {"cause": cause.name, "seed": seed, "started_at": time.time(), "hints": 0,
            "traffic": started_traffic}
    record["current"] = game  # before the fault: `stop` can always undo it
    games.save(cfg.home, record)
    switch(cfg, cause, on=True)
    if started_traffic:
        traffic.start(cfg)
    say(f"game day started at {_clock(game['started_at'])} (seed {seed})"
        + (", with background traffic" if started_traffic else ""))
    print(f"Something in the lab is wrong. {RULES}\n"
          "  ./lab gameday hint          the next hint (three, each more pointed)\n"
          "  ./lab gameday answer CAUSE  your diagnosis; it ends the fault\n"
          f"The causes: {', '.join(c.name for c in CAUSES)}")


def hint(cfg: LabConfig) -> None:
    record, game = current(cfg)
    level = min(game["hints"] + 1, len(hints.LEVELS))
    lines = hints.hint(lab_for(cfg, since=game["started_at"]), level)
    game["hints"] = max(game["hints"], level)
    games.save(cfg.home, record)
    print(f"Hint {level} of {len(hints.LEVELS)}: {hints.LEVELS[level - 1]}")
    print("\n".join(f"  {line}" for line in lines))


def end(cfg: LabConfig, record: dict, game: dict, verdict: dict | None) -> str:
    """End the running game: its fault off, its traffic stopped, the lab healthy again."""
    record["current"] = None
    if verdict is not None:
        record["played"].append(verdict)
    switch(cfg, BY_CAUSE[game["cause"]], on=False)
    if game.get("traffic"):
        traffic.stop(cfg)
    games.save(cfg.home, record)
    return wait_healthy(cfg)


def answer(cfg: LabConfig, said: str) -> int:
    record, game = current(cfg)
    try:
        verdict = games.grade(game, said, time.time())
    except ValueError as exc:  # nothing changes: the game goes on
        raise LabError(f"gameday: {exc}") from None
    cause = BY_CAUSE[game["cause"]]
    healthy = end(cfg, record, game, verdict)  # first: the fault ends whatever happens next
    if verdict["right"]:
        print(f"Right: {cause.title} ({cause.name}).")
    else:
        print(f"Wrong: you said {verdict['answer']}; it was: {cause.title} ({cause.name}).")
    hints = game["hints"]
    print(f"Time to diagnosis: {_duration(verdict['seconds'])}, with "
          f"{hints} hint{'' if hints == 1 else 's'}.")
    print("The signals that show it soonest:")
    print("\n".join(f"  {n}. {line}" for n, line in enumerate(cause.fastest, 1)))
    say(f"the fault is over: {healthy}")
    return 0 if verdict["right"] else 1


def give_up(cfg: LabConfig) -> None:
    record, game = current(cfg)
    cause = BY_CAUSE[game["cause"]]
    healthy = end(cfg, record, game, None)
    print(f"It was: {cause.title} ({cause.name}).")
    say(f"the fault is over: {healthy}")


def status(cfg: LabConfig) -> int:
    record = games.load(cfg.home)
    game = record["current"]
    if game:
        print(f"A game day is running since {_clock(game['started_at'])} "
              f"({_duration(time.time() - game['started_at'])}); hints used: {game['hints']} "
              f"of {len(hints.LEVELS)}" + ("; background traffic on" if game["traffic"] else ""))
    else:
        print("No game day is running.")
    for played in record["played"][-5:]:
        print(f"  {_clock(played['started_at'])}  {played['cause']:<17} answered "
              f"{played['answer']}: {'right' if played['right'] else 'wrong'} in "
              f"{_duration(played['seconds'])} with {played['hints']} hint(s)")
    return 0 if game else 3


def causes_list() -> list[str]:
    """Every cause a game may pick, one per line: its name (what an answer says) and what it
    breaks. Which one a game picked is never shown before the answer."""
    width = max(len(c.name) for c in CAUSES) + 2
    return [f"{c.name:<{width}}{c.title}" for c in CAUSES]


def run(args: argparse.Namespace) -> int:
    cfg = load()
    if args.action == "start":
        start(cfg, args.seed, args.traffic)
    elif args.action == "hint":
        hint(cfg)
    elif args.action == "answer":
        if not args.cause:
            raise LabError(f"gameday: name the cause: {', '.join(c.name for c in CAUSES)}")
        return answer(cfg, args.cause)
    elif args.action == "stop":
        give_up(cfg)
    elif args.action == "causes":
        print("\n".join(causes_list()))
    else:
        return status(cfg)
    return 0


def configure_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("gameday", help="a game day: one hidden fault to diagnose from the signals")
    p.add_argument("action", choices=["start", "hint", "answer", "status", "stop", "causes"])
    p.add_argument("cause", nargs="?", help=f"with answer: one of {', '.join(BY_CAUSE)}")
    p.add_argument("--seed", type=int, help="with start: the seed that picks the cause")
    p.add_argument("--traffic", action="store_true",
                   help="with start: background shoppers while the game runs")
    return p


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
