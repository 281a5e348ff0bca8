"""The rules the storefront's order page and the lab's Python share, read from their one copy:
nginx/html/assets/lab-rules.js, an ES module whose default export is a JSON object (the page
imports it; no build step). The trace tree's own steps are in jaeger.py and trace-view.js,
held to the same answers by tests/unit/test_trace_view.py."""

import json
from pathlib import Path
from typing import Any

FILE = Path(__file__).resolve().parents[1] / "nginx" / "html" / "assets" / "lab-rules.js"


def _load() -> dict[str, Any]:
    text = FILE.read_text(encoding="utf-8")
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


RULES = _load()
SERVICE_PREFIX: str = RULES["service_prefix"]
ORDER_STEPS: tuple[str, ...] = tuple(RULES["order_steps"])
FINAL_STATUSES: tuple[str, ...] = tuple(RULES["final_statuses"])
# Orders on their way: every step but the final ones.
OPEN_STATUSES: tuple[str, ...] = tuple(s for s in ORDER_STEPS if s not in FINAL_STATUSES)
PARENT_REFERENCE: str = RULES["trace_tree"]["parent_reference"]
TRACE_ID_HEX_DIGITS: int = RULES["trace_tree"]["trace_id_hex_digits"]


def short_service(service: str) -> str:
    """A service's name without the lab's prefix: api, worker, gateway, web."""
    return service.removeprefix(SERVICE_PREFIX)


def span_in_error(tags: dict[str, Any]) -> bool:
    """The one rule of "span in error": OpenTracing's error tag or OpenTelemetry's status."""
    # Equal in value and type, as JavaScript's includes() compares: a tag of 1 is not true.
    return any(tags.get(key) == v and type(tags.get(key)) is type(v)
               for key, values in RULES["span_error"]["tags"].items() for v in values)


def error_message(tags: dict[str, Any]) -> str:
    return next((str(tags[k]) for k in RULES["span_error"]["message_tags"] if tags.get(k)), "")


def component(tags: dict[str, Any], service: str) -> str:
    """Which part of the system a span stands for: database, queue, or its service."""
    for rule in RULES["span_component"]:
        if rule.get("tag") in tags or tags.get("span.kind") in rule.get("kinds", ()):
            return rule["component"]
    return short_service(service)
