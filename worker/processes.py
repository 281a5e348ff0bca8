"""`python -m worker.processes --processes N -- celery ...`: N Celery workers, each with its own
pool, so that the worker uses more than one core (one Python process is held to one by the
GIL) while its threads still wait out the payment gateway and the mail server.

The parent imports the app once and forks, so the workers share those pages; it serves the one
/metrics of them all (they write to PROMETHEUS_MULTIPROC_DIR), forwards SIGTERM and SIGINT, and
exits as soon as one worker does, so that whatever supervises it (./lab, compose, Kubernetes)
restarts the whole. A worker gets SIGTERM if the parent dies. With one process it simply
becomes the Celery worker (exec)."""

import argparse
import ctypes
import gc
import importlib
import os
import signal
import sys

# SIGTERM is what compose and Kubernetes send the first process alone (a second one, from
# ./lab's signal to the process group, is harmless: a warm shutdown just sets a flag). SIGINT
# is not forwarded: Ctrl-C reaches every process of the terminal's group already, and a second
# SIGINT would turn Celery's warm shutdown into a cold one.
FORWARDED = (signal.SIGTERM, signal.SIGQUIT)
PR_SET_PDEATHSIG = 1
# What a worker imports as it starts, imported once in the parent so that the workers share it
# (a module imported after the fork is a copy in each).
PRELOAD = (
    "celery.apps.worker", "celery.bin.celery", "celery.bin.worker", "celery.worker.consumer",
    "celery.worker.control", "celery.worker.pidbox", "celery.worker.heartbeat",
    "celery.worker.strategy", "celery.app.trace", "celery.concurrency.thread", "celery.events",
    "kombu.transport.pyamqp", "sqlalchemy.dialects.postgresql.psycopg",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)


def node_name(command: list[str], index: int) -> list[str]:
    """The command with a node name of its own (worker@%h -> worker-2@%h): Celery's node names
    must differ, or the broker's events and remote control mix the workers up."""
    named = list(command)
    at = named.index("--hostname") + 1
    name, sep, host = named[at].partition("@")
    named[at] = f"{name}-{index}{sep}{host}"
    return named


def _parse(argv: list[str] | None) -> tuple[int, list[str]]:
    p = argparse.ArgumentParser(prog="python -m worker.processes", description=__doc__)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- celery ... worker ...")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if command[:1] != ["celery"] or "worker" not in command or args.processes < 1:
        p.error("expected --processes N (N >= 1) -- celery ... worker ...")
    return args.processes, command


def _run_worker(app, command: list[str]) -> None:
    for signum in (*FORWARDED, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)  # Celery installs its own
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    code = 1
    try:
        app.start(argv=command[1:])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    processes, command = _parse(argv)
    if processes == 1:
        os.execv(sys.executable, [sys.executable, "-m", "celery", *command[1:]])
    from prometheus_client import multiprocess

    from worker import app as worker_app

    for module in PRELOAD:
        importlib.import_module(module)
    os.environ[worker_app.PARENT_ENV] = str(os.getpid())
    gc.freeze()  # what the parent imported stays shared: no collector pass writes to it
    children: set[int] = set()
    stopping = False

    def forward(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            os.kill(pid, signum)

    def interrupted(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    for signum in FORWARDED:
        signal.signal(signum, forward)
    signal.signal(signal.SIGINT, interrupted)
    for index in range(1, processes + 1):
        pid = os.fork()
        if pid == 0:
            _run_worker(worker_app.app, node_name(command, index))
        children.add(pid)
    worker_app.serve_metrics()
    failed = False
    while children:
        pid, status = os.wait()
        children.discard(pid)
        multiprocess.mark_process_dead(pid)
        if not stopping:  # a worker died on its own: stop the others, let the supervisor restart
            failed, stopping = True, True
            for other in children:
                os.kill(other, signal.SIGTERM)
        failed = failed or os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
