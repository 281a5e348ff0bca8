"""The admin token: the lab's own, generated on first use, never in git; no code fallback;
refused when published and the gateway is reachable beyond loopback (issue 27, part 2)."""

import stat
import subprocess

import pytest
import yaml
from fastapi import HTTPException
from pydantic import ValidationError

from api.routes.admin import require_token
from labctl.config import ROOT, check_exposure, load
from labctl.proc import LabError
from labkit.settings import admin_token, read_env
from recordstore.config import Settings, get_settings
from recordstore.exposure import PUBLISHED_ADMIN_TOKENS


def test_the_token_is_generated_once_private_and_kept(tmp_path):
    env = {"LAB_HOME": str(tmp_path / "home")}
    first = admin_token(env)
    assert len(first) >= 32
    assert admin_token(env) == first
    path = tmp_path / "home" / "admin-token"
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert admin_token({**env, "ADMIN_TOKEN": "set-by-hand-1234"}) == "set-by-hand-1234"


def test_no_token_is_committed():
    assert "ADMIN_TOKEN" not in read_env(ROOT / ".env")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    assert not [f for f in tracked if f.endswith("admin-token")]
    ignored = subprocess.run(["git", "check-ignore", "-q", ".lab/admin-token"], cwd=ROOT)
    assert ignored.returncode == 0


def test_the_lab_gives_its_programs_the_generated_token(tmp_path):
    cfg = load({"LAB_HOME": str(tmp_path)})
    assert cfg.env["ADMIN_TOKEN"] == (tmp_path / "admin-token").read_text().strip()
    assert cfg.env["ADMIN_TOKEN"] not in PUBLISHED_ADMIN_TOKENS


def test_the_code_has_no_fallback_token(monkeypatch):
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    assert Settings().admin_token == ""
    get_settings.cache_clear()
    try:
        for header in ("Bearer change-me-lab-admin", "Bearer ", None):
            with pytest.raises(HTTPException) as refused:
                require_token(header)
            assert refused.value.status_code == 503
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("token", ["lab-admin-token", "change-me-lab-admin", "short"])
@pytest.mark.parametrize("bind", ["0.0.0.0", "192.168.1.20", "::"])
def test_a_published_or_weak_token_is_refused_beyond_loopback(token, bind):
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Settings(admin_token=token, gateway_bind=bind)
    with pytest.raises(LabError, match="ADMIN_TOKEN"):
        check_exposure(load({"ADMIN_TOKEN": token, "GATEWAY_BIND": bind}))


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_on_loopback_any_token_is_the_learners_business(bind):
    assert Settings(admin_token="lab-admin-token", gateway_bind=bind).admin_token


def test_the_rule_is_the_products_and_labctl_reads_it_on_a_bare_python():
    """The API applies the rule and ./lab checks it before it starts anything: one copy, in
    the product (which depends on no lab package), importable with no third-party package."""
    r = subprocess.run(["python3", "-I", "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "from labctl.config import check_exposure, load; "
                        "check_exposure(load({'ADMIN_TOKEN': 'short', 'GATEWAY_BIND': '0.0.0.0'}))",
                        str(ROOT)], capture_output=True, text=True, timeout=30)
    assert "ADMIN_TOKEN is a published or short token" in r.stderr, r.stderr


def test_compose_starts_without_a_token_and_passes_the_lab_s_own():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    api = compose["services"]["api"]["environment"]
    assert api["ADMIN_TOKEN"] == "${ADMIN_TOKEN:-}"
    assert api["GATEWAY_BIND"] == "${GATEWAY_BIND:?GATEWAY_BIND must be set in .env}"
