"""The exercises' checks: what did the learner find, and has the lab reached the state an
exercise leads to?

Each exercise's `check.py` lists its questions (questions.py: what only the signals hold, each
judged against the truth the check reads itself) and its steps; each step asks the lab's own
signals (Prometheus, Alertmanager's receiver, Jaeger, the API, the logs) about what happened
since `--since` (default: the last 30 minutes), and says what to do when it has not happened
yet. The questions to the lab are `Lab`'s, in probes.py; this module runs the questions and
the steps, prints the verdicts and records the run (progress.py). Standard library only, like
every learner-facing script.

    python3 exercises/02-database-failure/check.py          # or: ./lab check 02
    python3 exercises/02-database-failure/check.py --answer down_seconds=40 --since 10m
"""

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from . import http, progress
from .links import API_SERVICE, WORKER_SERVICE
from .probes import Lab, NotYet
from .questions import Question, ask_missing, judge, keys_help, parse_answers
from .settings import SettingsError, default_url, read_env, run_mode


@dataclass
class StepResult:
    number: int
    title: str
    ok: bool
    detail: str
    hint: str


@dataclass
class Step:
    title: str
    probe: Callable[["Lab"], str]  # returns what it saw; raises NotYet (or fails to connect)
    hint: str  # what to do when it does not hold yet


def parse_since(raw: str, now: float | None = None) -> float:
    """'30m', '2h', '90s' ago, a Unix time, or an ISO 8601 time: the start of the window."""
    now = time.time() if now is None else now
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)([smh])", raw.strip()):
        return now - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since: expected 30m, 2h, a Unix time or an ISO time, got {raw!r}") from None


def parser(title: str, questions: Sequence[Question] = ()) -> argparse.ArgumentParser:
    env = read_env()
    p = argparse.ArgumentParser(
        description=title, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=keys_help(list(questions)) + "exit status: 0 every answer is right and every "
        "step holds, 1 one is not (yet), 2 bad usage")
    p.add_argument("--answer", action="append", default=[], metavar="KEY=VALUE",
                   help="an answer to one of the questions below (repeat it for each); "
                   "the questions not answered are asked in the terminal")
    p.add_argument("--reveal", action="store_true",
                   help="show the answers the signals hold (your progress records it)")
    p.add_argument("--since", type=parse_since, default=parse_since("30m"),
                   help="look at what happened since: 30m (default), 2h, a Unix or ISO time")
    p.add_argument("--wait", type=float, default=0.0, metavar="S",
                   help="keep checking for up to S seconds until every step holds")
    p.add_argument("--base-url", default=default_url(env, "GATEWAY_PORT", "8000"))
    p.add_argument("--prometheus-url", default=default_url(env, "PROMETHEUS_PORT", "9090"))
    p.add_argument("--jaeger-url", default=default_url(env, "JAEGER_UI_PORT", "16686"))
    p.add_argument("--receiver-url", default=default_url(env, "ALERT_RECEIVER_PORT", "9095"))
    p.add_argument("--mode", choices=("native", "compose", "kubernetes"),
                   help="where the logs are: .lab/logs (native), docker logs (compose) or "
                   "kubectl logs (kubernetes); default: the lab's run mode (LAB_MODE, else "
                   "native while ./lab runs a stack, else compose when Docker answers)")
    p.add_argument("--json", action="store_true", help="print the results as JSON only")
    return p


def evaluate(lab: Lab, steps: list[Step]) -> list[StepResult]:
    results = []
    for number, step in enumerate(steps, 1):
        try:
            results.append(StepResult(number, step.title, True, step.probe(lab), step.hint))
        except NotYet as exc:
            results.append(StepResult(number, step.title, False, str(exc), step.hint))
        except (http.Unreachable, OSError, subprocess.SubprocessError) as exc:
            results.append(StepResult(number, step.title, False, f"no answer: {exc}", step.hint))
    return results


def run(title: str, steps: list[Step], argv: list[str] | None = None,
        questions: Sequence[Question] = (), exercise: str = "") -> int:
    """Judge the learner's answers, then evaluate every step (again until --wait runs out),
    print the verdict of each and record the run in the progress record."""
    questions = list(questions)
    p = parser(title, questions)
    args = p.parse_args(argv)
    try:
        answers = parse_answers(args.answer, [q.key for q in questions])
    except ValueError as exc:
        p.error(str(exc))
    if args.mode is None:
        try:
            args.mode = run_mode()
        except SettingsError as exc:
            p.error(str(exc))
    if questions and not args.json and sys.stdin.isatty() and (
            set(answers) < {q.key for q in questions}):
        answers = ask_missing(questions, answers)
    lab = Lab(base_url=args.base_url, prometheus_url=args.prometheus_url,
              jaeger_url=args.jaeger_url, receiver_url=args.receiver_url, since=args.since,
              mode=args.mode)
    deadline = time.monotonic() + args.wait
    while True:
        verdicts = judge(lab, questions, answers, args.reveal)
        results = evaluate(lab, steps)
        ok = all(v.ok for v in verdicts) and all(r.ok for r in results)
        if ok or time.monotonic() >= deadline:
            break
        time.sleep(2)
    if exercise:
        try:
            progress.record(exercise, ok, [v.key for v in verdicts if v.hint],
                            [q.key for q in questions] if args.reveal else [])
        except OSError as exc:  # a read-only checkout: the verdict still counts
            print(f"(progress not recorded: {exc})", file=sys.stderr)
    if args.json:
        print(json.dumps({"exercise": title, "ok": ok, "since": lab.since,
                          "questions": [asdict(v) for v in verdicts],
                          "steps": [asdict(r) for r in results]}, indent=2))
        return 0 if ok else 1
    print(f"{title}\n  looking at what happened since {lab.since_text}\n")
    for v in verdicts:
        print(f"  [{'x' if v.ok else ' '}] {v.question}\n        {v.detail}")
        if v.hint:
            print(f"        where to look: {v.hint}")
        if v.answer is not None:
            print(f"        the signals say: {v.answer}")
    for r in results:
        print(f"  [{'x' if r.ok else ' '}] {r.number}. {r.title}\n        {r.detail}")
        if not r.ok:
            print(f"        next: {r.hint}")
    wrong = [v.key for v in verdicts if not v.ok]
    first = next((r for r in results if not r.ok), None)
    print("\nEvery answer is right and every step holds: well done." if ok else
          f"\nNot there yet: {', '.join(wrong)} not right yet." if wrong else
          f"\nNot there yet: step {first.number} ({first.title}) does not hold.")
    return 0 if ok else 1


def main(title: str, steps: list[Step], questions: Sequence[Question] = ()) -> None:
    """Run the check of the exercise whose check.py is the running script."""
    script = getattr(sys.modules["__main__"], "__file__", "") or ""
    exercise = Path(script).resolve().parent.name if script else ""
    sys.exit(run(title, steps, questions=questions, exercise=exercise))


__all__ = ["API_SERVICE", "WORKER_SERVICE", "Lab", "NotYet", "Question", "Step", "main", "run"]
