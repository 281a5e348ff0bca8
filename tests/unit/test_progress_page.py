"""The storefront's #/progress page (nginx/html/assets/progress.js) reads the very record the
checks write (labkit/progress.py) and says what `./lab progress` says of it: every exercise in
order, the ones not started too, each passed or in progress with its runs, hints and reveals."""

import json

from labctl.config import ROOT
from labkit import progress
from tests.helpers import run_js

MODULE = ROOT / "nginx" / "html" / "assets" / "progress.js"


def rows(record: dict) -> dict:
    return run_js(MODULE, "progressRows", record)


def test_the_page_lists_what_the_checks_recorded_as_lab_progress_prints_it(tmp_path):
    first, second = progress.exercises()[:2]
    progress.record(first, False, ["trace_id"], [], home=tmp_path, now=1_700_000_000)
    progress.record(first, True, [], [], home=tmp_path, now=1_700_000_100)
    progress.record(second, False, ["a", "b"], ["b"], home=tmp_path, now=1_700_000_200)
    record = json.loads(progress.path(tmp_path).read_text())
    shown = rows(record)
    assert shown["total"] == len(progress.exercises()) and shown["passed"] == 1
    assert [r["exercise"] for r in shown["rows"]] == progress.exercises()
    by_name = {r["exercise"]: r for r in shown["rows"]}
    assert by_name[first]["status"] == progress.PASSED
    assert by_name[first]["detail"] == "2 run(s); 1 hint(s)"
    assert by_name[second]["detail"] == "1 run(s); 2 hint(s); answers revealed: b"
    assert all(r["status"] == progress.NOT_STARTED for r in shown["rows"][2:])
    # The titles are the READMEs' own: "01 · Follow a purchase" -> "Follow a purchase".
    title = (ROOT / "exercises" / first / "README.md").read_text().splitlines()[0]
    assert title.endswith(" · " + by_name[first]["title"])
    text = "\n".join(progress.lines(tmp_path))  # ./lab progress says the same of each
    assert f"{first}" in text and "passed" in text and "answers revealed: b" in text


def test_a_record_without_a_catalog_still_lists_what_it_holds():
    shown = rows({"exercises": {"03-load-testing": {
        "status": "in progress", "runs": 1, "hints": 0, "revealed": [], "last_run_at": 1}}})
    assert [(r["exercise"], r["status"]) for r in shown["rows"]] == [
        ("03-load-testing", "in progress")]
    assert rows({})["rows"] == [] and rows(None)["total"] == 0


def test_the_page_shows_the_game_days_score_as_lab_progress_does(tmp_path):
    assert run_js(MODULE, "gameDayLine", {}) == ""
    progress.record_game(85, True, home=tmp_path, now=1_700_000_000)
    progress.record_game(0, False, home=tmp_path, now=1_700_000_100)
    progress.record_series(2, 2, 85, home=tmp_path, now=1_700_000_200)
    line = run_js(MODULE, "gameDayLine", json.loads(progress.path(tmp_path).read_text()))
    assert line.startswith("Game days: 2 game(s) answered, 1 right, 85 points in all "
                           "(best game 85)"), line
    assert "85 points in 2 of 2 round(s)" in line
    printed = " ".join(progress.game_day_lines(tmp_path))
    assert "2 game(s) answered, 1 right, 85 points in all (best game 85)" in printed
