"""What native mode writes so that no server lets another local user in (issue 27, part 3);
tests/e2e/test_native_privileges.py proves it on the running stack."""

import os
import re
import stat

from labctl import components, config_files, privileges
from labctl.config import load
from labctl.servers import Postgres


def lab_in(tmp_path):
    return load({"LAB_HOME": str(tmp_path / "home")})


def test_nginx_runs_no_process_as_root_and_writes_its_pid_where_its_user_may(tmp_path):
    cfg = lab_in(tmp_path)
    config_files.write_nginx(cfg)
    conf = (config_files.nginx_dir(cfg) / "nginx.conf").read_text()
    assert not re.search(r"^\s*user\s", conf, re.M), "`user root;` ran the workers as root"
    pid = re.search(r"^pid\s+(\S+);", conf, re.M).group(1)
    gateway = components.BY_NAME["gateway"]
    assert any(pid.startswith(f"{p}/") for p in gateway.writes(cfg)), pid
    argv = components.nginx_argv(cfg, "-t")
    assert argv[argv.index("-e") + 1] == str(config_files.nginx_error_log(cfg))


def test_the_broker_config_holding_the_password_is_written_for_its_owner_alone(tmp_path):
    cfg = lab_in(tmp_path)
    (config_files.rabbitmq_dir(cfg)).mkdir(parents=True)
    conf = config_files.rabbitmq_dir(cfg) / "rabbitmq.conf"
    conf.write_text("an older, world-readable one")
    conf.chmod(0o644)
    config_files.write_rabbitmq(cfg)
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert f"default_pass = {cfg.env['RABBITMQ_PASSWORD']}" in conf.read_text()


def test_postgres_trusts_nobody_the_socket_takes_its_owner_as_superuser_only(tmp_path):
    cfg = lab_in(tmp_path)
    db = components.BY_NAME["db"]
    db.data(cfg).mkdir(parents=True)
    (db.data(cfg) / "pg_hba.conf").write_text("local all all trust\n")  # an older cluster's
    db.write_access(cfg)
    rules = [line.split() for line in (db.data(cfg) / "pg_hba.conf").read_text().splitlines()
             if line and not line.startswith("#")]
    assert all("trust" not in rule for rule in rules)
    assert [r for r in rules if r[0] == "local"] == [["local", "all", "postgres", "peer",
                                                      "map=lab"]]
    assert {r[-1] for r in rules if r[0] == "host"} == {"scram-sha-256"}
    ident = (db.data(cfg) / "pg_ident.conf").read_text().split("\n", 1)[1]
    assert ident.split() == ["lab", Postgres.owner(), "postgres"]


def test_as_a_user_every_program_runs_as_that_user(monkeypatch):
    monkeypatch.setattr(privileges.os, "geteuid", lambda: 1000)
    assert privileges.lab_user() is None and privileges.as_user(None) == {}


def test_others_can_run_sees_a_directory_they_cannot_search(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    program = private / "python"
    program.write_text("")
    program.chmod(0o755)
    tmp_path.chmod(0o755)
    assert not privileges.others_can_run(program)
    private.chmod(0o755)
    assert privileges.others_can_run(program) == all(
        os.stat(d).st_mode & stat.S_IXOTH for d in program.parents)
