"""Issue 24 part 4: a real purchase's trace speaks today's OpenTelemetry. Every attribute key of
the API's and the worker's spans and resources is a current key of the semantic conventions the
pinned opentelemetry-semantic-conventions package lists (tests/semconv.py), or the lab's own,
under `recordstore.*`. No deprecated HTTP or database key passes.

The one known exception: the Celery instrumentation (opentelemetry-instrumentation-celery)
offers no switch to the current messaging names and sets, on its own spans only, the deprecated
`messaging.destination_kind`, `messaging.destination` and `messaging.conversation_id`, and its
own `celery.*` keys (docs/how-it-is-built.md says so)."""

import uuid

import httpx
import pytest

from tests.helpers import get_json, wait_for, wait_for_order
from tests.semconv import registry

pytestmark = pytest.mark.stack

API = "kodekloud-record-store-api"
WORKER = "kodekloud-record-store-worker"
APP_NAMESPACE = "recordstore."
# Jaeger's model (and the stand-in's) adds these to every span: not attributes of the span.
JAEGER_TAGS = frozenset({"span.kind", "error", "internal.span.format"})
CELERY_SCOPE = "opentelemetry.instrumentation.celery"
CELERY_LEGACY_KEYS = frozenset({
    "messaging.destination_kind", "messaging.destination", "messaging.conversation_id"})
# service.name is Jaeger's serviceName, not among a process's tags.
RESOURCE_KEYS = ("service.namespace", "service.version", "deployment.environment.name",
                 "service.instance.id")


def _tags(tags: list[dict]) -> dict:
    return {t["key"]: t.get("value") for t in tags or []}


def _purchase(gateway, lab) -> dict:
    cid = f"semconv-{uuid.uuid4().hex[:10]}"
    accepted = gateway.post("/checkout", json={"product_id": 4},
                            headers={"X-Correlation-ID": cid})
    assert accepted.status_code == 202, accepted.text
    assert wait_for_order(gateway, accepted.json()["order_id"])["status"] == "confirmed"
    trace_id = accepted.json()["trace_id"]

    def complete():
        body = get_json(lab.url("JAEGER_UI_PORT", f"/api/traces/{trace_id}"))
        trace = body["data"][0] if body else None
        names = {s["operationName"] for s in trace["spans"]} if trace else set()
        return trace if {"checkout_order", "send_email", "run/send_order_confirmation"} <= names \
            else None

    return wait_for(complete, 30, f"the whole trace {trace_id}")


def misnamed(trace: dict) -> list[str]:
    """Each attribute key of the trace's API and worker spans and resources that is neither a
    current semantic-conventions key nor the lab's own."""
    known = registry()
    bad = []
    processes = {pid: p for pid, p in trace["processes"].items()
                 if p["serviceName"] in (API, WORKER)}
    for process in processes.values():
        bad += [f"resource of {process['serviceName']}: {key}" for key in _tags(process["tags"])
                if not known.get(key)]
    for span in trace["spans"]:
        if span["processID"] not in processes:
            continue
        tags = _tags(span["tags"])
        celery = tags.get("otel.scope.name") == CELERY_SCOPE
        for key in tags.keys() - JAEGER_TAGS:
            if known.get(key) or key.startswith(APP_NAMESPACE):
                continue
            if celery and (key in CELERY_LEGACY_KEYS or key.startswith("celery.")):
                continue
            bad.append(f"{span['operationName']}: {key}"
                       + (" (deprecated)" if key in known else " (not in the registry)"))
    return bad


def test_a_purchases_trace_has_only_current_semantic_convention_keys_or_the_labs(lab, gateway):
    trace = _purchase(gateway, lab)
    assert not misnamed(trace), misnamed(trace)

    keys = {t["key"] for s in trace["spans"] for t in s["tags"]}
    # Not passing by having nothing to check: the stable names are there, and the lab's own.
    assert {"http.request.method", "http.route", "http.response.status_code", "db.system.name",
            "db.query.text", "db.namespace", "server.address", "messaging.message.id",
            "recordstore.correlation_id", "recordstore.order.id", "recordstore.product.id",
            "recordstore.payment.status", "recordstore.task.attempt"} <= keys
    for process in trace["processes"].values():
        resource = _tags(process["tags"])
        assert all(resource.get(key) for key in RESOURCE_KEYS), resource
        assert resource["service.namespace"] == "kodekloud-record-store"


def _instance_of(lab, trace_id: str, service: str) -> set[str]:
    body = wait_for(lambda: get_json(lab.url("JAEGER_UI_PORT", f"/api/traces/{trace_id}")), 20,
                    f"trace {trace_id}")
    return {_tags(p["tags"])["service.instance.id"] for p in body["data"][0]["processes"].values()
            if p["serviceName"] == service}


def test_each_api_and_worker_process_is_an_instance_of_its_own(lab, gateway):
    """Two API processes and two worker processes (API_WORKERS, WORKER_PROCESSES in .env), one
    environment: each has its own service.instance.id. The API straight on its port, a new
    connection each time (the gateway keeps its upstream connections: one process may answer
    them all); the worker's tasks, by purchases, until two of each answered."""
    api: set[str] = set()

    def two_api_instances() -> bool:
        answer = httpx.get(lab.url("API_PORT", "/products/1"), headers={"Connection": "close"})
        api.update(_instance_of(lab, answer.headers["x-trace-id"], API))
        return len(api) == 2

    wait_for(two_api_instances, 60, lambda: f"two API instances (seen {api})", interval_s=0)
    worker: set[str] = set()

    def two_worker_instances() -> bool:
        for process in _purchase(gateway, lab)["processes"].values():
            if process["serviceName"] == WORKER:
                worker.add(_tags(process["tags"])["service.instance.id"])
        return len(worker) == 2

    wait_for(two_worker_instances, 60, lambda: f"two worker instances (seen {worker})",
             interval_s=0)
