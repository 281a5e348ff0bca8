"""Running an exercise's check and its steps against a stack, as the exercise README says:
shared by the native exercise tests and the compose run (the same steps, other commands)."""

import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx

from labctl.config import ROOT, LabConfig
from tests.helpers import lab_run, wait_for

JOURNEY = ROOT / "scripts" / "trace_purchase_journey.py"


def check(lab: LabConfig, exercise: str, since: float, wait_s: float = 0) -> tuple[int, dict]:
    """`./lab check NN --json`, looking at what happened since `since`."""
    r = lab_run(lab, "check", exercise, "--", "--json", "--since", str(since),
                "--wait", str(wait_s), timeout_s=wait_s + 120)
    assert r.stdout, r.stderr
    return r.returncode, json.loads(r.stdout)


def failing(report: dict) -> dict[int, str]:
    return {s["number"]: s["detail"] for s in report["steps"] if not s["ok"]}


def before(lab: LabConfig, *exercises: str) -> tuple[float, list[dict]]:
    """A `since` from which no exercise's first step holds yet (the traffic of earlier tests
    has left the windows it looks at), and the checks' reports then: each fails."""
    seen: dict = {}

    def quiet() -> float | None:
        since = time.time()
        seen["reports"] = [check(lab, exercise, since) for exercise in exercises]
        return since if all(rc == 1 and 1 in failing(report)
                            for rc, report in seen["reports"]) else None

    since = wait_for(quiet, 90, lambda: f"step 1 of {exercises} not to hold: {seen}")
    return since, [report for _, report in seen["reports"]]


def assert_passes(lab: LabConfig, exercise: str, since: float, wait_s: float = 120) -> dict:
    rc, report = check(lab, exercise, since, wait_s)
    assert (rc, failing(report)) == (0, {}), report
    return report


def until_steps_hold(lab: LabConfig, exercise: str, since: float, steps: set[int],
                     timeout_s: float) -> dict:
    """Run the check again and again until the given steps hold (the others may not)."""
    seen: dict = {}

    def holds() -> dict | None:
        seen["report"] = check(lab, exercise, since)[1]
        return seen["report"] if steps.isdisjoint(failing(seen["report"])) else None

    return wait_for(holds, timeout_s, lambda: f"steps {sorted(steps)} to hold: {seen}")


def journey(lab: LabConfig, *args: str) -> subprocess.CompletedProcess:
    """scripts/trace_purchase_journey.py with a bare python3, against the test stack."""
    urls = ["--base-url", lab.url("GATEWAY_PORT"), "--jaeger-url", lab.url("JAEGER_UI_PORT")]
    sub = list(args[:1]) if args[:1] == ("load-test",) else []
    rest = list(args[len(sub):])
    return subprocess.run([sys.executable, "-I", "-S", str(JOURNEY), *sub, *urls, *rest],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


@contextmanager
def shopping(lab: LabConfig, every_s: float = 0.5,
             product_ids: Sequence[int] = (1,)) -> Iterator[None]:
    """A shopper checking out one record after another in the background (of `product_ids`
    in turn: a long run spreads its orders, so no record runs out for the tests after it)."""
    stop = threading.Event()

    def loop() -> None:
        products = itertools.cycle(product_ids)
        with httpx.Client(base_url=lab.url("GATEWAY_PORT"), timeout=30) as client:
            while not stop.wait(every_s):
                client.post("/checkout", json={"product_id": next(products)})

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
