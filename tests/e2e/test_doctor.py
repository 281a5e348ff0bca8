"""`./lab doctor` follows each signal end to end and names the first place it breaks; `./lab
status` says how far the telemetry has warmed up (issue 25, part 3)."""

import json

import pytest

from labkit.doctor import BROKEN, OK, SKIPPED
from tests.helpers import lab_command, lab_run, wait_for

pytestmark = pytest.mark.stack


def doctor(lab) -> tuple[int, dict[str, dict[str, dict]]]:
    """Its exit status, and its hops as {signal: {hop: {...}}}."""
    r = lab_run(lab, "doctor", "--json", timeout_s=120)
    hops = json.loads(r.stdout)["hops"]
    by_signal: dict[str, dict[str, dict]] = {}
    for hop in hops:
        by_signal.setdefault(hop["signal"], {})[hop["hop"]] = hop
    return r.returncode, by_signal


def test_the_doctor_follows_every_signal_of_a_healthy_lab(lab):
    code, hops = doctor(lab)
    assert set(hops) == {"request", "traces", "metrics", "logs", "alerts"}
    assert list(hops["traces"]) == ["emitter", "backend", "stored", "query"]
    assert list(hops["metrics"]) == ["backend", "scrape", "stored", "query"]
    broken = [h for signal in hops.values() for h in signal.values() if h["status"] != OK]
    assert code == 0 and broken == []
    # The request it followed is its own, in the trace and in the log it names.
    correlation_id = hops["request"]["through the gateway"]["detail"].split()[-1]
    assert correlation_id.startswith("doctor-")
    assert correlation_id in hops["logs"]["emitter"]["detail"]
    assert "API traffic" in hops["metrics"]["query"]["detail"]


def telemetry_rows(lab) -> tuple[str, dict[str, str]]:
    """`./lab status`'s telemetry head line, and its rows by signal."""
    lines = lab_run(lab, "status").stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("telemetry: "))
    return lines[head], {line.split()[0]: line for line in lines[head + 1:head + 4]}


def test_status_says_how_far_the_telemetry_has_warmed_up(lab, gateway):
    _, rows = telemetry_rows(lab)
    assert set(rows) == {"traces", "targets", "windows"}
    assert rows["targets"].split()[1] == "ready", rows["targets"]
    # The first trace comes with the first request; then the row says so.
    assert gateway.get("/products").status_code == 200
    head, rows = wait_for(lambda: (found := telemetry_rows(lab))[1]["traces"].split()[1] ==
                          "ready" and found, 20, "the traces row to say a trace is stored")
    assert "api" in rows["traces"]
    # Ready overall only when every row is: the head never says ready over a row that is not.
    assert (head == "telemetry: ready") == all(
        row.split()[1] == "ready" for row in rows.values())


@pytest.mark.disruptive
def test_a_broken_trace_store_is_named_as_where_traces_break(lab):
    lab_command(lab, "stop", "jaeger")
    try:
        code, hops = doctor(lab)
    finally:
        lab_command(lab, "start", "jaeger")
    assert code == 1
    traces = hops["traces"]
    assert traces["emitter"]["status"] == OK  # the API still made its trace
    assert traces["backend"]["status"] == BROKEN
    assert "trace store does not answer" in traces["backend"]["detail"]
    assert {traces["stored"]["status"], traces["query"]["status"]} == {SKIPPED}
    # The other signals are not blamed for it.
    others = [h for s in ("metrics", "logs", "alerts") for h in hops[s].values()]
    assert all(h["status"] == OK for h in others), others
    code, _ = doctor(lab)
    assert code == 0, "mended: the doctor finds every signal again"
