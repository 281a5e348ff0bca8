"""One structlog chain per process: structlog, stdlib, uvicorn and Celery records alike."""

import fcntl
import logging
import logging.handlers
import os
import sys
from collections.abc import Sequence

import structlog
from opentelemetry import trace
from structlog.typing import Processor

LOG_FILE_MAX_BYTES = 16 * 1024 * 1024
ROTATED_SUFFIX = ".1"  # the one older generation kept; recordstore.journey_logs reads it too


class SharedRotatingFileHandler(logging.handlers.WatchedFileHandler):
    """One JSON log file that several processes append to (uvicorn's workers, the worker's
    processes), kept under max_bytes plus one older generation.

    RotatingFileHandler cannot be shared: each process rotates on its own idea of the size and
    keeps writing to the file it had open, now renamed (the stdlib's docs say as much). Here the
    file's real size decides, one process at a time (a lock beside the file) renames it to
    `<file>.1`, and every process reopens the new file at its next line (WatchedFileHandler
    checks the path before each one). A line written while the others have yet to notice lands
    in `<file>.1`, which the order page's reader reads as well: none is lost."""

    def __init__(self, filename: str, max_bytes: int) -> None:
        super().__init__(filename, encoding="utf-8")
        self.max_bytes = max_bytes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if os.stat(self.baseFilename).st_size >= self.max_bytes:
                self._rotate()
        except OSError:
            pass  # the file is gone (another process is rotating): WatchedFileHandler reopens
        super().emit(record)

    def _rotate(self) -> None:
        with open(self.baseFilename + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Another process may have rotated while this one waited: decide on the size now.
            if os.stat(self.baseFilename).st_size >= self.max_bytes:
                os.replace(self.baseFilename, self.baseFilename + ROTATED_SUFFIX)


def _add_trace_ids(_logger, _method, event_dict):
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


def configure_logging(fmt: str = "json", level: str = "INFO", log_file: str = "",
                      extra: Sequence[Processor] = ()) -> None:
    """JSON lines (or a console's) on stdout and in `log_file`; `extra` processors run on each
    event after the bound context is merged in."""
    service = os.environ.get("OTEL_SERVICE_NAME", "kodekloud-record-store")

    def add_service(_logger, _method, event_dict):
        event_dict.setdefault("service", service)
        return event_dict

    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
        _add_trace_ids,
        structlog.processors.format_exc_info,
        *extra,
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handlers: list[logging.Handler] = [handler]
    if log_file:
        # Always JSON: the file is read back by programs (GET /orders/{id}/logs), not people.
        copy = SharedRotatingFileHandler(log_file, LOG_FILE_MAX_BYTES)
        copy.setFormatter(structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer()]))
        handlers.append(copy)
    logging.captureWarnings(True)  # Python warnings become log lines of the same shape
    root = logging.getLogger()
    root.handlers = handlers
    root.setLevel(level.upper())
    # uvicorn and Celery bring their own handlers: route them through the root chain instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.app.trace"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    # The API logs its own request line (with correlation id and duration) instead.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for noisy in ("amqp", "kombu", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
