"""The questions an exercise's check asks the learner: what they found in the signals.

A `Question` has a key (`--answer KEY=VALUE`), the question as printed, a function that computes
the truth from the lab's own signals (Prometheus, the trace store, the logs) and a hint of where
to look. The truth function returns a `Truth`: what it accepts (with a stated tolerance where
a reading is approximate) and what `--reveal` shows; it raises `NotYet` while the signals do
not hold the answer yet (the fault has not run). A wrong answer gets the hint, never the truth.

    Question("trace_id", "The trace id of a checkout that failed while the database was down?",
             lambda lab: one_of(lab.trace_ids(...)), "search Jaeger for error=true ...")
"""

import re
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import http
from .links import API_SERVICE
from .probes import NotYet
from .prometheus import PrometheusError

if TYPE_CHECKING:
    from .jaeger import Span, SpanTree
    from .probes import Lab


@dataclass(frozen=True)
class Truth:
    shown: str  # what --reveal prints
    accepts: Callable[[str], bool] = field(repr=False)
    tolerance: str = ""  # how far off a reading may be, said with the question


@dataclass
class Question:
    key: str
    ask: str  # the question, as the terminal asks it and --help lists it
    truth: Callable[["Lab"], Truth]
    hint: str  # where to look, when the answer is wrong (never the answer itself)
    wrong: Callable[["Lab", str], str | None] = lambda lab, answer: None  # a sharper hint


@dataclass
class Verdict:
    key: str
    question: str
    answered: bool
    ok: bool
    detail: str
    hint: str
    answer: str | None = None  # the truth: only when --reveal asked for it


def normal(text: str) -> str:
    """Case, surrounding quotes and runs of blanks do not matter."""
    return " ".join(text.strip().strip("\"'`").split()).lower()


def one_of(values: Iterable[str], shown: str | None = None) -> Truth:
    """Right when the answer is one of `values` (any of them: e.g. every failed trace)."""
    values = sorted({v for v in values if v})
    if not values:
        raise NotYet("the signals of the window hold no answer yet")
    accepted = {normal(v) for v in values}
    return Truth(shown or " or ".join(values), lambda answer: normal(answer) in accepted)


def any_of(truths: list[Truth]) -> Truth:
    """Right when one of `truths` accepts the answer (a reading of each trace that may be the
    learner's); shown and stated as the first."""
    if not truths:
        raise NotYet("the signals of the window hold no answer yet")
    return Truth(truths[0].shown, lambda answer: any(t.accepts(answer) for t in truths),
                 truths[0].tolerance)


def number(value: float, tolerance: float, unit: str = "", relative: float = 0.0) -> Truth:
    """Right within ± max(`tolerance`, `relative` × value) of `value`."""
    slack = max(tolerance, abs(value) * relative)
    # Said without the value: "± 24 s" would tell that the answer is about 96 s.
    stated = (f"± {relative * 100:g} % ({tolerance:g}{unit} at least)" if relative
              else f"± {tolerance:g}{unit}")
    return between(value - slack, value + slack, unit, shown=f"{shown_number(value)}{unit}",
                   tolerance=stated)


def shown_number(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.2g}"


def between(low: float, high: float, unit: str = "", shown: str = "",
            tolerance: str = "") -> Truth:
    """Right when the answer, a number (its unit may follow), lies in [low, high]."""
    def accepts(answer: str) -> bool:
        got = parse_number(answer)
        return got is not None and low <= got <= high
    return Truth(shown or f"between {shown_number(low)}{unit} and {shown_number(high)}{unit}",
                 accepts, tolerance)


def parse_number(answer: str) -> float | None:
    if m := re.match(r"\s*(-?\d+(?:\.\d+)?)", answer):
        return float(m.group(1))
    return None


def clock_time(at: float, tolerance_s: float) -> Truth:
    """A moment, answered as HH:MM or HH:MM:SS in UTC, right within ± `tolerance_s`."""
    def accepts(answer: str) -> bool:
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:utc|z)?\s*", answer.lower())
        if not m:
            return False
        day = datetime.fromtimestamp(at, UTC)
        try:
            when = day.replace(hour=int(m.group(1)), minute=int(m.group(2)),
                               second=int(m.group(3) or 0), microsecond=0).timestamp()
        except ValueError:  # 25:61
            return False
        slack = tolerance_s + (0 if m.group(3) else 60)  # HH:MM: any second of that minute
        return any(abs(when + d - at) <= slack for d in (-86400, 0, 86400))
    shown = datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")
    return Truth(shown, accepts, f"± {tolerance_s:g} s")


def trace_where(lab: "Lab", good: Callable[["SpanTree"], bool], **search: Any) -> Truth:
    """Right when the answer is the id of a trace of the window for which `good` holds (any of
    them: it is fetched whole); --reveal shows the newest such trace a search finds."""
    found = [t.trace_id for t in lab.trees(**search) if good(t)]
    if not found:
        raise NotYet("no such trace in the window yet")

    def accepts(answer: str) -> bool:
        if not re.fullmatch(r"[0-9a-f]{16,32}", normal(answer)):
            return False
        try:
            tree = lab.trace_tree(normal(answer))
        except NotYet:
            return False
        return tree.start_us >= lab.since * 1_000_000 and good(tree)
    return Truth(found[0], accepts)


def slow_request(operation: str, slow_ms: float) -> Callable[["SpanTree"], bool]:
    """Whether a trace holds a request (its server span, `operation`) over `slow_ms` as the
    trace store measured it, less 10 %: the exemplar that names the trace times the request in
    the API's middleware, the span a moment less."""
    return lambda tree: any(s.duration_us >= 0.9 * slow_ms * 1000 for s in tree.find(operation))


def slow_request_trace(lab: "Lab", operation: str, slow_ms: float) -> Truth:
    """Right when the answer is the id of a trace of the window with `operation` over
    `slow_ms` (slow_request)."""
    found = trace_where(lab, slow_request(operation, slow_ms), service=API_SERVICE,
                        operation=operation, min_duration=f"{slow_ms:g}ms", limit=20)
    return Truth(found.shown, found.accepts, f"10 % of {slow_ms:g} ms, in the trace store")


def answered_trees(lab: "Lab", key: str, good: Callable[["SpanTree"], bool],
                   **search: Any) -> list["SpanTree"]:
    """The trace answered for `key` when `good` holds for it (a later question follows the
    learner's own trace), else every trace of the window a search finds for which it holds."""
    given = normal(lab.answers.get(key, ""))
    try:
        tree = lab.trace_tree(given) if given else None
    except NotYet:
        tree = None
    if tree is not None and good(tree):
        return [tree]
    return [t for t in lab.trees(**search) if good(t)]


def busiest(tree: "SpanTree", service: str = "") -> "Span":
    """The span with the most time of its own (its duration less its child spans'), of
    `service` when one is given (a checkout's own spans, not the worker's that follow)."""
    return max((s for s in tree.spans if s.service == service or not service),
               key=lambda s: s.self_us)


def first_points(lab: "Lab", selector: str, by: str, start: float,
                 step_s: float = 5) -> dict[str, float]:
    """{value of label `by`: the first point of its series} of an ALERTS `selector` graphed
    from `start` to now, a point every `step_s`: when each alert (by="alertname") or each of
    one alert's states (by="alertstate") began in the window."""
    try:
        series = lab.prometheus.query_range(selector, start, time.time(), step_s)
    except PrometheusError as exc:
        raise NotYet(f"Prometheus refused the ALERTS query: {exc}") from None
    began: dict[str, float] = {}
    for s in series:
        key, first = s["metric"].get(by, ""), float(s["values"][0][0])
        began[key] = min(first, began.get(key, first))
    return began


def firing_starts(lab: "Lab") -> dict[str, float]:
    """{alert name: when it started firing} for the alerts that started firing in the window
    (one already firing when the window began does not count)."""
    started = first_points(lab, 'ALERTS{alertstate="firing"}', "alertname", lab.since)
    return {n: t for n, t in started.items() if t > lab.since + 5}


def first_alert(lab: "Lab", tie_s: float = 10.0) -> Truth:
    """The alert that started firing first in the window (a tie within `tie_s`: one or two
    rule evaluations apart)."""
    started = firing_starts(lab)
    if not started:
        raise NotYet("no alert started firing in the window yet")
    earliest = min(started.values())
    return one_of(n for n, t in started.items() if t <= earliest + tie_s)


def fired_at(lab: "Lab", name: str, tolerance_s: float = 30.0) -> Truth:
    """When `name` started firing (Prometheus's ALERTS; the receiver gets it within seconds),
    as a UTC clock time."""
    started = firing_starts(lab).get(name)
    if started is None:
        raise NotYet(f"{name} did not start firing in the window yet")
    return clock_time(started, tolerance_s)


def seconds_where(lab: "Lab", expr: str) -> float:
    """How many seconds of the window `expr` (a comparison, e.g. `pg_up == 0`) held, at the
    scrape interval (5 s)."""
    return (lab.value(f"count_over_time(({expr}){lab.window[:-1]}:5s])") or 0.0) * 5


def seconds_down(lab: "Lab", up_expr: str, what: str) -> Truth:
    """How long `up_expr` (1 up, 0 down) was 0 in the window, within 25 % (10 s at least)."""
    down = seconds_where(lab, f"{up_expr} == 0")
    if not down:
        raise NotYet(f"{what} never went down since {lab.since_text} ({up_expr} stayed 1)")
    return number(down, 10, " s", relative=0.25)


def parse_answers(raw: list[str], keys: list[str]) -> dict[str, str]:
    """`key=value` pairs from --answer; ValueError names an unknown key or a missing '='."""
    answers = {}
    for item in raw:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"--answer {item!r}: expected KEY=VALUE")
        if key not in keys:
            raise ValueError(f"--answer {item!r}: no question {key!r}; "
                             f"this check asks: {', '.join(keys) or 'nothing'}")
        answers[key] = value.strip()
    return answers


def ask_missing(questions: list[Question], answers: dict[str, str],
                prompt: Callable[[str], str] = input) -> dict[str, str]:
    """Ask, in the terminal, each question not answered yet (an empty line skips it)."""
    for q in questions:
        if not answers.get(q.key):
            try:
                got = prompt(f"{q.ask}\n  {q.key}> ").strip()
            except EOFError:
                break
            if got:
                answers[q.key] = got
    return answers


def judge(lab: "Lab", questions: list[Question], answers: dict[str, str],
          reveal: bool) -> list[Verdict]:
    """Each question against the truth the signals hold now. `lab.answers` lets a question's
    truth follow an earlier answer (the trace of the purchase the learner named)."""
    lab.answers, lab.memo = answers, {}  # a new round: what the last one found may be stale
    verdicts = []
    for q in questions:
        given = answers.get(q.key, "")
        try:
            truth = q.truth(lab)
            right = bool(given) and truth.accepts(given)
        except NotYet as exc:
            hint = (q.wrong(lab, given) if given else None) or q.hint
            verdicts.append(Verdict(q.key, q.ask, bool(given), False,
                                    f"the signals hold no answer yet: {exc}", hint))
            continue
        except (http.Unreachable, OSError, subprocess.SubprocessError) as exc:
            verdicts.append(Verdict(q.key, q.ask, bool(given), False, f"no answer: {exc}",
                                    q.hint))
            continue
        shown = truth.shown if reveal else None
        tolerance = f" (within {truth.tolerance})" if truth.tolerance else ""
        if not given:
            verdicts.append(Verdict(q.key, q.ask, False, False,
                                    f"not answered: --answer {q.key}=...{tolerance}", q.hint,
                                    shown))
        elif right:
            verdicts.append(Verdict(q.key, q.ask, True, True, f"{given}: right{tolerance}", "",
                                    shown))
        else:
            hint = q.wrong(lab, given) or q.hint
            verdicts.append(Verdict(q.key, q.ask, True, False,
                                    f"{given}: not what the signals say{tolerance}", hint, shown))
    return verdicts


def keys_help(questions: list[Question]) -> str:
    """The --help epilog's list of the questions, one key each."""
    if not questions:
        return ""
    lines = ["questions (answer each with --answer KEY=VALUE, or in the terminal):"]
    lines += [f"  {q.key}: {q.ask}" for q in questions]
    return "\n".join(lines) + "\n\n"
