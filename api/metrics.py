"""The API's HTTP metrics. Request counts come from prometheus-fastapi-instrumentator; the
latency histogram is our own so that each observation carries its trace id as an exemplar
(a latency spike in Grafana links to the trace that caused it)."""

from fastapi import FastAPI, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_fastapi_instrumentator import Instrumentator, metrics

LATENCY = Histogram(
    "http_request_duration_seconds",
    "Latency of HTTP requests, by handler and method (exemplars: trace_id).",
    ["handler", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10),
)


def _observe_latency(info: metrics.Info) -> None:
    trace_id = info.response.headers.get("x-trace-id") if info.response is not None else None
    LATENCY.labels(info.modified_handler, info.method).observe(
        info.modified_duration, exemplar={"trace_id": trace_id} if trace_id else None
    )


def instrument(app: FastAPI, enabled: bool = True) -> None:
    """Count and time every request. Disabled (METRICS_ENABLED=false, to measure what metrics
    cost), requests pass uninstrumented and /metrics answers empty, so health checks still pass."""
    if enabled:
        Instrumentator(
            should_group_status_codes=False, excluded_handlers=["/metrics"],
        ).add(metrics.requests()).add(_observe_latency).instrument(app)
    registry = REGISTRY if enabled else CollectorRegistry()

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        # Exemplars exist only in the OpenMetrics format, which Prometheus asks for.
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)
