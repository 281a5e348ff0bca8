"""What scripts/check_stack.py reports, and the two ways it asks: one row per check (ok, fail or
n/a), printed as it comes unless the report is JSON; a GET that never raises, and a poll."""

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import http

OK, FAIL, NA = "ok", "fail", "n/a"
REQUEST_TIMEOUT_S = 5.0
POLL_S = 0.5


@dataclass
class Result:
    component: str
    check: str
    status: str  # ok, fail, n/a
    detail: str = ""


class Report:
    def __init__(self, live: bool) -> None:
        self.results: list[Result] = []
        self.live = live

    def add(self, component: str, check: str, status: str, detail: str = "") -> Result:
        result = Result(component, check, status, detail)
        self.results.append(result)
        if self.live:
            print(format_row(result), flush=True)
        return result

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.status == FAIL]


def symbols() -> dict[str, str]:
    """✓ ✗ where the terminal can print them, plain words where it cannot."""
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
    except (LookupError, UnicodeEncodeError):
        return {OK: "OK  ", FAIL: "FAIL", NA: "n.a."}
    return {OK: "✓", FAIL: "✗", NA: "n.a."}


def format_row(r: Result) -> str:
    mark = symbols()[r.status]
    detail = f"  ({r.detail})" if r.detail else ""
    return f"  {mark:<4}  {r.component:<12} {r.check}{detail}"


def get(url: str, headers: dict[str, str] | None = None) -> http.Response | str:
    """The answer, or why there was none (a string), never an exception."""
    try:
        return http.get(url, headers=headers, timeout_s=REQUEST_TIMEOUT_S)
    except http.Unreachable as exc:
        return f"unreachable: {exc.reason}"


def poll(check: Callable[[], Any], timeout_s: float) -> Any:
    """check() until it returns something truthy or the deadline passes (then its last value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(POLL_S)


def reason(resp: http.Response | str) -> str:
    return resp if isinstance(resp, str) else f"answered {resp.status}"
