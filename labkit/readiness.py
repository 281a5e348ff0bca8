"""Is the telemetry ready to look at? Right after a start, a learner stares at empty panels and
searches that find nothing, and wonders what is broken. Nothing is: the signals are warming up.
This says how far each one is, from the backends themselves:

- traces: has the trace store stored one of the lab's traces yet (and of which services)?
- targets: has every scrape target been scraped, and is each up?
- windows: do the rate windows hold data? A panel's rate needs four scrapes (Grafana's
  `$__rate_interval`); each alert rule's `[5m]` needs five minutes of samples before it can
  say anything true; the error budget's `[1h]` and `[6h]` an hour and six.

Standard library only: `./lab status` and `./lab up` print it, in either run mode.
"""

import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from . import http
from .jaeger import JaegerError, JaegerQuery
from .prometheus import Prometheus, PrometheusError
from .rules import SERVICE_PREFIX, short_service

PANEL_SCRAPES = 4  # Grafana's $__rate_interval: at least four scrape intervals
WINDOW = re.compile(r"\[(\d+)([smhd])\]")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The windows up to this long are what the exercises' alerts read; longer ones are the error
# budget's, which no one waits for (its fast burn is the short window's job).
ALERT_WINDOW_MAX_S = 30 * 60


@dataclass
class Signal:
    name: str  # traces, targets, windows
    ready: bool
    detail: str


@dataclass
class Readiness:
    signals: list[Signal] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return all(s.ready for s in self.signals)

    def lines(self) -> list[str]:
        head = ("telemetry: ready" if self.ready else
                "telemetry: warming up (an empty panel or search now is not a fault)")
        return [head, *(f"  {s.name:<8} {'ready' if s.ready else 'not yet':<8} {s.detail}"
                        for s in self.signals)]

    def as_json(self) -> dict:
        return {"ready": self.ready,
                "signals": [{"name": s.name, "ready": s.ready, "detail": s.detail}
                            for s in self.signals]}


def seconds(window: str) -> int:
    """'5m' -> 300."""
    m = WINDOW.fullmatch(f"[{window}]")
    if not m:
        raise ValueError(f"not a PromQL duration: {window!r}")
    return int(m.group(1)) * UNIT_S[m.group(2)]


def rule_windows(rule_queries: list[str]) -> list[int]:
    """Every range window (seconds) the rules' expressions use, shortest first."""
    return sorted({int(n) * UNIT_S[u] for q in rule_queries for n, u in WINDOW.findall(q)})


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M")


def _human(window_s: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if window_s % size == 0:
            return f"{window_s // size}{unit}"
    return f"{window_s}s"


def traces_signal(services: list[str]) -> Signal:
    """Ready once the store holds a span of one of the lab's services (the storefront's
    readiness.js tracesSignal, by the same rule)."""
    lab = sorted(s for s in services if s.startswith(SERVICE_PREFIX))
    if not lab:
        return Signal("traces", False, "no trace stored yet: the first comes with the first "
                      "request (buy a record, or `./lab traffic`)")
    return Signal("traces", True, f"stored, from {', '.join(map(short_service, lab))}")


def traces(jaeger: JaegerQuery) -> Signal:
    try:
        return traces_signal(jaeger.services())
    except (http.Unreachable, JaegerError) as exc:
        return Signal("traces", False, f"the trace store does not answer: {exc}")


def targets_signal(active: list[dict]) -> Signal:
    """Ready when every active target has been scraped and each is up (readiness.js
    targetsSignal, by the same rule)."""
    down = sorted(t["labels"].get("job", "?") for t in active if t.get("health") == "down")
    waiting = sorted(t["labels"].get("job", "?") for t in active if t.get("health") == "unknown")
    if not active:
        return Signal("targets", False, "Prometheus has no scrape target")
    if down:
        return Signal("targets", False, f"down: {', '.join(down)} (a component is down: "
                      "`./lab status`; Prometheus's /targets says why)")
    if waiting:
        return Signal("targets", False, f"not scraped yet: {', '.join(waiting)}")
    return Signal("targets", True, f"all {len(active)} up")


def targets(prometheus: Prometheus) -> tuple[Signal, float]:
    """The scrape targets' signal, and the longest scrape interval among them (seconds)."""
    try:
        active = prometheus.targets()
    except (http.Unreachable, PrometheusError) as exc:
        return Signal("targets", False, f"Prometheus does not answer: {exc}"), 0.0
    interval = max((seconds(t.get("scrapeInterval", "15s")) for t in active), default=15)
    return targets_signal(active), interval


def windows(prometheus: Prometheus, interval_s: float, now: float | None = None) -> Signal:
    """How much of each rate window holds samples, from the target with the fewest."""
    now = time.time() if now is None else now
    try:
        queries = [r["query"] for r in prometheus.rules()]
        alert_windows = [w for w in rule_windows(queries) if w <= ALERT_WINDOW_MAX_S]
        longest = max([interval_s * PANEL_SCRAPES, *alert_windows])
        # Samples of the least-covered target over the longest window, and so the data's age.
        found = prometheus.query(f"min(count_over_time(up[{int(longest)}s]))")
    except (http.Unreachable, PrometheusError) as exc:
        return Signal("windows", False, f"Prometheus does not answer: {exc}")
    samples = float(found[0]["value"][1]) if found else 0.0
    covered_s = max(samples - 1, 0) * interval_s
    panel_s = interval_s * PANEL_SCRAPES
    unfilled = [w for w in alert_windows if covered_s + interval_s < w]
    parts = ["panels' rates filled" if covered_s >= panel_s else
             f"panels' rates fill at {_clock(now + panel_s - covered_s)} "
             f"({PANEL_SCRAPES} scrapes)"]
    if alert_windows and not unfilled:
        parts.append(f"alert windows up to {_human(alert_windows[-1])} filled")
    elif unfilled:
        parts.append("alert windows " + ", ".join(
            f"{_human(w)} fills at {_clock(now + w - covered_s - interval_s)}" for w in unfilled))
    return Signal("windows", covered_s >= panel_s and not unfilled, "; ".join(parts))


def check(prometheus_url: str, jaeger_url: str) -> Readiness:
    prometheus = Prometheus(prometheus_url, timeout_s=5.0)
    target_signal, interval = targets(prometheus)
    result = Readiness([traces(JaegerQuery(jaeger_url)), target_signal])
    if interval:
        result.signals.append(windows(prometheus, interval))
    else:
        result.signals.append(Signal("windows", False, "unknown while Prometheus is not up"))
    return result
