#!/usr/bin/env python3
"""Exercise 10's check: the learner's own alert, from their rule file as Prometheus loaded it
(`./lab rules load`, which records each load): their promtool test passes, the alert went
pending, then firing, and not before its condition held; what they read off it (its name,
when it went firing, its expression's value then); then the condition off and the file
unloaded."""

import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: labkit

from labkit.checks import Lab, NotYet, Question, Step, main  # noqa: E402
from labkit.own_rules import (  # noqa: E402
    PromtoolMissing,
    alerting_rules,
    is_learners,
    loaded_during,
    promtool,
    read_record,
)
from labkit.prometheus import PrometheusError  # noqa: E402
from labkit.questions import (  # noqa: E402
    Truth,
    between,
    clock_time,
    first_points,
    one_of,
    shown_number,
)
from labkit.settings import read_env  # noqa: E402

STEP_S = 5  # the graph's resolution: Prometheus's scrape and evaluation interval
LOAD_HINT = "load your rule file: ./lab rules load my-alert.yml (the README's step 3)"


def loads(lab: Lab) -> list[dict]:
    return loaded_during(read_record(lab.lab_home), lab.since)


def alerts(lab: Lab) -> dict[str, dict]:
    """{name: {query, for_s}} of the learner's alerts in the window: those Prometheus holds
    from their files now (/api/v1/rules), and those `./lab rules load` recorded it loaded."""
    if "alerts" not in lab.memo:
        found = {a["name"]: a for entry in loads(lab) for a in entry["alerts"]}
        groups = lab.prometheus.rule_groups()
        found.update({a["name"]: a for g in groups if is_learners(g) for a in alerting_rules(g)})
        lab.memo["alerts"], lab.memo["loaded_now"] = found, [g for g in groups if is_learners(g)]
    return lab.memo["alerts"]


def start(lab: Lab) -> float:
    """The window's start as Prometheus takes it, to the millisecond."""
    return int(lab.since * 1000) / 1000


def graph(lab: Lab, expr: str) -> dict[float, float]:
    """Every point of every series of `expr` over the window, a point every 5 s."""
    try:
        series = lab.prometheus.query_range(expr, start(lab), time.time(), STEP_S)
    except PrometheusError as exc:
        raise NotYet(f"Prometheus refused {expr}: {exc}") from None
    points: dict[float, float] = {}
    for s in series:
        for t, v in s["values"]:
            if v != "NaN":
                points.setdefault(round(float(t), 3), float(v))
    return points


def activity(lab: Lab, name: str) -> dict[str, float]:
    """When the alert first went pending and firing in the window ({} for neither); one
    already active as the window began is "early"."""
    key = f"activity:{name}"
    if key not in lab.memo:
        seen = first_points(lab, f'ALERTS{{alertname="{name}"}}', "alertstate", start(lab),
                            STEP_S)
        if seen and min(seen.values()) <= start(lab) + 0.001:  # the graph's first point
            seen["early"] = min(seen.values())
        lab.memo[key] = seen
    return lab.memo[key]


def fired(lab: Lab) -> dict[str, float]:
    """{name: when it went firing} of the learner's alerts that went firing in the window."""
    out = {}
    for name in alerts(lab):
        seen = activity(lab, name)
        if "firing" in seen and "early" not in seen:
            out[name] = seen["firing"]
    return out


def answered_alert(lab: Lab) -> tuple[str, float]:
    """The alert answered, when it went firing in the window, else the first that did."""
    went = fired(lab)
    if not went:
        raise NotYet("none of your alerts went firing in the window yet")
    given = lab.answers.get("alertname", "").strip().strip("`'\"")
    name = given if given in went else min(went, key=went.get)
    return name, went[name]


def fired_at(lab: Lab) -> Truth:
    return clock_time(answered_alert(lab)[1], 60)


def value(lab: Lab) -> Truth:
    """What the alert's expression was as it went firing: any value it took from 30 s before
    to a minute after (the Alerts page shows the latest), within 10 %."""
    name, at = answered_alert(lab)
    seen = [v for t, v in graph(lab, alerts(lab)[name]["query"]).items()
            if at - 30 <= t <= at + 60]
    if not seen:
        raise NotYet("your alert's expression has no value around when it went firing")
    low, high = min(seen), max(seen)
    return between(low - abs(low) * 0.1, high + abs(high) * 0.1,
                   shown=" to ".join(dict.fromkeys([shown_number(low), shown_number(high)])),
                   tolerance="± 10 %")


def test_passes(lab: Lab) -> str:
    """The learner's promtool test (the one `./lab rules load` recorded) passes, and tests one of
    their alerts."""
    if lab.mode == "kubernetes":
        raise NotYet("`./lab rules load` works natively and in compose only")
    tested = [e for e in loads(lab) if e.get("test")]
    if not loads(lab):
        raise NotYet("you loaded no rule file since the window began")
    if not tested:
        raise NotYet("no promtool test beside your rule file: write my-alert.test.yml and load "
                     "the rules again (or name the test: ./lab rules load FILE --test TEST)")
    entry = tested[-1]
    test, source = Path(entry["test"]), Path(entry["source"])
    if not test.is_file():
        raise NotYet(f"your test {test} is gone")
    if source.is_file() and hashlib.sha256(source.read_bytes()).hexdigest() != entry.get(
            "sha256"):
        raise NotYet(f"{source.name} changed since you loaded it: load it again, so that the "
                     "rules your test tests are those Prometheus runs")
    text = test.read_text(errors="replace")
    if source.name not in text:
        raise NotYet(f"{test.name} does not test {source.name}: name it in its rule_files")
    if not any(f"alertname: {name}" in text for name in alerts(lab)):
        raise NotYet(f"{test.name} tests none of your alerts: give it an alert_rule_test with "
                     "your alert's alertname")
    try:
        r = promtool(lab.mode, read_env().get("PROMETHEUS_IMAGE", ""), test.parent, "test",
                     "rules", test.name)
    except PromtoolMissing as exc:
        raise NotYet(str(exc)) from None
    if r.returncode != 0:
        said = " ".join((r.stdout + r.stderr).split())
        raise NotYet(f"promtool test rules {test.name} fails: {said[-400:]}")
    return f"promtool test rules {test.name} passes"


def loaded(lab: Lab) -> str:
    if not alerts(lab):
        raise NotYet("Prometheus held no alerting rule of yours since the window began")
    count = len(alerts(lab))
    return f"Prometheus loaded {count} alert rule{'s' * (count != 1)} of yours"


def pending_then_firing(lab: Lab) -> str:
    went = [(name, activity(lab, name)) for name in alerts(lab)]
    if any("pending" in seen and "firing" in seen and seen["firing"] >= seen["pending"]
           and "early" not in seen for _, seen in went):
        return "your alert went pending, then firing"
    if any("firing" in seen and "pending" not in seen for _, seen in went):
        raise NotYet("your alert went firing without pending first: give it a `for:`")
    if any("pending" in seen for _, seen in went):
        raise NotYet("your alert went pending, and has not gone firing yet (its `for:`)")
    raise NotYet("none of your alerts went pending since the window began")


def not_before_condition(lab: Lab) -> str:
    """Each alert of theirs that went active went pending only once its expression held, and
    that expression did not hold at some moment of the window before: a condition that came
    on, not one that always holds (`expr: vector(1)`)."""
    active = {n: min(s.values()) for n in alerts(lab) if (s := activity(lab, n))}
    if not active:
        raise NotYet("none of your alerts went pending in the window yet")
    for name, at in active.items():
        if "early" in activity(lab, name):
            raise NotYet("your alert was already pending or firing as the window began: "
                         "take a window that starts before it (--since)")
        on = graph(lab, alerts(lab)[name]["query"])
        grid = [round(start(lab) + k * STEP_S, 3)
                for k in range(int((at - start(lab)) // STEP_S) + 1)]
        off = [t for t in grid if t not in on and t < at]
        if not off:
            raise NotYet("your alert's expression held at every moment of the window before it "
                         "went pending: it watches no condition that came on")
        began = min((t for t in on if t > off[-1]), default=at)
        if at < began - 2 * STEP_S:
            raise NotYet("your alert went pending before its expression held")
    return "your alert went pending only once its condition held"


def all_off(lab: Lab) -> str:
    went = [n for n in alerts(lab) if activity(lab, n)]
    for name in went:
        if lab.query(alerts(lab)[name]["query"]):
            raise NotYet("your alert's condition still holds")
    if lab.memo["loaded_now"]:
        raise NotYet("your rule file is still loaded")
    return "the condition is off and your rules are unloaded"


QUESTIONS = [
    Question("alertname", "The name of your alert that went firing, as Prometheus loaded it?",
             lambda lab: one_of(fired(lab)),
             "Prometheus's Alerts page (/alerts) lists each rule by name, under your rule "
             "file's group; or ./lab rules show"),
    Question("fired_at", "When did it go firing (HH:MM, UTC)?", fired_at,
             "graph ALERTS{alertstate=\"firing\"} in Prometheus with your alert's name, and "
             "read where its line begins (hover it: the time is UTC)"),
    Question("value", "The value of its expression as it went firing?", value,
             "the Alerts page shows the alert's Value; or graph your alert's expression "
             "without its comparison and read it at that minute"),
]

STEPS = [
    Step("Your promtool test passes", test_passes,
         "write a test beside your rules (the README's step 2) and run it yourself: "
         "promtool test rules my-alert.test.yml"),
    Step("Prometheus loaded your alert", loaded, LOAD_HINT),
    Step("Your alert went pending, then firing", pending_then_firing,
         "switch the condition on (the README's step 4) and wait out its `for:`; watch the "
         "Alerts page"),
    Step("It went pending only once its condition held", not_before_condition,
         "write an expression that is false until you trigger it (a comparison with a "
         "threshold), load it before you trigger it, then trigger it"),
    Step("The condition is off and your rules are unloaded", all_off,
         "./lab chaos reset, then ./lab rules unload"),
]

if __name__ == "__main__":
    main("Exercise 10: your own alert, pending then firing, tested by promtool", STEPS,
         QUESTIONS)
