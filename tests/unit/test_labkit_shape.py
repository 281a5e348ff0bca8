"""labkit's standard-library copies of the core's facts
(payment methods, final order states, the correlation-id pattern) are the core's."""

import re
from pathlib import Path

import pytest

from api import schemas
from labctl.config import ROOT
from labkit import rules, shop
from recordstore import correlation, states
from recordstore.models import OrderStatus, PaymentMethod


def test_payment_methods_are_the_cores():
    assert set(shop.PAYMENT_METHODS) == {m.value for m in PaymentMethod}
    assert schemas.CheckoutIn.model_fields["payment_method"].annotation is PaymentMethod


def test_the_shared_order_states_are_the_state_machines():
    assert set(rules.FINAL_STATUSES) == {s.value for s in states.FINAL}
    assert set(rules.ORDER_STEPS) | set(rules.FINAL_STATUSES) == {s.value for s in OrderStatus}
    assert set(rules.OPEN_STATUSES) == {s.value for s in OrderStatus} - set(rules.FINAL_STATUSES)


def test_the_correlation_id_pattern_is_the_apis_and_the_gateways():
    assert shop.CORRELATION_ID.pattern == correlation.PATTERN.pattern
    template = (ROOT / "nginx" / "templates" / "default.conf.template").read_text()
    maps = re.findall(r"map \$http_x_correlation_id .*?\n\}", template, re.S)
    gateway = set(re.findall(r'"~(\^[^"]+\$)"', "".join(maps)))
    assert gateway == {shop.CORRELATION_ID.pattern}


def sources(*tops: str, suffixes: tuple[str, ...] = (".py",)) -> dict[str, str]:
    """The code under these folders: Python by default, the storefront's JavaScript on asking
    (not otel-web.js, the bundled OpenTelemetry SDK)."""
    return {str(p.relative_to(ROOT)): p.read_text() for top in tops
            for p in sorted((ROOT / top).rglob("*")) if p.suffix in suffixes and p.is_file()
            and "__pycache__" not in p.parts and p.name != "otel-web.js"}


def test_one_json_client():
    """labkit/http.py is the HTTP client of the scripts, bench, the dashboard and the
    tests, and of ./lab's commands. Not JSON clients: the tracestore test posts raw OTLP
    protobuf, bench empties a queue with a bare DELETE (RabbitMQ's management API answers
    labkit's JSON request with 406), and labctl's health probe asks any endpoint for a 2xx
    with no Accept header (RabbitMQ's metrics among them)."""
    own = {"labkit/http.py", "tests/unit/test_tracestore.py", "bench/stack.py",
           "labctl/proc.py", str(Path(__file__).resolve().relative_to(ROOT))}
    found = [path for path, text in sources("bench", "labctl", "harness", "gameday", "scripts",
                                            "tests", "exercises").items()
             if "urlopen(" in text and path not in own]
    assert found == []


# The rules the order page and the scripts share, each written once in RULES_FILE: in any other
# file of either language, these are a second copy of a rule.
RULES_FILE = "nginx/html/assets/lab-rules.js"
COPIES = {
    "span in error": r"""["']error["']\)? in \(True|tags\.error ==="""
                     r"""|otel\.status_code["']\]?\)? ?===? ?["']ERROR""",
    "error message": r"""["']otel\.status_description["']""",
    "service-name prefix": r"""["']kodekloud-record-store-["']""",
    "final order states": r"""["']confirmed["'],\s*["']failed["']""",
    "order steps": r"""["']pending["'],\s*["']processing["'],\s*["']paid["']""",
    "component of a span": r"""(["']db\.system\.name["']|DB_SYSTEM|["']messaging\.system["'])"""
                           r""" in """,
    "trace tree's parent": r"""(CHILD_OF =|["']CHILD_OF["'])""",
}
CODE = ("bench", "labctl", "harness", "gameday", "scripts", "exercises", "nginx/html")


@pytest.mark.parametrize("rule", COPIES)
def test_one_copy_of_each_shared_rule_in_either_language(rule):
    """labkit/rules.py and the storefront's trace-view.js and app.js read each rule
    from RULES_FILE; nobody else writes it out (tracestore writes Jaeger's model, not a rule
    over it; the tests build traces to check these rules against)."""
    pattern = re.compile(COPIES[rule])
    code = sources(*CODE, suffixes=(".py", ".js"))
    assert [path for path, text in code.items()
            if pattern.search(text) and path != RULES_FILE] == []


def test_the_tests_read_no_span_status_of_their_own():
    pattern = re.compile(COPIES["span in error"])
    assert [path for path, text in sources("tests").items() if pattern.search(text)
            and not path.endswith("test_labkit_shape.py")] == []


def test_a_span_with_an_error_status_marks_its_trace_on_the_dashboard():
    from labctl import dashboard

    trace = {"traceID": "ab" * 16, "processes": {"p": {"serviceName": "worker"}}, "spans": [
        {"spanID": "1", "operationName": "process_order", "processID": "p", "startTime": 0,
         "duration": 2000, "tags": [{"key": "otel.status_code", "value": "ERROR"}]}]}
    rows = dashboard._trace_table(lambda: [trace])
    assert rows[0] == "1 trace(s), 1 with errors"
    assert rows[1].endswith("ERROR") and "process_order" in rows[1] and "2.0 ms" in rows[1]
