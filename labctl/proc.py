"""Starting, watching and stopping the lab's processes; polling with deadlines."""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from labkit.settings import pid_alive, read_pid  # noqa: F401 - labctl's names

# In the environment of every process a native stack starts: `./lab down` finds them by it.
MARKER = "LAB_COMPONENT_OF"


class LabError(Exception):
    """A failure a learner can act on: it names the component and its log."""


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def processes(*files: str) -> Iterator[tuple[int, dict[str, bytes]]]:
    """Every other process's pid and these files of its /proc entry (cmdline, environ, stat);
    one that ended meanwhile, or hides them, is passed over."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            found = {name: (entry / name).read_bytes() for name in files}
        except OSError:
            continue
        yield int(entry.name), found


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return 200 <= resp.status < 300
    except (OSError, urllib.error.URLError):
        return False


def unix_http_ok(sock_path: Path, path: str, timeout_s: float = 2.0) -> bool:
    """http_ok for a server that listens on a Unix socket."""
    conn = _UnixHTTPConnection(sock_path, timeout_s)
    try:
        conn.request("GET", path)
        return 200 <= conn.getresponse().status < 300
    except OSError:
        return False
    finally:
        conn.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, sock_path: Path, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self.sock_path = sock_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.sock_path))


def unix_listener(path: Path) -> socket.socket:
    """A listening Unix socket at `path` (mode 600; whoever else must connect is the caller's
    to allow), replacing the one a previous run left."""
    if len(os.fsencode(path)) > 107:
        raise LabError(f"the socket path {path} is longer than a Unix socket's 107 bytes: "
                       f"keep the lab (or LAB_HOME) in a shorter path")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old_umask)
    sock.listen(128)
    return sock


# systemd's socket activation, which the Prometheus servers take (--web.systemd-socket): the
# listening socket as fd 3, LISTEN_FDS=1 and LISTEN_PID its own pid, set after the fork.
_ACTIVATE = ("import os, sys; os.dup2(int(sys.argv[1]), 3); "
             "os.environ.update(LISTEN_FDS='1', LISTEN_PID=str(os.getpid())); "
             "os.execvp(sys.argv[2], sys.argv[2:])")


def socket_activated(python: Path, argv: list[str], sock: socket.socket) -> list[str]:
    """The command line that runs `argv` with `sock` handed over (pass its fd to the child),
    through `python` (one the program's user may run)."""
    return [str(python), "-c", _ACTIVATE, str(sock.fileno()), *argv]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """n different free ports: each stays bound until all are picked (one at a time, the
    kernel may hand out a port it just gave back)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def spawn(argv: list[str], env: dict[str, str], log: Path, pidfile: Path, cwd: Path,
          pass_fds: tuple[int, ...] = (), **as_user: object) -> int:
    """Start a long-running program in its own session, output appended to its log (opened
    here: the program, even as another user, writes to the open file). `as_user`: Popen's
    user, group and extra_groups (privileges.as_user)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=pass_fds, **as_user,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def terminate(pid: int, timeout_s: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """Signal the process group, wait, then kill what is left."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)
    if wait_until(lambda: not pid_alive(pid), timeout_s, 0.1):
        _kill_group(pid)  # children that outlived their parent
        return
    _kill_group(pid)
    wait_until(lambda: not pid_alive(pid), 5, 0.1)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def foreground(argv: list[str], env: dict[str, str], cwd: Path) -> int:
    """Run a command to its end (pytest); if this process is interrupted meanwhile, the command
    gets a SIGINT (pytest stops its workers and exits) and, after 15 s, a SIGKILL."""
    proc = subprocess.Popen(argv, env=env, cwd=cwd)
    try:
        return proc.wait()
    finally:
        if proc.poll() is None:
            end(proc, signal.SIGINT, grace_s=15)


def end(proc: subprocess.Popen, sig: int, grace_s: float) -> None:
    """Signal a child of ours, and SIGKILL it if it has not exited `grace_s` later."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(argv: list[str], env: dict[str, str] | None = None, log: Path | None = None,
        cwd: Path | None = None, timeout_s: float = 120, **as_user: object
        ) -> subprocess.CompletedProcess[str]:
    """Run a short command; its output goes to the log (if given) and is also returned."""
    try:
        result = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
            stdin=subprocess.DEVNULL, **as_user,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{argv[0]} did not finish within {timeout_s:.0f}s") from exc
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            out.write(result.stdout)
            out.write(result.stderr)
    return result


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"
