"""The game day's points, rounds, progress record, postmortem and Grafana annotation, without a
stack; and each cause's exercise, which comes before the game day. Grafana cannot run here:
its annotation API is a small local HTTP server that records what it was sent."""

import base64
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from gameday import games, postmortem, timeline
from gameday.causes import CAUSES
from labctl.config import ROOT
from labkit import progress

GAME_DAY = int(next((ROOT / "exercises").glob("[0-9][0-9]-game-day")).name[:2])


@pytest.mark.parametrize("cause", CAUSES, ids=[c.name for c in CAUSES])
def test_each_cause_is_taught_by_an_exercise_before_the_game_day(cause):
    assert len(cause.taught_in) == 2 and int(cause.taught_in) < GAME_DAY, cause.taught_in
    folders = list((ROOT / "exercises").glob(f"{cause.taught_in}-*/README.md"))
    assert folders, f"{cause.name} is taught in exercise {cause.taught_in}, which does not exist"


def test_the_game_day_doc_lists_every_cause_with_its_exercise():
    text = (ROOT / "docs" / "game-day.md").read_text()
    table = dict(re.findall(r"^\| `([a-z-]+)` \|.*\| (\d\d) \|$", text, re.M))
    assert table == {c.name: c.taught_in for c in CAUSES}


@pytest.mark.parametrize(("right", "hints", "seconds", "points"), [
    (True, 0, 60, 100), (True, 2, 299, 70), (True, 0, 300, 100), (True, 0, 309, 100),
    (True, 0, 310, 99), (True, 1, 500, 65), (True, 3, 3600, 15), (False, 0, 30, 0),
    (False, 3, 3600, 0)])
def test_points_are_100_less_the_hints_and_the_time_past_par(right, hints, seconds, points):
    assert games.points(right, hints, seconds) == points


def test_a_verdict_carries_its_points():
    game = {"cause": "db-down", "seed": 1, "started_at": 1000.0, "hints": 1}
    assert games.grade(game, "db-down", 1400)["points"] == 100 - 15 - 10
    assert games.grade(game, "worker-down", 1010)["points"] == 0


def test_the_rounds_of_a_series_each_pick_a_new_cause():
    played: list[str] = []
    seed = 7
    for _ in range(len(CAUSES)):
        seed = games.next_seed(seed, played)
        played.append(games.pick(seed).name)
        seed += 1
    assert sorted(played) == sorted(c.name for c in CAUSES), "every cause once, none twice"
    assert games.next_seed(42, played) == 42, "once all were played, any may come again"


def test_a_played_game_is_found_by_its_id_or_the_last(tmp_path):
    record = {"current": None, "played": [{"started_at": 0.0}, {"started_at": 3600.0}]}
    assert games.game_id(3600.0) == "19700101-010000"
    assert games.find(record)["started_at"] == 3600.0
    assert games.find(record, "19700101-000000")["started_at"] == 0.0
    with pytest.raises(LookupError, match="no game 20000101-000000"):
        games.find(record, "20000101-000000")
    with pytest.raises(LookupError, match="no game day was played"):
        games.find({"current": None, "played": []})


def test_the_progress_record_keeps_the_game_days_score_beside_the_exercises(tmp_path):
    progress.record("02-database-failure", True, [], [], home=tmp_path, now=1.0)
    assert progress.game_day(tmp_path) == {}
    assert "no game answered yet" in progress.game_day_lines(tmp_path)[0]
    progress.record_game(85, True, tmp_path, now=2.0)
    progress.record_game(0, False, tmp_path, now=3.0)
    progress.record_series(2, 2, 85, tmp_path, now=4.0)
    progress.record("03-load-testing", False, [], [], home=tmp_path, now=5.0)
    score = progress.game_day(tmp_path)
    assert {k: score[k] for k in ("games", "right", "points", "best")} == {
        "games": 2, "right": 1, "points": 85, "best": 85}
    assert score["series"] == [{"rounds": 2, "played": 2, "points": 85, "at": 4.0}]
    assert set(progress.load(tmp_path)) == {"02-database-failure", "03-load-testing"}
    shown = "\n".join(progress.game_day_lines(tmp_path))
    assert "game day: 2 game(s) answered, 1 right, 85 points in all" in shown
    assert "last series 85 points in 2 of 2 round(s)" in shown


def played_game() -> dict:
    return {"cause": "worker-down", "seed": 3, "started_at": 1000.0, "hints": 1,
            "hint_at": [1040.0], "traffic": False, "answer": "worker-down", "right": True,
            "answered_at": 1090.0, "seconds": 90.0, "points": 85, "recovered_at": 1101.0,
            "alerts": {"pending": ["WorkerDown", 1005.0], "firing": ["WorkerDown", 1020.0]}}


def test_the_timeline_orders_what_the_game_recorded():
    lines = timeline.lines(played_game())
    assert [line.split("  ", 1)[1] for line in lines] == [
        "the fault started: the Celery worker is stopped (worker-down)",
        "first alert pending: WorkerDown", "first alert firing: WorkerDown", "hint 1 taken",
        "answered worker-down: right, 85 points; the fault switched off",
        "recovered: /health answers 200, no fault on"]
    assert lines[0].startswith("00:16:40 UTC")
    quiet = {**played_game(), "alerts": {}}
    assert timeline.lines(quiet)[-1] == "(no alert went firing during the game)"


def test_the_postmortem_skeleton_has_the_timeline_and_every_section_to_fill(tmp_path):
    game = played_game()
    where = postmortem.write(tmp_path, game)
    assert where == tmp_path / "postmortems" / "19700101-001640.md"
    text = where.read_text()
    assert postmortem.game_of(text) == "19700101-001640"
    assert all(line in text for line in timeline.lines(game))
    assert postmortem.unfilled(text) == list(postmortem.SECTIONS)
    assert postmortem.times(text) == {}, "a placeholder gives no time"
    filled = text
    for todo in ("TODO: what broke, what users saw, for how long, how it was found and ended "
                 "(three sentences).", "TODO: the cause, and why it had the effects above "
                 "(the chain from the cause to the users).",
                 "TODO: add what you looked at and what you found, with times."):
        filled = filled.replace(todo, "Written.")
    filled = filled.replace("- Start: TODO HH:MM:SS", "- Start: 00:16:45").replace(
        "- End: TODO HH:MM:SS", "- **End**: 00:18:20 UTC").replace(
        "- Detected at: TODO HH:MM:SS", "- Detected at: 00:17")
    assert postmortem.times(filled) == {"impact_start": "00:16:45", "impact_end": "00:18:20",
                                        "detected_at": "00:17"}
    assert postmortem.unfilled(filled) == ["Impact", "Detection", "Actions"]
    where.write_text("I wrote this.")
    assert postmortem.write(tmp_path, game).read_text() == "I wrote this.", "never overwritten"
    assert postmortem.unfilled("## Summary\n\nok\n") == list(postmortem.SECTIONS[1:])


class Grafana(BaseHTTPRequestHandler):
    received: list[tuple[str, dict, dict]] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, dict(self.headers), body))
        answer = json.dumps({"id": len(self.received), "message": "Annotation added"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def test_the_debrief_marks_the_faults_window_on_each_grafana_dashboard():
    server = HTTPServer(("127.0.0.1", 0), Grafana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        said = timeline.annotate(f"http://127.0.0.1:{server.server_port}", "admin", "s3cret",
                                 played_game())
    finally:
        server.shutdown()
    assert "marked on Grafana's dashboards" in said, said
    assert [body["dashboardUID"] for _, _, body in Grafana.received] == timeline.dashboards()
    path, headers, body = Grafana.received[0]
    assert path == "/api/annotations"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"admin:s3cret").decode()
    assert (body["time"], body["timeEnd"]) == (1_000_000, 1_101_000), "start to recovery, ms"
    assert body["tags"] == ["gameday", "worker-down"] and "worker-down" in body["text"]


def test_an_unreachable_grafana_is_said_in_one_line():
    server = HTTPServer(("127.0.0.1", 0), Grafana)
    port = server.server_port
    server.server_close()  # nothing listens there now
    said = timeline.annotate(f"http://127.0.0.1:{port}", "admin", "x", played_game())
    assert said.startswith("Grafana did not answer") and "\n" not in said
