"""What a game day's test purchase meets (hints.py and the causes' detection use it): a
purchase followed to its final state, the API's /health, PostgreSQL's exporter. Standard
library only."""

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from labkit import http
from labkit.probes import Lab
from labkit.rules import FINAL_STATUSES
from labkit.shop import Step


@dataclass
class Outcome:
    checkout: Step
    order: dict[str, Any]  # the order as last read ({} when the checkout was refused)
    waited_s: float

    @property
    def status(self) -> str:
        return str(self.order.get("status") or "")

    def step_s(self, start: str, end: str) -> float | None:
        stamps = self.order.get("timestamps") or {}
        if not (stamps.get(start) and stamps.get(end)):
            return None
        return (datetime.fromisoformat(stamps[end]) -
                datetime.fromisoformat(stamps[start])).total_seconds()


def buy(lab: Lab, wait_s: float = 8.0, until: tuple[str, ...] = FINAL_STATUSES) -> Outcome:
    """One purchase through the gateway, followed for up to `wait_s` until its status is one
    of `until`."""
    shop = lab.shop("gameday")
    checkout = shop.checkout(1)
    started = time.monotonic()
    order: dict[str, Any] = {}
    if checkout.ok:
        deadline = started + wait_s
        while True:
            step = shop.order(checkout.body["order_id"])
            order = step.body if step.ok and isinstance(step.body, dict) else order
            if order.get("status") in until or time.monotonic() >= deadline:
                break
            time.sleep(0.25)
    return Outcome(checkout, order, time.monotonic() - started)


def health(lab: Lab) -> tuple[int, list[str]]:
    resp = http.get(f"{lab.base}/health", timeout_s=10)
    return resp.status, list((resp.json() or {}).get("down") or [])


def pg_up(lab: Lab) -> float | None:
    return lab.value('pg_up{job="postgres"}')
