"""The in-process layer itself: a run interrupted as a CI timeout or ./lab test would interrupt
it (SIGTERM) stops its PostgreSQL cluster and removes its files."""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from labctl.config import ROOT
from tests.helpers import wait_for


def _postmasters(under: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cmdline.startswith("/usr/lib/postgresql/") and f"-D {under}/" in cmdline:
            found.append(cmdline)
    return found


def test_sigterm_stops_the_cluster_and_leaves_nothing():
    tmp = Path(tempfile.mkdtemp(prefix="lab-api-layer-"))
    tmp.chmod(0o755)  # the nested run's cluster lives here (TMPDIR), reachable by `postgres`
    try:
        run = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "pytest"), "-q", "-p", "no:cacheprovider",
             "tests/api/test_products.py"], cwd=ROOT, env={**os.environ, "TMPDIR": str(tmp)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_for(lambda: _postmasters(tmp) or run.poll() is not None, 60, "its cluster")
        assert run.poll() is None, "the nested run ended before its cluster was seen"
        run.send_signal(signal.SIGTERM)
        out, _ = run.communicate(timeout=60)
        assert "KeyboardInterrupt: signal 15" in out, out[-2000:]
        assert _postmasters(tmp) == []
        assert list(tmp.iterdir()) == [], "the cluster's files are left"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
