"""One structlog chain per process: structlog, stdlib, uvicorn and Celery records alike."""

import logging
import logging.handlers
import os
import sys

import structlog
from opentelemetry import trace

LOG_FILE_MAX_BYTES = 16 * 1024 * 1024


def _add_trace_ids(_logger, _method, event_dict):
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


def configure_logging(fmt: str = "json", level: str = "INFO", log_file: str = "") -> None:
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
        # Bounded: one old file is kept. Two processes may share the file (uvicorn's workers);
        # a rotation then loses a few of the other's lines, which a lab can afford.
        copy = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=LOG_FILE_MAX_BYTES, backupCount=1, encoding="utf-8")
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
