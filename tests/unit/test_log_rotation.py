"""Two processes share one log file (compose: uvicorn's workers in api.log, the worker's
processes in worker.log). Across a rollover no line of an order is lost: the writers follow the
file, and the order page's reader reads the rotated file as well as the current one."""

import subprocess
import sys
import textwrap

from labctl.config import ROOT
from recordstore import logs
from recordstore.journey_logs import read_journey

CID = "rotation-test-cid"
LINES = 200  # per process; about 330 bytes each: some 130 kB in all
MAX_BYTES = 80 * 1024  # so the file rolls over once, not twice (two generations are kept)
WRITER = textwrap.dedent("""
    import sys, structlog
    from recordstore import logs
    logs.LOG_FILE_MAX_BYTES = int(sys.argv[2])
    logs.configure_logging("json", "INFO", sys.argv[1])
    log = structlog.get_logger("rotation")
    sys.stdin.readline()  # both processes start writing together
    for n in range(int(sys.argv[3])):
        log.info("order_step", correlation_id=sys.argv[5] if n % 2 else "someone-else",
                 writer=sys.argv[4], n=n, padding="x" * 120)
""")


def test_a_rollover_with_two_writers_loses_no_line_of_an_order(tmp_path):
    path = tmp_path / "api.log"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(MAX_BYTES),
                                 str(LINES), name, CID], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for name in ("a", "b")]
    for w in writers:
        w.stdin.write("go\n")
        w.stdin.flush()
    for w in writers:
        _, err = w.communicate(timeout=60)
        assert w.returncode == 0, err
    assert (tmp_path / "api.log.1").exists(), "the file never rolled over: the test proves nothing"
    found = read_journey(tmp_path, CID, max_lines=10 * LINES)
    seen = sorted((line["writer"], line["n"]) for line in found.lines)
    wanted = sorted((name, n) for name in ("a", "b") for n in range(1, LINES, 2))
    assert len(seen) == len(wanted) and seen == wanted, (
        f"{len(wanted) - len(set(seen) & set(wanted))} of the order's {len(wanted)} lines lost")
    assert logs.LOG_FILE_MAX_BYTES > MAX_BYTES  # the lab's own size is untouched here
