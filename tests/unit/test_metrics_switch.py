"""METRICS_ENABLED=false (for ./lab bench to measure what metrics cost): the API records
nothing, and its /metrics still answers, since health checks and Prometheus ask for it."""

from fastapi import FastAPI
from starlette.requests import Request

from api import metrics as http_metrics
from recordstore.config import Settings


def test_metrics_are_on_unless_switched_off(monkeypatch):
    assert Settings().metrics_enabled is True
    monkeypatch.setenv("METRICS_ENABLED", "false")
    assert Settings().metrics_enabled is False


def test_with_metrics_off_nothing_is_instrumented_and_metrics_answers_empty():
    app = FastAPI()
    http_metrics.instrument(app, enabled=False)
    assert [m.cls.__name__ for m in app.user_middleware] == []
    endpoint = next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/metrics")
    exposed = endpoint(Request({"type": "http", "headers": [
        (b"accept", b"application/openmetrics-text")]}))
    assert exposed.status_code == 200
    assert exposed.body.decode().strip() == "# EOF"  # OpenMetrics' end marker, nothing before
