"""The correlation id: validated at the edge, kept in a contextvar for logs and spans."""

import re
import uuid

import structlog

HEADER = "X-Correlation-ID"
# Celery already uses "correlation_id" for the task id, so the task header gets its own name.
TASK_HEADER = "x_correlation_id"
LOG_FIELD = "correlation_id"
# On spans, in the application's own attribute namespace (recordstore.*).
ATTRIBUTE = "recordstore.correlation_id"
# The same bounded, safe character set the gateway accepts.
PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def is_valid(value: str) -> bool:
    return bool(PATTERN.fullmatch(value))


def new_id() -> str:
    return uuid.uuid4().hex


def current() -> str | None:
    return structlog.contextvars.get_contextvars().get(LOG_FIELD)
