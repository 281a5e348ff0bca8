"""The game day without a stack: the seed's pick, the causes against the lab's components,
faults and alerts, the grading, the record, and the refusals that must change nothing."""

import json
import re

import pytest

from gameday import cli as game_cli
from gameday import games
from gameday.causes import CAUSES
from labctl.components import BY_NAME
from labctl.config import LabConfig
from labctl.proc import LabError
from recordstore import chaos
from tests.unit.test_exercise_docs import ALERT_NAMES

NAMES = [c.name for c in CAUSES]


def test_a_seed_picks_the_same_cause_every_time_and_every_cause_has_a_seed():
    assert [games.pick(s).name for s in range(50)] == [games.pick(s).name for s in range(50)]
    assert {games.pick(s).name for s in range(200)} == set(NAMES)
    for name in NAMES:
        assert games.pick(games.seed_for(name)).name == name


@pytest.mark.parametrize("cause", CAUSES, ids=NAMES)
def test_each_cause_is_a_component_of_the_lab_or_faults_the_api_takes(cause):
    ways = (bool(cause.stop), bool(cause.faults), cause.sampling is not None)
    assert sum(ways) == 1, "a component stopped, faults, or a trace sampling ratio: one"
    if cause.stop:
        assert cause.stop in BY_NAME
    elif cause.faults:
        assert chaos.validate(dict(cause.faults)) == cause.faults
        assert all(v > 0 for v in cause.faults.values()), "a fault at 0 is off"
    else:
        assert 0 < cause.sampling < 1, "a ratio of 1 keeps every trace: no fault"
    assert len(cause.fastest) >= 2 and cause.title
    for alert in re.findall(r"\b(?:[A-Z][a-z]+){2,}\b", " ".join(cause.fastest)):
        assert alert in ALERT_NAMES, f"{cause.name} names alert {alert}, which does not exist"


@pytest.mark.parametrize("cause", CAUSES, ids=NAMES)
def test_an_answer_is_graded_right_or_wrong(cause):
    game = {"cause": cause.name, "seed": 1, "started_at": 1000.0, "hints": 2, "traffic": False}
    right = games.grade(game, cause.name.upper(), 1095.5)
    assert (right["right"], right["answer"], right["seconds"]) == (True, cause.name, 95.5)
    other = next(n for n in NAMES if n != cause.name)
    wrong = games.grade(game, f" {other} ", 1010)
    assert (wrong["right"], wrong["answer"], wrong["cause"]) == (False, other, cause.name)
    assert wrong["hints"] == 2


def test_an_unknown_cause_is_refused_naming_the_causes():
    with pytest.raises(ValueError, match="db-down, broker-down.*cpu-hotspot"):
        games.cause("the network")


def test_the_record_starts_empty_and_survives_a_round_trip(tmp_path):
    assert games.load(tmp_path) == {"current": None, "played": []}
    record = {"current": {"cause": "db-down"}, "played": [{"cause": "worker-down"}]}
    games.save(tmp_path / "home", record)
    assert games.load(tmp_path / "home") == record
    assert not list((tmp_path / "home").glob(".*.tmp"))  # written whole, then renamed


def config(tmp_path) -> LabConfig:
    return LabConfig(env={"GATEWAY_PORT": "9", "PROMETHEUS_PORT": "9", "JAEGER_UI_PORT": "9",
                          "ALERT_RECEIVER_PORT": "9", "LAB_MODE": "native"}, home=tmp_path)


def running(tmp_path) -> dict:
    record = {"current": {"cause": "db-down", "seed": 2, "started_at": 1000.0, "hints": 1,
                          "traffic": False}, "played": []}
    games.save(tmp_path, record)
    return record


def test_a_wrong_cause_name_changes_nothing_and_the_game_goes_on(tmp_path):
    record = running(tmp_path)
    with pytest.raises(LabError, match="no cause 'dns'"):
        game_cli.answer(config(tmp_path), "dns")
    assert json.loads((tmp_path / games.RECORD).read_text()) == record


def test_a_second_game_is_refused_while_one_runs(tmp_path):
    record = running(tmp_path)
    with pytest.raises(LabError, match="already running"):
        game_cli.start(config(tmp_path), seed=None, with_traffic=False)
    assert games.load(tmp_path) == record


def test_hint_answer_and_stop_need_a_running_game(tmp_path):
    cfg = config(tmp_path)
    for call in (lambda: game_cli.hint(cfg), lambda: game_cli.answer(cfg, "db-down"),
                 lambda: game_cli.give_up(cfg)):
        with pytest.raises(LabError, match="no game day is running"):
            call()


def test_status_tells_the_time_and_hints_but_never_the_cause(tmp_path, capsys):
    running(tmp_path)
    assert game_cli.status(config(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "hints used: 1 of 3" in out and "db-down" not in out
    games.save(tmp_path, {"current": None, "played": [games.grade(
        {"cause": "db-down", "seed": 2, "started_at": 1000.0, "hints": 1, "traffic": False},
        "worker-down", 1130)]})
    assert game_cli.status(config(tmp_path)) == 3
    out = capsys.readouterr().out
    assert "No game day is running" in out and "db-down" in out and "wrong in 2 min 10 s" in out


def test_the_causes_command_lists_every_cause_once_with_what_it_breaks():
    from gameday import cli

    lines = cli.causes_list()
    assert [line.split()[0] for line in lines] == NAMES
    assert all(line.split(None, 1)[1] == c.title for line, c in zip(lines, CAUSES, strict=True))
    assert len(NAMES) == len(set(NAMES))
