"""`./lab doctor` and the telemetry readiness that `./lab status` and `./lab up` print, in
either run mode: both ask the lab's backends through labkit (doctor.py, readiness.py)."""

import argparse
import time

from labctl.config import LabConfig, load
from labkit import doctor, readiness
from labkit.probes import Lab
from labkit.settings import run_mode


def print_readiness(cfg: LabConfig) -> readiness.Readiness:
    found = readiness.check(cfg.url("PROMETHEUS_PORT"), cfg.url("JAEGER_UI_PORT"))
    print("\n".join(found.lines()))
    if not found.ready:
        print("  (`./lab status` again says how far; nothing needs doing but a purchase)")
    return found


def cmd_doctor(args: argparse.Namespace) -> int:
    cfg = load()
    urls = {"base_url": cfg.url("GATEWAY_PORT"), "prometheus_url": cfg.url("PROMETHEUS_PORT"),
            "jaeger_url": cfg.url("JAEGER_UI_PORT"),
            "receiver_url": cfg.url("ALERT_RECEIVER_PORT")}
    lab = Lab(**urls, since=time.time(), mode=run_mode(home=cfg.home))
    hops = doctor.Doctor(**urls, log_lines=lab.log_lines).run()
    print(doctor.as_json(hops) if args.json else "\n".join(doctor.report(hops)))
    return 0 if all(h.status == doctor.OK for h in hops) else 1


def configure_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="the hops as JSON")
