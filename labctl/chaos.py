"""`./lab chaos`: switch runtime faults on and off through the API's admin endpoint."""

import time

from labctl.config import LabConfig
from labctl.proc import LabError
from labkit import http


def call(cfg: LabConfig, method: str, body: dict | None = None) -> dict:
    headers = {"Authorization": f"Bearer {cfg.env.get('ADMIN_TOKEN', '')}"}
    try:
        resp = http.request(method, cfg.url("GATEWAY_PORT", "/admin/chaos"), body=body,
                            headers=headers, timeout_s=10)
    except http.Unreachable as exc:
        raise LabError(f"chaos: cannot reach the API through the gateway: {exc.reason}") from exc
    answer = resp.json()
    if not resp.ok or not isinstance(answer, dict):
        detail = answer.get("detail") if isinstance(answer, dict) else None
        raise LabError(f"chaos: the API answered {resp.status}: {detail or 'no JSON body'}")
    return answer


def wait_in_effect(view: dict) -> None:
    """Return once the change holds in every process: each rereads the faults on a timer of
    its own (the API's processes, the worker), so a purchase made right after `./lab chaos
    set` meets the fault, not the settings of a moment before. Nothing can be polled for it:
    the wait is the rereading period the API states."""
    time.sleep(float(view.get("in_effect_within_s", 0)))


def parse_assignments(pairs: list[str]) -> dict[str, float]:
    if not pairs:
        raise LabError("chaos: name at least one NAME=VALUE, e.g. payment_failure_rate=0.3")
    changes = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise LabError(f"chaos: expected NAME=VALUE, got {pair!r}")
        try:
            changes[name.strip()] = float(value)
        except ValueError as exc:
            raise LabError(f"chaos: {name} needs a number, got {value!r}") from exc
    return changes


def render(view: dict) -> str:
    lines = ["Faults switched on:" if view["active"] else "No fault is switched on."]
    lines += [f"  {name} = {value:g}" for name, value in sorted(view["active"].items())]
    lines += [f"Note: {note}" for note in view.get("notes", [])]
    lines.append("Available (./lab chaos set NAME=VALUE ..., ./lab chaos reset):")
    lines += [f"  {name:<22} {f['description']} ({f['min']:g}..{f['max']:g})"
              for name, f in view["available"].items()]
    return "\n".join(lines)
