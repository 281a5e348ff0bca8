"""`./lab gameday start|hint|answer|status|stop|postmortem`: one hidden fault, found from the
signals.

`start` picks a cause (causes.py: a stopped component or a chaos fault) from
a seed and switches it on, with background traffic if asked (`--rounds N`: N games one after
another, each a new cause); `hint` gives the next of three graded hints, read from the
signals, each costing points; `answer CAUSE` grades the diagnosis, ends the fault, waits until
the lab is healthy again and debriefs (debrief.py); `stop` gives up (the cause is told, nothing
graded); `postmortem` writes a played game's postmortem skeleton (postmortem.py).
Natively and in compose alike: a component is stopped as `./lab stop` does in that mode,
and the faults go through the admin endpoint. The record is gameday.json in the lab's home.
"""

import argparse
import random
import time
from datetime import datetime

from gameday import debrief, games, hints
from gameday.causes import BY_CAUSE, CAUSES, Cause
from labctl import chaos, compose, sampling, stack, traffic
from labctl.config import LabConfig, load
from labctl.proc import LabError
from labctl.stack import say
from labkit import http, progress
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


def start(cfg: LabConfig, seed: int | None, with_traffic: bool, rounds: int = 1) -> None:
    record = games.load(cfg.home)
    if record["current"]:
        raise LabError("gameday: a game day is already running (since "
                       f"{_clock(record['current']['started_at'])}): answer it, "
                       "./lab gameday answer CAUSE, or give up, ./lab gameday stop")
    if rounds < 1:
        raise LabError("gameday: --rounds takes 1 or more")
    lab = lab_for(cfg)
    try:
        lab.api_healthy()
        lab.faults_off()
    except (NotYet, http.Unreachable) as exc:
        raise LabError(f"gameday: start from a healthy lab with no fault on ({exc}); "
                       "./lab up, ./lab chaos reset") from None
    seed = random.SystemRandom().randrange(1_000_000) if seed is None else seed
    record["series"] = {"rounds": rounds, "round": 1, "points": 0, "causes": [],
                        "traffic": with_traffic, "seed": seed} if rounds > 1 else None
    begin(cfg, record, seed, with_traffic)


def begin(cfg: LabConfig, record: dict, seed: int, with_traffic: bool) -> None:
    """Switch on the fault a seed picks (a round of the series, if one runs)."""
    series = record.get("series")
    if series:
        seed = games.next_seed(seed, series["causes"])
    cause = games.pick(seed)
    started_traffic = with_traffic and not traffic.status(cfg)
    game = {"cause": cause.name, "seed": seed, "started_at": time.time(), "hints": 0,
            "hint_at": [], "traffic": started_traffic}
    if series:
        game.update(round=series["round"], rounds=series["rounds"])
    record["current"] = game  # before the fault: `stop` can always undo it
    games.save(cfg.home, record)
    switch(cfg, cause, on=True)
    if started_traffic:
        traffic.start(cfg)
    say(f"game day started at {_clock(game['started_at'])} (seed {seed})"
        + (f", round {series['round']} of {series['rounds']}" if series else "")
        + (", with background traffic" if started_traffic else ""))
    print(f"Something in the lab is wrong. {RULES}\n"
          "  ./lab gameday hint          the next hint (three, each more pointed)\n"
          "  ./lab gameday answer CAUSE  your diagnosis; it ends the fault\n"
          f"Points: {games.SCORING}.\n"
          f"The causes: {', '.join(c.name for c in CAUSES)}")


def hint(cfg: LabConfig) -> None:
    record, game = current(cfg)
    level = min(game["hints"] + 1, len(hints.LEVELS))
    lines = hints.hint(lab_for(cfg, since=game["started_at"]), level)
    if level > game["hints"]:
        game.setdefault("hint_at", []).append(time.time())
    game["hints"] = max(game["hints"], level)
    games.save(cfg.home, record)
    print(f"Hint {level} of {len(hints.LEVELS)}: {hints.LEVELS[level - 1]} "
          f"(each costs {games.HINT_COST} points)")
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
    healthy = wait_healthy(cfg)
    if verdict is not None:
        debrief.recovered(cfg, verdict, time.time())
        games.save(cfg.home, record)
    return healthy


def answer(cfg: LabConfig, said: str) -> int:
    record, game = current(cfg)
    try:
        verdict = games.grade(game, said, time.time())
    except ValueError as exc:  # nothing changes: the game goes on
        raise LabError(f"gameday: {exc}") from None
    healthy = end(cfg, record, game, verdict)  # first: the fault ends whatever happens next
    print("\n".join(debrief.verdict_lines(verdict)))
    say(f"the fault is over: {healthy}")
    if marked := debrief.annotate(cfg, verdict):
        say(marked)
    debrief.score(cfg, verdict)
    if series := record.get("series"):
        series["points"] += verdict["points"]
        series["causes"].append(verdict["cause"])
        if series["round"] < series["rounds"]:
            series["round"] += 1
            print(f"Series: {series['points']} points after {len(series['causes'])} of "
                  f"{series['rounds']} rounds; the next round starts now.")
            begin(cfg, record, verdict["seed"] + 1, series["traffic"])
        else:
            record["series"] = None
            games.save(cfg.home, record)
            print(debrief.series_over(cfg, series))
    return 0 if verdict["right"] else 1


def give_up(cfg: LabConfig) -> None:
    record, game = current(cfg)
    cause = BY_CAUSE[game["cause"]]
    series = record.get("series")
    record["series"] = None  # giving up ends the series too
    healthy = end(cfg, record, game, None)
    print(f"It was: {cause.title} ({cause.name}). No points.")
    say(f"the fault is over: {healthy}")
    if series:
        print(debrief.series_over(cfg, series))


def status(cfg: LabConfig) -> int:
    record = games.load(cfg.home)
    game = record["current"]
    if game:
        print(f"A game day is running since {_clock(game['started_at'])} "
              f"({_duration(time.time() - game['started_at'])}); hints used: {game['hints']} "
              f"of {len(hints.LEVELS)}" + ("; background traffic on" if game["traffic"] else ""))
    else:
        print("No game day is running.")
    if series := record.get("series"):
        print(f"Round {series['round']} of {series['rounds']}: {series['points']} points so "
              "far")
    for played in record["played"][-5:]:
        print(f"  {_clock(played['started_at'])}  {played['cause']:<20} answered "
              f"{played['answer']}: {'right' if played['right'] else 'wrong'} in "
              f"{_duration(played['seconds'])} with {played['hints']} hint(s): "
              f"{played.get('points', 0)} points")
    print("\n".join(progress.game_day_lines(cfg.home)))
    return 0 if game else 3


def causes_list() -> list[str]:
    """Every cause a game may pick, one per line: its name (what an answer says) and what it
    breaks. Which one a game picked is never shown before the answer."""
    width = max(len(c.name) for c in CAUSES) + 2
    return [f"{c.name:<{width}}{c.title}" for c in CAUSES]


def run(args: argparse.Namespace) -> int:
    cfg = load()
    if args.action == "start":
        start(cfg, args.seed, args.traffic, args.rounds)
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
    elif args.action == "postmortem":
        debrief.write_postmortem(cfg, args.game)
    else:
        return status(cfg)
    return 0


def configure_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("gameday", help="a game day: one hidden fault to diagnose from the signals")
    p.add_argument("action", choices=["start", "hint", "answer", "status", "stop", "causes",
                                      "postmortem"])
    p.add_argument("cause", nargs="?", help=f"with answer: one of {', '.join(BY_CAUSE)}")
    p.add_argument("--seed", type=int, help="with start: the seed that picks the cause")
    p.add_argument("--traffic", action="store_true",
                   help="with start: background shoppers while the game runs")
    p.add_argument("--rounds", type=int, default=1, metavar="N",
                   help="with start: N games one after another, each a new cause; the next "
                   "begins once the last is answered and the lab is healthy")
    p.add_argument("--game", metavar="ID",
                   help="with postmortem: the game (its id, e.g. 20261207-083500; default: "
                   "the last one played)")
    return p


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


_duration = debrief.duration
