"""The API's and the worker's command lines, defined once.

`./lab` builds its argv from them; docker-compose.yml, the Dockerfile's CMD and the Kubernetes
manifests must write them out literally (compose cannot import Python), and
tests/static/test_compose.py proves that they equal these, up to the `{fields}` each run mode
fills in (addresses, ports, the worker's processes and pool size).
"""

import re

API_COMMAND = (
    "uvicorn", "api.main:app", "--host", "{host}", "--port", "{port}", "--workers", "{workers}",
    # Longer than the gateway's upstream keepalive_timeout (60 s), or nginx reuses a connection
    # the API is closing and that request gets a 502 (docs/performance.md: "A rare 502 at low
    # load").
    "--no-access-log", "--timeout-keep-alive", "75", "--timeout-graceful-shutdown", "5",
)
WORKER_COMMAND = (
    # N Celery workers of one pool each (worker/processes.py): threads wait out the payment
    # gateway and the mail server, processes give it more than the one core the GIL allows.
    "python", "-m", "worker.processes", "--processes", "{processes}", "--",
    "celery", "--quiet", "-A", "worker.app", "worker", "--pool", "{pool}",
    "--concurrency", "{concurrency}", "--queues", "{queues}", "--hostname", "worker@%h",
    "--without-gossip", "--without-mingle", "--loglevel", "INFO",
)
WORKER_QUEUES = ("orders", "emails")
_FIELD = re.compile(r"\{(\w+)\}")


def fill(command: tuple[str, ...], **values: str) -> list[str]:
    """The command line with each `{field}` replaced; every field must be given."""
    return [_FIELD.sub(lambda m: str(values[m.group(1)]), arg) for arg in command]


def fields_of(command: tuple[str, ...], argv: list[str]) -> dict[str, str] | None:
    """The values `argv` gives the fields of `command`, or None when it is another command."""
    if len(argv) != len(command):
        return None
    values: dict[str, str] = {}
    for template, arg in zip(command, argv, strict=True):
        m = _FIELD.fullmatch(template)
        if m:
            values[m.group(1)] = arg
        elif template != arg:
            return None
    return values


def queues(prefix: str = "") -> str:
    """The worker's --queues: both of the app's queues, under a prefix (a test's own)."""
    return ",".join(f"{prefix}{q}" for q in WORKER_QUEUES)
