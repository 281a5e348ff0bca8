"""labkit is one package under one name, and its standard-library copies of the core's facts
(payment methods, final order states, the correlation-id pattern) are the core's."""

import re
import subprocess
import sys
from pathlib import Path

from api import schemas
from labctl.config import ROOT
from recordstore import correlation, states
from recordstore.models import PaymentMethod
from scripts.labkit import shop

# Every kind of importer: the scripts, the exercises' checks, bench, labctl's dashboard, tests.
IMPORTERS = """
import importlib.util, pathlib, sys
for path in sorted(pathlib.Path("exercises").glob("*/check.py")):
    spec = importlib.util.spec_from_file_location(f"check_{path.parent.name[:2]}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
import scripts.check_stack, scripts.trace_purchase_journey
import bench.cli, bench.spans, labctl.dashboard
import tests.unit.test_checks, tests.unit.test_journey_tree, tests.unit.test_load_model
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] == "labkit")))
print("scripts.labkit" in sys.modules)
"""


def test_every_importer_names_labkit_scripts_labkit():
    """`labkit` (scripts/ on sys.path) and `scripts.labkit` would be two module objects with
    two copies of every class: an `except http.Unreachable` of one misses the other's."""
    proc = subprocess.run([sys.executable, "-c", IMPORTERS], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    bare, dotted = proc.stdout.splitlines()
    assert bare == "", f"imported as `labkit` too: {bare}"
    assert dotted == "True"


def test_payment_methods_are_the_cores():
    assert set(shop.PAYMENT_METHODS) == {m.value for m in PaymentMethod}
    assert schemas.CheckoutIn.model_fields["payment_method"].annotation is PaymentMethod


def test_final_statuses_are_the_state_machines():
    assert set(shop.FINAL_STATUSES) == {s.value for s in states.FINAL}


def test_the_correlation_id_pattern_is_the_apis_and_the_gateways():
    assert shop.CORRELATION_ID.pattern == correlation.PATTERN.pattern
    template = (ROOT / "nginx" / "templates" / "default.conf.template").read_text()
    maps = re.findall(r"map \$http_x_correlation_id .*?\n\}", template, re.S)
    gateway = set(re.findall(r'"~(\^[^"]+\$)"', "".join(maps)))
    assert gateway == {shop.CORRELATION_ID.pattern}


def sources(*tops: str) -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for top in tops
            for p in sorted((ROOT / top).rglob("*.py")) if "__pycache__" not in p.parts}


def test_one_json_client():
    """scripts/labkit/http.py is the HTTP client of the scripts, bench, the dashboard and the
    tests, and of ./lab's commands. Not JSON clients: the tracestore test posts raw OTLP
    protobuf, bench empties a queue with a bare DELETE (RabbitMQ's management API answers
    labkit's JSON request with 406), and labctl's health probe asks any endpoint for a 2xx
    with no Accept header (RabbitMQ's metrics among them)."""
    own = {"scripts/labkit/http.py", "tests/unit/test_tracestore.py", "bench/stack.py",
           "labctl/proc.py", str(Path(__file__).resolve().relative_to(ROOT))}
    found = [path for path, text in sources("bench", "labctl", "scripts", "tests",
                                            "exercises").items()
             if "urlopen(" in text and path not in own]
    assert found == []


def test_one_rule_for_a_span_in_error():
    """Span.error in scripts/labkit/jaeger.py says when a span is in error; nobody else reads
    the error tag or the OpenTelemetry status of a span."""
    rule = re.compile(r"""["']error["']\)? in \(True|otel\.status_code["']\)? ?== ?["']ERROR""")
    everything = sources("bench", "labctl", "scripts", "tests", "exercises")
    assert [path for path, text in everything.items() if rule.search(text)] == [
        "scripts/labkit/jaeger.py"]


def test_a_span_with_an_error_status_marks_its_trace_on_the_dashboard():
    from labctl import dashboard

    trace = {"traceID": "ab" * 16, "processes": {"p": {"serviceName": "worker"}}, "spans": [
        {"spanID": "1", "operationName": "process_order", "processID": "p", "startTime": 0,
         "duration": 2000, "tags": [{"key": "otel.status_code", "value": "ERROR"}]}]}
    rows = dashboard._trace_table(lambda: [trace])
    assert rows[0] == "1 trace(s), 1 with errors"
    assert rows[1].endswith("ERROR") and "process_order" in rows[1] and "2.0 ms" in rows[1]
