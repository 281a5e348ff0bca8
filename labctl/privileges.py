"""Who the lab's programs run as. Run by a user, ./lab starts everything as that user. Run as
root, it starts nothing as root: PostgreSQL and RabbitMQ as their Debian users (servers.py),
every other program (nginx with its workers, the API, the worker, the trace stand-in,
Prometheus, Alertmanager, the exporters, the alert receiver) as the lab's own system user,
made on first use, which owns only the directories and files those programs write."""

import os
import pwd
import stat
import threading
from pathlib import Path

from labctl.proc import LabError, run

LAB_USER = "recordstore-lab"
_creating = threading.Lock()


def is_root() -> bool:
    return os.geteuid() == 0


def lab_user() -> pwd.struct_passwd | None:
    """The user the lab's programs run as when ./lab runs as root (None otherwise)."""
    if not is_root():
        return None
    with _creating:  # the components start in parallel threads
        try:
            return pwd.getpwnam(LAB_USER)
        except KeyError:
            return _create_lab_user()


def _create_lab_user() -> pwd.struct_passwd:
    r = run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", "/usr/sbin/nologin",
             "--comment", "record-store lab programs", LAB_USER], timeout_s=30)
    if r.returncode != 0:
        raise LabError(f"could not create the system user {LAB_USER} that the lab's programs "
                       f"run as: {r.stderr.strip()}")
    return pwd.getpwnam(LAB_USER)


def give(paths: list[Path], user: str) -> None:
    """As root, make these files and directories (and what they hold) the user's."""
    if not is_root():
        return
    pw = pwd.getpwnam(user)
    for path in paths:
        for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.chown(p, pw.pw_uid, pw.pw_gid, follow_symlinks=False)


def require_reachable(path: Path, user: str, component: str) -> None:
    """As root, the servers and programs run as other users, who must reach `path`."""
    if not is_root():
        return
    probe = run(["runuser", "-u", user, "--", "test", "-x", str(path)], timeout_s=10)
    if probe.returncode != 0:
        raise LabError(
            f"{component}: the '{user}' user cannot reach {path}. Keep the lab in a directory "
            f"other users may traverse (e.g. /srv or /opt), or allow it: chmod o+x on each "
            f"parent directory of {path}."
        )


def others_can_run(program: Path) -> bool:
    """Whether a user other than its owner may execute `program` (every directory on its
    resolved path searchable by others, the file executable by them)."""
    target = program.resolve()
    if not target.exists():
        return False
    for directory in target.parents:
        if not os.stat(directory).st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(target).st_mode & stat.S_IXOTH)


def as_user(user: pwd.struct_passwd | None) -> dict:
    """subprocess keyword arguments that start a program as `user` (nothing for None)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

