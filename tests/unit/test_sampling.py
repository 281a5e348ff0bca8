"""`./lab sampling`: the ratio as the standard OTEL_TRACES_SAMPLER variables, kept in the lab's
home for every later start (natively and in compose), the compose command that recreates the
API and the worker with it, and what the SDK then does with it (recordstore.telemetry)."""

import shutil
import subprocess
from argparse import Namespace

import pytest
import yaml
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from labctl import components, compose
from labctl import sampling as switch
from labctl.config import ROOT, load
from labkit import sampling
from recordstore.telemetry import sampler


@pytest.mark.parametrize(("text", "ratio"), [
    ("0.1", 0.1), ("10%", 0.1), ("off", 1.0), ("1", 1.0), ("1.0", 1.0), ("0", 0.0),
    (" 2% ", 0.02)])
def test_a_ratio_is_read_as_a_share_of_traces(text, ratio):
    assert sampling.parse_ratio(text) == pytest.approx(ratio)


@pytest.mark.parametrize("text", ["1.5", "-0.1", "ten", "", "200%"])
def test_what_is_no_ratio_is_refused(text):
    with pytest.raises(ValueError):
        sampling.parse_ratio(text)


def test_a_ratio_is_the_standard_variables():
    assert sampling.variables(0.1) == {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                                       "OTEL_TRACES_SAMPLER_ARG": "0.1"}
    assert sampling.variables(1.0)["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"


def test_the_choice_is_kept_in_the_lab_home_with_its_history(tmp_path):
    assert sampling.current(tmp_path) is None and sampling.environment(tmp_path) == {}
    sampling.record(tmp_path, 0.1, at=100.0)
    sampling.record(tmp_path, 1.0, at=160.0)
    assert sampling.current(tmp_path) == 1.0
    assert sampling.periods(tmp_path) == [(100.0, 160.0, 0.1), (160.0, None, 1.0)]
    assert "every trace kept" in sampling.describe(1.0)
    assert "10 % of the traces kept" in sampling.describe(0.1)


def test_the_api_and_the_worker_start_with_it_whoever_starts_them(tmp_path):
    """The components read it at each start: the supervisor's restarts run it too."""
    cfg = load({"LAB_HOME": str(tmp_path)})
    api, worker = components.BY_NAME["api"], components.BY_NAME["worker"]
    assert "OTEL_TRACES_SAMPLER" not in api.env(cfg)  # .env's, through cfg.env
    assert cfg.env["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"
    sampling.record(tmp_path, 0.25)
    for comp in (api, worker):
        assert {k: comp.env(cfg)[k] for k in sampling.variables(0.25)} == sampling.variables(
            0.25), comp.name


@pytest.mark.parametrize(("cmd", "wait"), [(["docker", "compose"], True),
                                           (["docker-compose"], False)])
def test_compose_recreates_the_api_and_the_worker_alone(cmd, wait):
    argv = switch.compose_argv(cmd)
    assert argv[:len(cmd)] == cmd
    rest = argv[argv.index("up"):]
    assert rest == ["up", "-d", "--no-deps", "--force-recreate", *(["--wait"] * wait),
                    "api", "worker"]


def test_in_compose_the_switch_records_and_recreates_with_the_variables(monkeypatch, tmp_path):
    ran = []
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    monkeypatch.setenv("LAB_MODE", "compose")
    monkeypatch.setattr(compose, "compose_command", lambda: ["docker", "compose"])
    monkeypatch.setattr(switch.subprocess, "run", lambda argv, **kw: ran.append((argv, kw)) or
                        subprocess.CompletedProcess(argv, 0))
    assert switch.run(Namespace(ratio="0.1")) == 0
    (argv, kw), = ran
    assert argv[-2:] == ["api", "worker"] and "--force-recreate" in argv
    assert kw["env"]["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert kw["env"]["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
    assert sampling.current(tmp_path) == 0.1
    # Every later compose command (./lab up) interpolates the file with it too.
    assert compose.environment(load())["OTEL_TRACES_SAMPLER_ARG"] == "0.1"


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not here")
def test_compose_gives_the_api_and_the_worker_the_chosen_variables(tmp_path):
    sampling.record(tmp_path, 0.1)
    env = compose.environment(load({"LAB_HOME": str(tmp_path)}), {"PATH": "/usr/bin:/bin"})
    r = subprocess.run(["docker-compose", "config"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    services = yaml.safe_load(r.stdout)["services"]
    for name in ("api", "worker"):
        assert services[name]["environment"]["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
        assert services[name]["environment"]["OTEL_TRACES_SAMPLER_ARG"] == "0.1"


@pytest.fixture
def one_in_ten(monkeypatch):
    for key, value in sampling.variables(0.1).items():
        monkeypatch.setenv(key, value)
    return TracerProvider(sampler=sampler()).get_tracer("test")


def test_a_ratio_keeps_that_share_of_the_requests_traces(one_in_ten):
    kept = sum(one_in_ten.start_span("POST /checkout", kind=trace.SpanKind.SERVER).is_recording()
               for _ in range(4000))
    assert 300 <= kept <= 500  # 400 expected; 5 standard deviations either side


def test_an_unsampled_request_still_has_a_trace_id_that_it_passes_on(one_in_ten):
    """What exemplars and the order's message carry: the id of a trace never kept, whose flags
    say so; the worker's span under it follows that decision."""
    span = next(s for s in (one_in_ten.start_span("POST /checkout", kind=trace.SpanKind.SERVER)
                            for _ in range(100)) if not s.is_recording())
    ctx = span.get_span_context()
    assert ctx.is_valid and ctx.trace_id and not ctx.trace_flags.sampled
    with trace.use_span(span):
        assert not one_in_ten.start_span("apply_async", kind=trace.SpanKind.PRODUCER).is_recording()
    remote = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        ctx.trace_id, ctx.span_id, is_remote=True, trace_flags=TraceFlags(0))))
    assert not one_in_ten.start_span("run/process_order", remote,
                                     kind=trace.SpanKind.CONSUMER).is_recording()
    kept = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        ctx.trace_id, ctx.span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))))
    assert one_in_ten.start_span("run/process_order", kept,
                                 kind=trace.SpanKind.CONSUMER).is_recording()


def test_with_the_lab_down_the_choice_waits_for_its_next_start(monkeypatch, tmp_path, capsys):
    from labctl.proc import MARKER

    monkeypatch.setenv(MARKER, "")  # with_marker sets it for what it would start: restored
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    monkeypatch.setenv("LAB_MODE", "native")
    assert switch.run(Namespace(ratio="50%")) == 0
    assert "not running" in capsys.readouterr().out
    assert sampling.current(tmp_path) == 0.5
    assert not (tmp_path / "run" / "api.pid").exists()
