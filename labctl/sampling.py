"""`./lab sampling [RATIO|off]`: head sampling through the standard OTEL_TRACES_SAMPLER and
OTEL_TRACES_SAMPLER_ARG, switched while the lab runs.

A ratio below 1 is `parentbased_traceidratio`: the API's request span, where a trace starts
(recordstore/telemetry.py), keeps that share of the traces; every span beneath it, the
worker's too (the order's message carries the decision in its traceparent), follows it. `off`
(or 1) is `parentbased_always_on`, the lab's default. The choice is kept in the lab's home
(labkit/sampling.py), so every later start of the API and the worker (`./lab up`, `./lab
restart`, the supervisor's restarts; compose's `./lab up`) runs it too.

An SDK reads its sampler once, at its start: the API and the worker are restarted. Natively
the API is down for its restart (a few seconds; checkouts then answer 502 at the gateway) and
the worker's running tasks finish first; an order accepted meanwhile waits in the queue, none
is lost. In compose both containers are recreated with the variables.
"""

import argparse
import subprocess
import time
from datetime import datetime

from labctl import compose, stack, supervisor
from labctl.components import BY_NAME
from labctl.config import ROOT, LabConfig, load
from labctl.proc import LabError, wait_until
from labctl.stack import say
from labkit import http, sampling
from labkit.prometheus import Prometheus, PrometheusError
from labkit.settings import run_mode

SERVICES = ("api", "worker")
SCRAPED_WITHIN_S = 20  # Prometheus scrapes every 5 s


def scraped_since(cfg: LabConfig, since: float) -> bool:
    """Whether Prometheus has scraped the API and the worker since `since`."""
    try:
        targets = Prometheus(cfg.url("PROMETHEUS_PORT"), timeout_s=5).targets()
    except (PrometheusError, http.Unreachable):
        return False
    last = {t["labels"].get("job"): datetime.fromisoformat(t["lastScrape"]).timestamp()
            for t in targets if t.get("health") == "up"}
    return all(last.get(name, 0) > since for name in SERVICES)


def wait_scraped(cfg: LabConfig, since: float, quiet: bool) -> None:
    """Until Prometheus has scraped the restarted API and worker: their counters, back at 0,
    then show the restart as a reset, and a count of the checkouts since (increase()) holds
    every one of them, however many a shopper makes before the next scrape."""
    if not wait_until(lambda: scraped_since(cfg, since), SCRAPED_WITHIN_S, 0.5) and not quiet:
        say(f"Prometheus has not scraped the API and the worker within {SCRAPED_WITHIN_S}s "
            "of their restart")


def compose_argv(compose_cmd: list[str]) -> list[str]:
    """The containers of the API and the worker recreated, nothing else touched (v2 waits until
    they are healthy, as `./lab up` does)."""
    v2 = compose_cmd[-1] == "compose"
    return [*compose_cmd, "--project-directory", str(ROOT), "-f", str(compose.COMPOSE_FILE),
            "up", "-d", "--no-deps", "--force-recreate", *(["--wait"] if v2 else []),
            *SERVICES]


def restart_native(cfg: LabConfig, ratio: float, quiet: bool = False) -> None:
    """The worker and the API stopped, the ratio recorded (the moment from which every new
    checkout meets it), then both started with it, as `./lab stop` and `./lab start` do."""
    cfg = stack.with_marker(cfg)
    if not any(BY_NAME[name].running(cfg) for name in SERVICES):
        sampling.record(cfg.home, ratio)
        if not quiet:
            say("the API and the worker are not running: they start with it (./lab up)")
        return
    for name in SERVICES[::-1]:
        BY_NAME[name].stop(cfg)
    sampling.record(cfg.home, ratio)
    for name in SERVICES:
        BY_NAME[name].start(cfg)
        if not quiet:
            say(f"{name} restarted, healthy")
    supervisor.ensure(cfg)
    wait_scraped(cfg, time.time(), quiet)


def restart_compose(cfg: LabConfig, ratio: float, quiet: bool = False) -> None:
    sampling.record(cfg.home, ratio)
    argv = compose_argv(compose.compose_command())
    r = subprocess.run(argv, cwd=ROOT, env=compose.environment(cfg), capture_output=quiet,
                       text=True)
    if r.returncode != 0:
        raise LabError("sampling: docker compose could not recreate the API and the worker "
                       f"({(r.stderr or '').strip()[-300:] or 'its output above'}); the ratio "
                       "is recorded, ./lab up applies it")
    wait_scraped(cfg, time.time(), quiet)


def switch(cfg: LabConfig, ratio: float, quiet: bool = False) -> None:
    """Set the ratio and restart the API and the worker with it, in the lab's run mode;
    `quiet`, saying nothing of it (a game day's hidden cause)."""
    if run_mode(home=cfg.home) == "compose":
        restart_compose(cfg, ratio, quiet)
    else:
        restart_native(cfg, ratio, quiet)


def run(args: argparse.Namespace) -> int:
    cfg = load()
    if args.ratio is None:
        print(sampling.describe(sampling.current(cfg.home), cfg.env["OTEL_TRACES_SAMPLER"]))
        return 0
    try:
        ratio = sampling.parse_ratio(args.ratio)
    except ValueError as exc:
        raise LabError(f"sampling: {exc}") from None
    say(f"restarting the API and the worker with {sampling.variables(ratio)}")
    switch(cfg, ratio)
    print(sampling.describe(ratio))
    return 0


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("ratio", nargs="?", help="the share of traces kept: 0.1 (one in ten), 10%%, "
                   "or off (every trace, the default); none: show the current one")
