"""The API's CPU (api/cpu.py) counts every process that serves it: with uvicorn --workers 2,
the seconds a worker burns show whichever worker answers the scrape, and the limit is one
core a worker. Real uvicorn processes: what they report is what the lab's Prometheus scrapes."""

import os
import socket
import subprocess
import sys
import textwrap

import httpx
import pytest

from api.cpu import api_cpu, usable_cores
from labctl.config import ROOT
from tests.helpers import wait_for

APP = textwrap.dedent("""
    import os, time
    from fastapi import FastAPI
    from api.cpu import api_cpu

    app = FastAPI()

    @app.get("/cpu")
    def cpu():
        seconds, cores = api_cpu()
        return {"pid": os.getpid(), "seconds": seconds, "cores": cores}

    @app.get("/burn")
    def burn():
        started = time.process_time()
        while time.process_time() - started < 1.0:
            pass
        return {"pid": os.getpid()}
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_process_is_its_own_server():
    seconds, cores = api_cpu()
    assert seconds > 0 and cores == 1


@pytest.fixture
def two_workers(tmp_path):
    (tmp_path / "cpuapp.py").write_text(APP)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "cpuapp:app", "--app-dir", str(tmp_path),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/cpu", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
    try:
        wait_for(up, 30, "uvicorn with two workers")
        yield url
    finally:
        server.terminate()
        server.wait(10)


def test_every_worker_counts_whichever_answers(two_workers):
    def get(path: str) -> dict:  # a connection each: either worker may take it
        return httpx.get(f"{two_workers}{path}", timeout=10).json()

    before = get("/cpu")
    assert before["cores"] == min(2, usable_cores()), before
    burnt = get("/burn")["pid"]
    # Read it from the other worker: the second the one that burnt used is in its sum.
    other = wait_for(lambda: (r := get("/cpu"))["pid"] != burnt and r, 20,
                     "an answer from the worker that did not burn", interval_s=0)
    assert other["seconds"] - before["seconds"] >= 0.9, (before, other)
