"""The native servers let no other local user in (issue 27, part 3), on the running stack:
PostgreSQL's socket is its OS owner's alone, by peer authentication, never trust; no program of
the lab runs as root when ./lab does (each as its Debian user or the lab's own); the broker's
config, which holds its password, is its owner's alone."""

import os
import pwd
import stat
import subprocess
from pathlib import Path

import pytest

from labctl import components, config_files
from labctl.component import Program
from labctl.privileges import LAB_USER
from labctl.servers import Postgres

pytestmark = pytest.mark.stack
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="./lab runs as root on the build "
                               "machines; as a user, every program is that user's anyway")


DB: Postgres = components.BY_NAME["db"]


def psql(lab, *argv: str, user: str | None = None) -> subprocess.CompletedProcess:
    """psql over the lab's socket, as `user` (an OS user) or as this test's own."""
    cmd = [str(Postgres.bindir() / "psql"), "-h", str(DB.sockets(lab)),
           "-p", str(lab.port("POSTGRES_PORT")), "-d", "postgres", "-w", "-tAc", "SELECT 1",
           *argv]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PGPASSWORD": ""})


def owner_of(path: Path) -> str:
    return pwd.getpwuid(path.stat().st_uid).pw_name


def test_the_database_socket_directory_is_the_clusters_owners_alone(lab):
    sockets = DB.sockets(lab)
    assert stat.S_IMODE(sockets.stat().st_mode) == 0o700
    assert owner_of(sockets) == Postgres.owner()
    (socket,) = sockets.glob(".s.PGSQL.*[0-9]")
    assert stat.S_IMODE(socket.stat().st_mode) == 0o700


def test_no_connection_is_trusted_and_the_socket_takes_the_superuser_by_peer_only(lab):
    rules = DB.psql(lab, "SELECT type || ' ' || array_to_string(user_name, ',') || ' ' "
                              "|| auth_method FROM pg_hba_file_rules ORDER BY line_number")
    assert rules.splitlines() == ["local postgres peer", "host all scram-sha-256",
                                  "host all scram-sha-256"]
    # The lab's own role, without its password, over the socket: refused.
    refused = psql(lab, "-U", lab.env["POSTGRES_USER"])
    assert refused.returncode != 0, refused.stdout
    assert "no pg_hba.conf entry" in refused.stderr or "authentication" in refused.stderr


@ROOT_ONLY
def test_another_local_user_reaches_neither_the_socket_nor_the_superuser(lab):
    # nobody: not even into the directory.
    outsider = psql(lab, "-U", "postgres", user="nobody")
    assert outsider.returncode != 0 and "Permission denied" in outsider.stderr, outsider
    # root passes any directory mode, yet is not the cluster's OS owner: peer refuses it.
    as_root = psql(lab, "-U", "postgres")
    assert as_root.returncode != 0 and "Peer authentication failed" in as_root.stderr, as_root
    assert psql(lab, "-U", "postgres", user="postgres").stdout.strip() == "1"


def processes_of(leader: int) -> list[int]:
    """The leader and every process of its session (each program starts in its own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == leader:
                    found.append(int(entry.name))
            except ProcessLookupError:
                continue
    return found


def uids(pid: int) -> set[int]:
    """Real, effective, saved and filesystem uids of a process."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                if x.startswith("Uid:"))
    return {int(u) for u in line.split()[1:]}


@ROOT_ONLY
def test_no_program_of_the_lab_runs_as_root(lab):
    lab_uid = pwd.getpwnam(LAB_USER).pw_uid
    programs = [c for c in components.COMPONENTS if isinstance(c, Program)]
    assert {"api", "worker", "jaeger", "gateway"} <= {c.name for c in programs}
    for component in programs:
        pid = component.pid(lab)
        assert pid, f"{component.name} is not running"
        procs = processes_of(pid)
        if component.name == "gateway":
            assert len(procs) >= 3, "nginx's master and its workers"
        for p in procs:
            assert uids(p) == {lab_uid}, (component.name, p)
    for name, user in (("db", "postgres"), ("rabbitmq", "rabbitmq")):
        pid = components.BY_NAME[name].pid(lab)
        assert uids(pid) == {pwd.getpwnam(user).pw_uid}, name


@ROOT_ONLY
def test_the_lab_user_owns_only_what_its_programs_write(lab):
    uid = pwd.getpwnam(LAB_USER).pw_uid
    mine = set()
    for p in lab.home.rglob("*"):
        try:
            if not p.is_symlink() and p.stat().st_uid == uid:
                mine.add(p)
        except FileNotFoundError:  # a file the running programs just replaced
            continue
    allowed = [lab.home / "api-metrics", lab.home / "worker-metrics",
               config_files.nginx_dir(lab) / "tmp", config_files.prometheus_dir(lab) / "data",
               config_files.alertmanager_dir(lab) / "data", lab.logs / "gateway.log",
               config_files.nginx_error_log(lab)]
    assert mine, "nothing is the lab user's"
    stray = [p for p in mine if not any(p == a or a in p.parents for a in allowed)]
    assert stray == []
    assert owner_of(lab.logs) == "root" and owner_of(lab.home) == "root"


def test_the_broker_config_holding_its_password_is_its_owners_alone(lab):
    conf = config_files.rabbitmq_dir(lab) / "rabbitmq.conf"
    assert f"default_pass = {lab.env['RABBITMQ_PASSWORD']}" in conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    if os.geteuid() == 0:
        assert owner_of(conf) == "rabbitmq"
