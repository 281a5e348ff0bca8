"""After a game day's answer: the verdict with its points, the signals that show the cause
soonest, the timeline (the fault, the first alert pending and firing, the hints, the answer,
the recovery), in compose the fault's window marked on Grafana's dashboards, and the score in
the progress record; and the postmortem's skeleton (`./lab gameday postmortem`)."""

from gameday import games, postmortem, timeline
from gameday.causes import BY_CAUSE
from labctl.config import LabConfig
from labctl.proc import LabError
from labkit import progress
from labkit.prometheus import Prometheus
from labkit.settings import run_mode


def recovered(cfg: LabConfig, verdict: dict, at: float) -> None:
    """What the record keeps of a game once the lab is healthy again: when, and the first
    alert pending and firing from the fault's start until then (Prometheus's ALERTS)."""
    verdict["recovered_at"] = at
    verdict["alerts"] = timeline.alert_starts(Prometheus(cfg.url("PROMETHEUS_PORT")),
                                              verdict["started_at"], at)


def verdict_lines(verdict: dict) -> list[str]:
    cause = BY_CAUSE[verdict["cause"]]
    hints = verdict["hints"]
    said = (f"Right: {cause.title} ({cause.name})." if verdict["right"] else
            f"Wrong: you said {verdict['answer']}; it was: {cause.title} ({cause.name}).")
    return [said,
            f"Time to diagnosis: {duration(verdict['seconds'])}, with "
            f"{hints} hint{'' if hints == 1 else 's'}.",
            f"Points: {verdict['points']} ({games.SCORING}).",
            "The signals that show it soonest:",
            *[f"  {n}. {line}" for n, line in enumerate(cause.fastest, 1)],
            "The timeline (UTC):",
            *[f"  {line}" for line in timeline.lines(verdict)],
            f"Write its postmortem (exercise 16): ./lab gameday postmortem --game "
            f"{games.game_id(verdict['started_at'])}"]


def annotate(cfg: LabConfig, verdict: dict) -> str | None:
    """In compose, the fault's window on Grafana's dashboards (one line either way); natively
    there is no Grafana, and the printed timeline is the record."""
    if run_mode(home=cfg.home) != "compose":
        return None
    return timeline.annotate(cfg.url("GRAFANA_PORT"), cfg.env.get("GRAFANA_ADMIN_USER", "admin"),
                             cfg.env.get("GRAFANA_ADMIN_PASSWORD", ""), verdict)


def score(cfg: LabConfig, verdict: dict) -> None:
    """The game's points in the progress record (`./lab progress`)."""
    try:
        progress.record_game(verdict["points"], verdict["right"], cfg.home)
    except OSError as exc:
        print(f"(progress not recorded: {exc})")


def series_over(cfg: LabConfig, series: dict) -> str:
    """A series of rounds ended: its total in the progress record; the line that says so."""
    try:
        progress.record_series(series["rounds"], len(series["causes"]), series["points"],
                               cfg.home)
    except OSError as exc:
        print(f"(progress not recorded: {exc})")
    return (f"The series is over: {series['points']} points in {len(series['causes'])} of "
            f"{series['rounds']} round(s) (./lab progress keeps the score).")


def write_postmortem(cfg: LabConfig, wanted: str) -> None:
    """`./lab gameday postmortem [--game ID]`: the skeleton of a played game's postmortem."""
    try:
        game = games.find(games.load(cfg.home), wanted or "")
    except LookupError as exc:
        raise LabError(f"gameday: {exc}") from None
    target = postmortem.path(cfg.home, game)
    existed = target.exists()
    postmortem.write(cfg.home, game)
    print(target)
    print("It is already there: edit it (nothing was overwritten)." if existed else
           "Fill in every section (each TODO line), then: ./lab check 16")


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
