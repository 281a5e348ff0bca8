"""METRICS_ENABLED=false (for ./lab bench to measure what metrics cost): the API records
nothing, its business counters included, and its /metrics still answers, since health checks
and Prometheus ask for it."""

from contextlib import nullcontext

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.requests import Request

from api import metrics as http_metrics
from api.routes import checkout as route
from api.schemas import CheckoutIn
from recordstore import metrics as business
from recordstore.config import Settings


def test_metrics_are_on_unless_switched_off(monkeypatch):
    assert Settings().metrics_enabled is True
    monkeypatch.setenv("METRICS_ENABLED", "false")
    assert Settings().metrics_enabled is False


@pytest.fixture
def metrics_back_on():
    """Switching metrics off is for the whole process: on again after the test, whatever
    happens (a later test of the same worker counts on them: CI's test_outages did)."""
    yield
    business.set_enabled(True)


def test_with_metrics_off_nothing_is_instrumented_and_metrics_answers_empty(metrics_back_on):
    app = FastAPI()
    http_metrics.instrument(app, enabled=False)
    assert [m.cls.__name__ for m in app.user_middleware] == []
    endpoint = next(r.endpoint for r in app.routes if getattr(r, "path", "") == "/metrics")
    exposed = endpoint(Request({"type": "http", "headers": [
        (b"accept", b"application/openmetrics-text")]}))
    assert exposed.status_code == 200
    assert exposed.body.decode().strip() == "# EOF"  # OpenMetrics' end marker, nothing before


def recorded() -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in REGISTRY.collect() if family.name.startswith("recordstore_")
            for s in family.samples}


def test_with_metrics_off_the_business_counters_record_nothing(monkeypatch):
    """The checkout's own counters too, not only the HTTP ones: the route counts a refusal."""

    def place_order(*_):
        raise ValueError("a bug")

    monkeypatch.setattr(route, "session_scope", nullcontext)
    monkeypatch.setattr(route, "place_order", place_order)
    try:
        http_metrics.instrument(FastAPI(), enabled=False)
        before = recorded()
        with pytest.raises(ValueError):
            route.checkout(CheckoutIn(product_id=1))
        assert recorded() == before
    finally:
        business.set_enabled(True)
    with pytest.raises(ValueError):
        route.checkout(CheckoutIn(product_id=1))
    assert recorded() != before, "metrics on again: the refusal is counted"
