"""The registry tests/e2e/test_semconv.py checks span attributes against: it tells the
pre-2023 names from today's."""

import pytest

from tests.semconv import registry


@pytest.mark.parametrize("key", [
    "http.method", "http.status_code", "http.url", "http.target", "net.peer.name",
    "net.peer.port", "db.statement", "db.user", "db.system", "db.name", "db.operation",
])
def test_the_old_names_are_deprecated(key):
    assert registry()[key] is False


@pytest.mark.parametrize("key", [
    "http.request.method", "http.response.status_code", "http.route", "url.path", "url.full",
    "server.address", "db.system.name", "db.namespace", "db.query.text", "db.operation.name",
    "messaging.message.id", "service.instance.id", "deployment.environment.name",
])
def test_the_stable_and_current_names_are_current(key):
    assert registry()[key] is True


def test_the_celery_instrumentations_own_messaging_keys_are_not_named_at_all():
    assert "messaging.destination_kind" not in registry()
    assert "messaging.destination" not in registry()
