"""The stack the benchmark measures: an isolated one of its own (like `./lab test`), or the
running stack its environment names (`--use-running`, the test suite's).

Telemetry on and off are the same build: the API and the worker are restarted with
OTEL_SDK_DISABLED=true and METRICS_ENABLED=false, or without them.
"""

import base64
import os
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from labctl.components import BY_NAME, COMPONENTS
from labctl.config import ROOT, LabConfig, load
from labctl.proc import LabError, processes, wait_until
from labctl.stack import PORT_NAMES, down, isolated_environment, lab_processes, with_marker
from labkit import rules
from labkit.settings import read_env

BENCH_HOME = ROOT / ".lab-bench"
ZERO_DELAYS = {"PAYMENT_LATENCY_MS": "0", "EMAIL_DELAY_MS": "0"}
TELEMETRY_OFF = {"OTEL_SDK_DISABLED": "true", "METRICS_ENABLED": "false"}
BENCH_STOCK = 1_000_000  # so that no checkout of the benchmark fails for want of stock
OPEN_STATUSES = "(" + ", ".join(f"'{s}'" for s in rules.OPEN_STATUSES) + ")"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RABBITMQ_HELPERS = {"beam.smp", "epmd", "erl_child_setup", "inet_gethost"}


@dataclass(frozen=True)
class Proc:
    pid: int
    component: str
    command: str
    rss_kib: int
    pss_kib: int | None  # proportional share: sums over processes without double-counting
    cpu_s: float


def own_environment() -> dict[str, str]:
    """The learner's settings (.env) with the bench stack's home and free ports; no delays."""
    base = {k: v for k, v in os.environ.items() if not k.endswith("_PORT")}
    isolated = isolated_environment(BENCH_HOME)
    return {**base, **{k: isolated[k] for k in (*PORT_NAMES, "LAB_HOME")}, **ZERO_DELAYS}


def timed_lab(env: dict[str, str], *args: str) -> float:
    """Run `./lab ARGS` as a learner would; its wall-clock time in seconds."""
    started = time.monotonic()
    r = subprocess.run([str(ROOT / "lab"), *args], env=env, capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    if r.returncode != 0:
        raise LabError(f"./lab {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return time.monotonic() - started


class Stack:
    def __init__(self, cfg: LabConfig, own: bool) -> None:
        self.base = cfg  # as it was started, and as it is left (--use-running)
        self.own = own
        self.telemetry = True
        self.watermark = 0  # orders with a higher id are the benchmark's
        self._saved_stock = ""

    @classmethod
    def own(cls) -> "Stack":
        """The bench stack under .lab-bench/ (not started yet: see up)."""
        return cls(load(own_environment()), own=True)

    def up(self, measure_restart: bool) -> dict[str, float]:
        """Start the bench stack on a new home; the time `./lab up` took (and, if asked, again
        after `./lab down`, data kept)."""
        if self.base.home.exists():  # a previous run's stack, on the ports it had
            down(load({**self.base.env, **read_env(self.env_file)}), volumes=True)
        self.base.home.mkdir(parents=True)
        names = (*PORT_NAMES, "LAB_HOME", *ZERO_DELAYS)
        self.env_file.write_text("".join(f"{k}={self.base.env[k]}\n" for k in names))
        timings = {"new_home_s": timed_lab(self.base.env, "up")}
        if measure_restart:
            down(self.base)
            timings["existing_home_s"] = timed_lab(self.base.env, "up")
        return timings

    @classmethod
    def running(cls) -> "Stack":
        cfg = load()
        if not BY_NAME["gateway"].healthy(cfg)[0]:
            raise LabError(f"--use-running: no healthy stack at {cfg.home}")
        return cls(cfg, own=False)

    @property
    def env_file(self) -> Path:
        """The bench stack's ports, for `env $(cat FILE) ./lab ...` while it runs (--keep)."""
        return self.base.home / "bench.env"

    def url(self) -> str:
        return self.base.url("GATEWAY_PORT")

    def mode_cfg(self, telemetry: bool) -> LabConfig:
        env = {**self.base.env, **ZERO_DELAYS, **({} if telemetry else TELEMETRY_OFF)}
        return with_marker(LabConfig(env=env, home=self.base.home))

    # --- the database, through the lab's own psql -------------------------------------------

    def sql(self, query: str) -> str:
        return BY_NAME["db"].psql(self.base, query, db=self.base.env["POSTGRES_DB"])

    def prepare(self) -> None:
        """No active faults, stock for every checkout; remember what to put back."""
        faults = self.sql("SELECT string_agg(name, ', ') FROM chaos_settings")
        if faults:
            raise LabError(f"faults are switched on ({faults}): `./lab chaos reset` first")
        self._saved_stock = self.sql("SELECT string_agg(format('(%s,%s)', id, stock), ',') "
                                     "FROM products")
        self.sql(f"UPDATE products SET stock = {BENCH_STOCK}")
        self.watermark = self.last_order_id()

    def restore(self) -> None:
        if self._saved_stock:
            self.sql(f"UPDATE products p SET stock = v.stock FROM (VALUES {self._saved_stock}) "
                     "AS v(id, stock) WHERE p.id = v.id")
        if not self.own:
            self._restart(("api", "worker"), with_marker(self.base))

    def product_ids(self) -> list[int]:
        return [int(x) for x in self.sql("SELECT id FROM products ORDER BY id").split()]

    def last_order_id(self) -> int:
        return int(self.sql("SELECT coalesce(max(id), 0) FROM orders"))

    def open_orders(self) -> int:
        return int(self.sql(f"SELECT count(*) FROM orders WHERE id > {self.watermark} "
                            f"AND status IN {OPEN_STATUSES}"))

    def settle(self, timeout_s: float) -> float:
        """Wait until the worker has finished every order the benchmark placed; seconds taken."""
        started = time.monotonic()
        if not wait_until(lambda: self.open_orders() == 0, timeout_s, 0.5):
            raise LabError(f"the worker did not finish the benchmark's orders in {timeout_s:.0f}s "
                           f"({self.open_orders()} still open)")
        return time.monotonic() - started

    def discard_unprocessed(self) -> int:
        """Empty the orders queue and delete the benchmark's orders still pending: what a
        latency run placed while the worker was stopped (the worker is measured separately)."""
        env = self.base.env
        queue = urllib.parse.quote(f"{env.get('QUEUE_PREFIX', '')}orders", safe="")
        auth = base64.b64encode(f"{env['RABBITMQ_USER']}:{env['RABBITMQ_PASSWORD']}".encode())
        request = urllib.request.Request(
            self.base.url("RABBITMQ_MANAGEMENT_PORT", f"/api/queues/%2F/{queue}/contents"),
            method="DELETE", headers={"Authorization": f"Basic {auth.decode()}"})
        with urllib.request.urlopen(request, timeout=30):
            pass
        return int(self.sql(f"WITH gone AS (DELETE FROM orders WHERE id > {self.watermark} "
                            "AND status = 'pending' RETURNING 1) SELECT count(*) FROM gone"))

    def wait_final(self, after_id: int, timeout_s: float) -> None:
        query = f"SELECT count(*) FROM orders WHERE id > {after_id} AND status IN {OPEN_STATUSES}"
        if not wait_until(lambda: self.sql(query) == "0", timeout_s, 0.2):
            raise LabError(f"orders after #{after_id} not final within {timeout_s:.0f}s")

    def created_to_confirmed_ms(self, after_id: int) -> tuple[list[float], int]:
        """Per confirmed order after `after_id`: created -> confirmed in ms; and how many failed."""
        rows = self.sql("SELECT extract(epoch FROM confirmed_at - created_at) * 1000 FROM orders "
                        f"WHERE id > {after_id} AND status = 'confirmed'")
        failed = self.sql(f"SELECT count(*) FROM orders WHERE id > {after_id} "
                          "AND status = 'failed'")
        return [float(x) for x in rows.split()], int(failed)

    def drain_figures(self, after_id: int) -> tuple[int, int, float]:
        """Orders after `after_id`: placed, confirmed, first processing -> last confirmed (s)."""
        row = self.sql("SELECT count(*), count(*) FILTER (WHERE status = 'confirmed'), "
                       "coalesce(extract(epoch FROM max(confirmed_at) - min(processing_at)), 0) "
                       f"FROM orders WHERE id > {after_id}")
        placed, confirmed, seconds = row.split("|")
        return int(placed), int(confirmed), float(seconds)

    # --- the API and the worker ------------------------------------------------------------

    def _restart(self, names: tuple[str, ...], cfg: LabConfig) -> None:
        for name in reversed(names):
            BY_NAME[name].stop(cfg)
        for name in names:
            BY_NAME[name].start(cfg)

    def stop_worker(self) -> None:
        BY_NAME["worker"].stop(self.mode_cfg(self.telemetry))

    def start_worker(self, telemetry: bool) -> None:
        BY_NAME["worker"].start(self.mode_cfg(telemetry))

    def restart_api(self, telemetry: bool) -> None:
        self._restart(("api",), self.mode_cfg(telemetry))
        self.telemetry = telemetry

    # --- processes: memory and CPU ----------------------------------------------------------

    def processes(self) -> list[Proc]:
        """Every process of the lab: the components' own, their children (PostgreSQL's
        backends rewrite their environment, so only their parent tells), and the rest
        that carries the lab's marker."""
        roots = {pid: c.name for c in COMPONENTS if (pid := c.pid(self.base))}
        marked = set(lab_processes(self.base))
        table: dict[int, tuple[str, int, float]] = {}  # pid -> command, parent, CPU seconds
        for pid, seen in processes("stat"):
            stat = seen["stat"].decode(errors="replace")
            fields = stat[stat.rindex(")") + 2:].split()
            # Its own CPU and its reaped children's: a PostgreSQL backend that came and went
            # between two snapshots (pgbench's connections) counts in its parent's.
            table[pid] = (stat[stat.index("(") + 1:stat.rindex(")")], int(fields[1]),
                          sum(map(int, fields[11:15])) / CLOCK_TICKS)
        found = []
        for pid, (command, _, cpu_s) in table.items():
            component = _component(pid, roots, table)
            if component is None and pid not in marked:
                continue
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found.append(Proc(
                pid=pid, command=command, rss_kib=_kib(status, "VmRSS:") or 0,
                pss_kib=_pss_kib(pid), cpu_s=cpu_s,
                component=component or ("rabbitmq" if command in RABBITMQ_HELPERS else "other"),
            ))
        return found


def _component(pid: int, roots: dict[int, str],
               table: dict[int, tuple[str, int, float]]) -> str | None:
    """The component whose process, or an ancestor of it, this is."""
    for _ in range(64):
        if pid in roots:
            return roots[pid]
        if pid not in table or pid <= 1:
            return None
        pid = table[pid][1]
    return None


def _kib(status: str, key: str) -> int | None:
    for line in status.splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return None


def _pss_kib(pid: int) -> int | None:
    try:
        return _kib(Path(f"/proc/{pid}/smaps_rollup").read_text(), "Pss:")
    except OSError:
        return None


def cpu_by_component(before: list[Proc], after: list[Proc]) -> dict[str, float]:
    """CPU seconds each component used between two snapshots."""
    earlier = {p.pid: p.cpu_s for p in before}
    used: dict[str, float] = {}
    for p in after:
        used[p.component] = used.get(p.component, 0.0) + p.cpu_s - earlier.get(p.pid, 0.0)
    return used
