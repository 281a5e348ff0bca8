"""labkit is one package under one name, and its standard-library copies of the core's facts
(payment methods, final order states, the correlation-id pattern) are the core's."""

import re
import subprocess
import sys

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
    gateway = set(re.findall(r'"~(\^[^"]+\$)"', template))
    assert gateway == {shop.CORRELATION_ID.pattern}
