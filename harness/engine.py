"""A private Docker engine for the compose phase of the tests: Debian's dockerd as root, with
its own data root, exec root and socket, and nothing it leaves behind.

It never touches the host's firewall (`--iptables=false`, `--ip-masq=false`, no default
bridge): containers talk among themselves on compose's network, published ports reach them
through docker-proxy on 127.0.0.1, and builds that fetch packages use the host's network.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from labctl.proc import MARKER, LabError, end, pid_alive, processes, wait_until

START_TIMEOUT_S = 60


def firewall_state(iptables_save: str) -> list[str]:
    """Rules and chains of an iptables-save output, counters aside; a built-in chain's default
    ACCEPT policy is no state (a table iptables creates on first use has it)."""
    entries = [line.split(" [")[0] for line in iptables_save.splitlines()
               if line.startswith(("-A", ":"))]
    return sorted(e for e in entries if not (e.startswith(":") and e.endswith(" ACCEPT")))


def _iptables_rules() -> list[str]:
    if shutil.which("iptables-save") is None:
        return []
    return firewall_state(subprocess.run(["iptables-save"], capture_output=True, text=True).stdout)


def mounts_under(*roots: str) -> list[str]:
    """The mount points under these folders, the deepest first (the order to unmount them)."""
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    return sorted({p for p in points if p.startswith(roots)}, reverse=True)


def _interfaces() -> set[str]:
    return set(os.listdir("/sys/class/net"))


class Engine:
    """dockerd under `data_root`, its socket and runtime state in a short /tmp directory
    (a unix socket path must stay under 108 bytes)."""

    def __init__(self, data_root: Path) -> None:
        self.data_root = data_root
        self.exec_root = Path(tempfile.mkdtemp(prefix="labd-"))
        self.socket = self.exec_root / "docker.sock"
        self.log = data_root.parent / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self._before = (_iptables_rules(), _interfaces())

    @property
    def env(self) -> dict[str, str]:
        """What the docker CLI and docker-compose need to reach this engine, and only it;
        without a native stack's MARKER, so that its `down` never takes the engine (which the
        suite brings up while the native tests run) for one of its own."""
        host = {k: v for k, v in os.environ.items() if k != MARKER}
        return {**host, "DOCKER_HOST": f"unix://{self.socket}",
                "DOCKER_CONFIG": str(self.exec_root / "client")}

    def docker(self, *args: str, timeout_s: float = 120, check: bool = True,
               input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
        r = subprocess.run(["docker", *args], env=self.env, capture_output=True,
                           timeout=timeout_s, input=input_bytes)
        if check and r.returncode != 0:
            raise LabError(f"docker {' '.join(args[:3])} failed: "
                           f"{r.stderr.decode(errors='replace')[-2000:]}")
        return r

    def start(self) -> None:
        self.data_root.mkdir(parents=True, exist_ok=True)
        argv = ["dockerd", "--data-root", str(self.data_root),
                "--exec-root", str(self.exec_root / "exec"), "-H", f"unix://{self.socket}",
                "--pidfile", str(self.exec_root / "dockerd.pid"), "--storage-driver", "overlay2",
                "--bridge", "none", "--iptables=false", "--ip-masq=false"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        started = time.monotonic()
        answers = wait_until(lambda: self.proc.poll() is None and self.docker(
            "info", "--format", "{{.ServerVersion}}", timeout_s=10, check=False
        ).returncode == 0 or self.proc.poll() is not None, START_TIMEOUT_S, interval_s=0.3)
        if not answers or self.proc.poll() is not None:
            raise LabError(f"dockerd did not answer in {START_TIMEOUT_S}s; its log: {self.log}\n"
                           + self.log.read_text(errors="replace")[-2000:])
        version = self.docker("info", "--format", "{{.ServerVersion}}").stdout.decode().strip()
        print(f"lab: private Docker engine {version} up in {time.monotonic() - started:.1f}s "
              f"(socket {self.socket})", flush=True)

    def processes(self) -> list[int]:
        """dockerd, its containerd and the container shims: every process naming our roots."""
        roots = (str(self.exec_root).encode(), str(self.data_root).encode())
        return [pid for pid, seen in processes("cmdline")
                if any(r in seen["cmdline"] for r in roots) and pid_alive(pid)]

    def stop(self) -> None:
        """Stop the daemon (it stops its containerd), then anything that outlived it."""
        if self.proc is not None and self.proc.poll() is None:
            end(self.proc, signal.SIGTERM, grace_s=30)
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not self.processes(), 10)
        for mount in self.mounts():
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)

    def mounts(self) -> list[str]:
        return mounts_under(str(self.exec_root), str(self.data_root))

    def leftovers(self) -> list[str]:
        """What the engine left on the host: must be nothing once it has stopped."""
        rules, interfaces = self._before
        left = [f"process {pid}" for pid in self.processes()]
        left += [f"mount {m}" for m in self.mounts()]
        left += [f"network interface {i}" for i in sorted(_interfaces() - interfaces)]
        now = _iptables_rules()
        left += [f"iptables {r}" for r in now if r not in rules]
        left += [f"iptables rule gone: {r}" for r in rules if r not in now]
        return left
