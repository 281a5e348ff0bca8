"""Issue 28: natively, the lab's processes are supervised as compose's `restart: unless-stopped`
would: a component killed under load comes back by itself (and `./lab status` says it was
restarted), every accepted order completes, and one stopped on purpose stays stopped."""

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from labctl.components import BY_NAME
from labctl.proc import processes
from recordstore.db import session_scope
from recordstore.models import Order
from tests.helpers import lab_command, lab_run, wait_for, wait_for_order

pytestmark = [pytest.mark.stack, pytest.mark.disruptive]


def related(field: int, value: int) -> list[int]:
    """Processes whose stat field (counted after the command's name) is `value`."""
    return [pid for pid, seen in processes("stat")
            if int(seen["stat"].rsplit(b")", 1)[1].split()[field]) == value]


def children(pid: int) -> list[int]:
    return related(1, pid)  # the parent's pid


def group(pgid: int) -> list[int]:
    return related(2, pgid)  # the process group


class Shoppers:
    """Checkouts one after another in a thread; what the gateway accepted (202) is kept."""

    def __init__(self, base_url: str, product_id: int) -> None:
        self.product_id = product_id
        self.prefix = f"sup-{uuid.uuid4().hex[:8]}-"
        self.accepted: list[int] = []
        self.refused = 0
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=base_url, timeout=10)
        self._thread = threading.Thread(target=self._shop, daemon=True)

    def _shop(self) -> None:
        while not self._stop.is_set():
            try:
                resp = self._client.post(
                    "/checkout", json={"product_id": self.product_id, "quantity": 1},
                    headers={"X-Correlation-ID": f"{self.prefix}{uuid.uuid4().hex[:10]}"})
                if resp.status_code == 202:
                    self.accepted.append(resp.json()["order_id"])
                else:
                    self.refused += 1
            except httpx.HTTPError:
                self.refused += 1
            time.sleep(0.2)

    def placed(self) -> list[int]:
        """Every order of this run in the database: an API killed after its commit but before
        its answer leaves an order that no shopper saw accepted."""
        with session_scope() as s:
            return [o.id for o in s.query(Order).filter(Order.correlation_id.startswith(
                self.prefix))]

    def __enter__(self) -> "Shoppers":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._client.close()


def uid(pid: int) -> int:
    return Path(f"/proc/{pid}").stat().st_uid


def comes_back(lab, name: str, old_pid: int, old_uid: int) -> int:
    comp = BY_NAME[name]

    def restarted() -> int | None:
        pid = comp.pid(lab)
        return pid if pid not in (None, old_pid) and comp.healthy(lab)[0] else None

    pid = wait_for(restarted, 60, f"{name} to be restarted and healthy")
    assert uid(pid) == old_uid, f"{name} came back as another user"
    return pid


def restarts(lab, name: str) -> int:
    out = lab_run(lab, "status").stdout
    line = next(row for row in out.splitlines() if row.split()[:1] == [name])
    marker = "restarted "
    return int(line.split(marker, 1)[1].split()[0]) if marker in line else 0


def test_killed_components_come_back_and_every_accepted_order_completes(lab, gateway):
    product_id = 6
    stock_before = gateway.get(f"/products/{product_id}").json()["stock"]
    assert stock_before >= 200, "enough stock that no order fails for want of it"
    before = {name: restarts(lab, name) for name in ("worker", "api", "gateway")}
    with Shoppers(lab.url("GATEWAY_PORT"), product_id) as shoppers:
        wait_for(lambda: len(shoppers.accepted) >= 3, 30, "checkouts flowing")

        # The kernel kills the worker's two Celery processes, as an out-of-memory kill would.
        worker = BY_NAME["worker"].pid(lab)
        worker_uid = uid(worker)
        killed = children(worker)
        assert killed, "the worker's Celery processes"
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        comes_back(lab, "worker", worker, worker_uid)

        api = BY_NAME["api"].pid(lab)
        api_uid = uid(api)
        for pid in group(api):
            os.kill(pid, signal.SIGKILL)
        comes_back(lab, "api", api, api_uid)

        gateway_master = BY_NAME["gateway"].pid(lab)
        gateway_uid = uid(gateway_master)
        os.kill(gateway_master, signal.SIGKILL)  # its workers live on and hold the ports
        comes_back(lab, "gateway", gateway_master, gateway_uid)

        accepted_before = len(shoppers.accepted)
        wait_for(lambda: len(shoppers.accepted) >= accepted_before + 3, 30,
                 "checkouts accepted again after the restarts")
    placed = shoppers.placed()
    assert len(shoppers.accepted) >= 6 and set(shoppers.accepted) <= set(placed)
    for order_id in placed:
        assert wait_for_order(gateway, order_id, timeout_s=90)["status"] == "confirmed"
    stock_after = gateway.get(f"/products/{product_id}").json()["stock"]
    assert stock_after == stock_before - len(placed)
    for name, count in before.items():
        assert restarts(lab, name) == count + 1, lab_run(lab, "status").stdout
    log = lab_run(lab, "logs", "supervisor")
    assert log.returncode == 0
    for name in before:
        assert f"{name}: restarted" in log.stdout, log.stdout


def test_a_component_stopped_on_purpose_stays_stopped(lab, gateway):
    comp = BY_NAME["worker"]
    before = restarts(lab, "worker")
    lab_command(lab, "stop", "worker")
    try:
        deadline = time.monotonic() + 5  # the supervisor's first restart would come within ~1 s
        while time.monotonic() < deadline:
            assert comp.pid(lab) is None, "the worker, stopped on purpose, was started again"
            time.sleep(0.2)
        assert "stopped" in next(row for row in lab_run(lab, "status").stdout.splitlines()
                                 if row.startswith("worker "))
    finally:
        lab_command(lab, "start", "worker")
    assert restarts(lab, "worker") == before
    # Started again on purpose, it is supervised again.
    pid = comp.pid(lab)
    was = uid(pid)
    os.killpg(pid, signal.SIGKILL)
    comes_back(lab, "worker", pid, was)
