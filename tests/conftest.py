"""Shared fixtures. Tests marked `stack` use the native stack that `./lab test` starts once
for the whole session (its ports and home come in through the environment)."""

import httpx
import pytest

from labctl.config import LabConfig, load
from labctl.proc import http_ok
from tests.helpers import lab_command, lab_run, wait_for


@pytest.fixture(scope="session")
def lab() -> LabConfig:
    cfg = load()
    if not http_ok(cfg.url("GATEWAY_PORT", "/gateway/health")):
        pytest.fail(f"the lab stack is not running at {cfg.home}: run the suite with ./lab test")
    return cfg


@pytest.fixture(scope="session")
def gateway(lab: LabConfig) -> httpx.Client:
    with httpx.Client(base_url=lab.url("GATEWAY_PORT"), timeout=15) as client:
        yield client


@pytest.fixture
def chaos(lab):
    """Runtime faults for one test, switched off again afterwards whatever happens."""
    yield lambda *pairs: lab_command(lab, "chaos", "set", *pairs)
    wait_for(lambda: lab_run(lab, "chaos", "reset").returncode == 0, 30, "chaos reset")
