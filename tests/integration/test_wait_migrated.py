"""`python -m recordstore.manage wait-migrated`, the init container of the API and the worker
on Kubernetes, on the lab's PostgreSQL: it returns once the schema is at head, not before."""

import subprocess
import sys

import pytest

from labctl.config import ROOT
from recordstore import manage

pytestmark = pytest.mark.stack


def test_it_returns_at_once_when_the_schema_is_at_head(lab):
    r = subprocess.run([sys.executable, "-m", "recordstore.manage", "wait-migrated"], cwd=ROOT,
                       env=lab.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_it_keeps_waiting_while_the_schema_is_behind(lab, monkeypatch):
    # A head this database has never seen: as if the migrate Job had not run yet.
    monkeypatch.setattr(manage.ScriptDirectory, "get_current_head", lambda _: "not-applied-yet")
    with pytest.raises(SystemExit, match="migrations not at head not-applied-yet"):
        manage.wait_until_migrated(timeout_s=0)
