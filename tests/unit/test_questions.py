"""The checks' questions (labkit/questions.py) and the progress record (labkit/progress.py):
answers parsed, judged against a truth with its tolerance, hints that never say the answer,
--reveal recorded, and every check's --help listing its keys."""

import json
import re
import subprocess
import sys

import pytest

from labctl.config import ROOT
from labctl.proc import free_port
from labkit import progress
from labkit.checks import run
from labkit.jaeger import build_tree
from labkit.probes import NotYet
from labkit.questions import (
    Question,
    answered_trees,
    any_of,
    ask_missing,
    between,
    busiest,
    clock_time,
    fired_at,
    first_alert,
    judge,
    number,
    one_of,
    parse_answers,
    slow_request,
)
from labkit.shop import made_by_the_lab
from tests.unit.test_checks import lab_at_nothing

SECRET = "4bf92f3577b34da6a3ce929d0e0e4736"
QUESTIONS = [
    Question("trace_id", "The trace id of the slowest request?", lambda lab: one_of([SECRET]),
             "search Jaeger for the slowest trace"),
    Question("peak", "The queue depth at its peak?", lambda lab: number(40, 2),
             "graph the queue depth in Prometheus"),
]
CONVERTED = {"01-follow-a-purchase": ["correlation_id", "trace_id", "duration_ms"],
             "02-database-failure": ["failed_trace_id", "down_seconds", "fired_at"],
             "05-slow-queries": ["slow_trace_id", "statement_ms", "p95_peak_ms"],
             "06-failing-payments": ["declined_trace_id", "dead_letter_peak"],
             "07-broker-outage": ["held_orders", "down_seconds", "fired_at"],
             "03-load-testing": ["knee_per_s", "saturated", "fired_at"],
             "04-stuck-worker-and-backlog": ["first_alert", "first_fired_at", "ready_peak"],
             "08-latency-spike-to-trace": ["slow_trace_id", "statement", "request_ms", "fired_at"],
             "13-sampling": ["kept_share", "unkept_trace_id", "failed_orders", "failed_traced"],
             "15-game-day": ["cause"],
             "09-cpu-hotspot": ["slow_trace_id", "span", "self_ms", "function"],
             "10-write-your-own-alert": ["alertname", "fired_at", "value"],
             "11-cardinality-bomb": ["metric", "label", "series", "scrape_drop"],
             "12-broken-trace": ["hop", "api_trace_id", "worker_trace_id", "correlation_id"],
             "14-capacity": ["highest_rate", "saturated_first", "peak_lag_s"],
             "16-postmortem": ["postmortem", "impact_start", "impact_end", "detected_at"]}


def test_answers_are_key_value_pairs_of_the_questions_keys():
    assert parse_answers(["trace_id=abc", " peak = 4 ", "trace_id=x=y"], ["trace_id", "peak"]) \
        == {"trace_id": "x=y", "peak": "4"}
    with pytest.raises(ValueError, match="no question 'nope'.*trace_id, peak"):
        parse_answers(["nope=1"], ["trace_id", "peak"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_answers(["trace_id"], ["trace_id"])


def test_a_truth_accepts_within_its_stated_tolerance():
    assert one_of(["DatabaseDown"]).accepts(" databasedown ")
    assert not one_of(["DatabaseDown"]).accepts("Database")
    within = number(40, 2, " s", relative=0.1)
    assert within.tolerance == "± 10 % (2 s at least)" and within.shown == "40 s"
    assert number(96, 10, " s", relative=0.25).tolerance == "± 25 % (10 s at least)"  # not 24
    assert within.accepts("44 s") and within.accepts("36") and not within.accepts("45")
    assert not within.accepts("forty")
    assert between(10, 20).accepts("15.5 ms") and not between(10, 20).accepts("9")
    at = 1_800_000_000  # 08:00:00 UTC
    assert clock_time(at, 30).accepts("08:00") and clock_time(at, 30).accepts("08:00:25 UTC")
    assert not clock_time(at, 30).accepts("08:02") and not clock_time(at, 30).accepts("8")
    assert not clock_time(at, 30).accepts("25:61")
    with pytest.raises(NotYet):
        one_of([])


def test_a_wrong_answer_gets_the_hint_never_the_truth():
    verdicts = judge(lab_at_nothing(), QUESTIONS, {"trace_id": "0" * 32, "peak": "30"}, False)
    assert [(v.key, v.ok, v.answered) for v in verdicts] == [("trace_id", False, True),
                                                              ("peak", False, True)]
    assert verdicts[0].hint == "search Jaeger for the slowest trace"
    assert "within ± 2" in verdicts[1].detail
    for v in verdicts:
        assert v.answer is None
        assert SECRET not in v.detail + v.hint and "40" not in v.detail + v.hint


def checkout_trace(trace_id: str, request_ms: int, sql_ms: int) -> dict:
    """A checkout's trace in Jaeger's JSON: the request, its checkout_order, one SQL span."""
    def span(span_id, name, ms, parent=None):
        refs = [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}] if parent else []
        return {"traceID": trace_id, "spanID": span_id, "operationName": name,
                "startTime": 1_000_000, "duration": ms * 1000, "references": refs}
    return {"traceID": trace_id, "spans": [
        span("a", "POST /checkout", request_ms), span("b", "checkout_order", request_ms - 2, "a"),
        span("c", "WITH recordstore", sql_ms, "b")]}


def test_a_later_question_follows_the_trace_answered_when_it_is_one_that_counts(monkeypatch):
    lab = lab_at_nothing()
    traces = {t["traceID"]: t for t in (checkout_trace("1" * 32, 900, 880),
                                        checkout_trace("2" * 32, 600, 5),
                                        checkout_trace("3" * 32, 40, 1))}
    monkeypatch.setattr(lab, "trace_tree", lambda trace_id: build_tree(traces[trace_id]))
    monkeypatch.setattr(lab, "trees", lambda **search: [build_tree(traces["2" * 32]),
                                                        build_tree(traces["1" * 32])])
    slow = slow_request("POST /checkout", 500)
    assert slow(build_tree(checkout_trace("4" * 32, 460, 0)))  # within 10 %: the exemplar's
    assert not slow(build_tree(traces["3" * 32]))
    lab.answers = {"slow_trace_id": "1" * 32}
    [tree] = answered_trees(lab, "slow_trace_id", slow)
    assert (busiest(tree).operation, busiest(tree).self_us) == ("WITH recordstore", 880_000)
    assert busiest(tree, "unknown") is busiest(tree)  # the service the spans came from
    lab.answers = {"slow_trace_id": "3" * 32}  # not a slow one: any slow trace of the window
    trees = answered_trees(lab, "slow_trace_id", slow)
    assert [busiest(t).operation for t in trees] == ["checkout_order", "WITH recordstore"]
    either = any_of([number(busiest(t).self_us / 1000, 20, " ms") for t in trees])
    assert either.accepts("593") and either.accepts("870") and not either.accepts("700")
    with pytest.raises(NotYet):
        any_of([])


def test_the_first_alert_is_the_one_whose_firing_began_first_in_the_window(monkeypatch):
    lab = lab_at_nothing()
    lab.since = 1000.0
    firing = [("WorkerDown", 1100.0), ("QueueBacklogGrowing", 1140.0), ("OrdersNotFinal", 1105.0),
              ("BrokerDown", 1000.0)]  # already firing when the window began: not counted
    monkeypatch.setattr(lab.prometheus, "query_range", lambda expr, start, end, step: [
        {"metric": {"alertname": name}, "values": [[at, "1"], [at + 5, "1"]]}
        for name, at in firing])
    assert first_alert(lab).shown == "OrdersNotFinal or WorkerDown"  # one evaluation apart
    assert not first_alert(lab).accepts("BrokerDown")
    assert fired_at(lab, "QueueBacklogGrowing").shown == "00:19:00 UTC"
    with pytest.raises(NotYet):
        fired_at(lab, "BrokerDown")


def test_right_missing_unanswerable_and_revealed_answers():
    def not_yet(lab):
        raise NotYet("nothing failed yet")

    questions = [*QUESTIONS, Question("later", "?", not_yet, "make it fail first")]
    verdicts = judge(lab_at_nothing(), questions, {"trace_id": SECRET.upper()}, True)
    assert [(v.ok, v.answered) for v in verdicts] == [(True, True), (False, False),
                                                      (False, False)]
    assert verdicts[0].hint == "" and verdicts[0].answer == SECRET
    assert verdicts[1].detail.startswith("not answered: --answer peak=")
    assert verdicts[1].answer == "40"
    assert verdicts[2].detail == "the signals hold no answer yet: nothing failed yet"


def test_the_questions_missing_are_asked_in_the_terminal():
    asked = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "42" if "peak" in text else ""

    assert ask_missing(QUESTIONS, {"trace_id": "abc"}, prompt) == {"trace_id": "abc",
                                                                    "peak": "42"}
    assert len(asked) == 1 and "The queue depth at its peak?" in asked[0]


def check_run(args: list[str], capsys) -> tuple[int, str]:
    nowhere = f"http://127.0.0.1:{free_port()}"
    urls = ["--base-url", nowhere, "--prometheus-url", nowhere, "--jaeger-url", nowhere,
            "--receiver-url", nowhere, "--mode", "native"]
    rc = run("Exercise 99: a test", [], [*urls, *args], questions=QUESTIONS,
             exercise="99-a-test")
    return rc, capsys.readouterr().out


def test_reveal_shows_the_answers_and_the_progress_record_keeps_it(tmp_path, monkeypatch,
                                                                  capsys):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    rc, out = check_run(["--answer", "trace_id=nope", "--answer", "peak=1"], capsys)
    assert rc == 1 and SECRET not in out and "where to look:" in out
    record = progress.load(tmp_path)["99-a-test"]
    assert (record["status"], record["hints"], record["revealed"]) == ("in progress", 2, [])
    rc, out = check_run(["--reveal", "--json"], capsys)
    report = json.loads(out)
    assert rc == 1 and [q["answer"] for q in report["questions"]] == [SECRET, "40"]
    assert progress.load(tmp_path)["99-a-test"]["revealed"] == ["peak", "trace_id"]
    rc, out = check_run(["--answer", f"trace_id={SECRET}", "--answer", "peak=41"], capsys)
    assert rc == 0 and "well done" in out
    record = progress.load(tmp_path)["99-a-test"]
    assert (record["status"], record["runs"], record["hints"]) == ("passed", 3, 4)
    assert record["passed_at"] >= record["started_at"]


def test_an_unknown_answer_key_is_bad_usage(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        check_run(["--answer", "colour=blue"], capsys)
    assert exited.value.code == 2 and not progress.path(tmp_path).exists()


def test_progress_lists_every_exercise_started_or_not(tmp_path):
    progress.record("02-database-failure", False, ["down_seconds"], [], tmp_path, now=1.0)
    progress.record("02-database-failure", True, [], ["fired_at"], tmp_path, now=2.0)
    progress.record("05-slow-queries", False, [], [], tmp_path, now=3.0)
    lines = progress.lines(tmp_path)
    every = progress.exercises()
    assert lines[0].startswith(f"Progress (1 of {len(every)} passed)") and len(every) >= 12
    shown = {line.split()[0]: line for line in lines[1:]}
    assert set(shown) == set(every) and len(shown) == len(every)
    assert re.search(r"passed .*2 run\(s\); 1 hint\(s\); answers revealed: fired_at",
                     shown["02-database-failure"])
    assert "in progress" in shown["05-slow-queries"]
    assert shown["01-follow-a-purchase"].endswith("not started")
    progress.path(tmp_path).write_text("{torn")
    assert progress.load(tmp_path) == {}


@pytest.mark.parametrize("folder", sorted(CONVERTED))
def test_each_check_help_lists_its_questions_keys(folder):
    r = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "exercises" / folder / "check.py"),
                        "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    listed = re.findall(r"^  (\w+): \S", r.stdout.split("questions (", 1)[1], re.M)
    assert listed == CONVERTED[folder], r.stdout
    assert "--answer KEY=VALUE" in r.stdout and "--reveal" in r.stdout


def test_the_lab_marks_its_own_shoppers_correlation_ids_and_no_one_elses():
    assert made_by_the_lab("load-3fa2b1-17") and made_by_the_lab("check-1a2b3c4d5e6f")
    assert made_by_the_lab("check-stack-1a2b3c4d5e6f")
    for person in ("web-0a1b2c3d4e5f6a7b", "journey-0a1b2c3d4e5f", "follow-me-01",
                   "5f0c6e2a9b8d4c1e8f7a6b5c4d3e2f1a", "loader-1"):
        assert not made_by_the_lab(person), person
