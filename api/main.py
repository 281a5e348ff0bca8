"""The checkout API application (`uvicorn api.main:app`)."""

from contextlib import asynccontextmanager

from celery.signals import before_task_publish
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

from api import errors
from api import metrics as http_metrics
from api.middleware import CorrelationIdMiddleware
from api.routes import admin, checkout, health, orders, products
from recordstore import chaos
from recordstore.config import get_settings
from recordstore.db import get_engine
from recordstore.logs import configure_logging
from recordstore.outbox import OutboxRelay, enqueued_marks
from recordstore.telemetry import configure_tracing, drop_order_trace_context


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level, settings.log_file)
    provider = configure_tracing()
    relay = OutboxRelay(settings)
    faults = (chaos.PoolHog(), chaos.StockLock())

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        relay.start()
        enqueued_marks.start()
        for fault in faults:
            fault.start()
        yield
        for fault in faults:
            fault.stop()
        enqueued_marks.stop()
        relay.stop()
        if provider is not None:
            provider.shutdown()

    # Swagger UI from the lab itself (/docs/assets, the files fastapi-offline ships), not a
    # CDN: the lab works offline. No /redoc: the gateway does not route it.
    app = FastAPIOffline(title="Record Store checkout API", version="1.0.0", lifespan=lifespan,
                         static_url="/docs/assets", redoc_url=None)
    app.add_middleware(CorrelationIdMiddleware)
    errors.install(app)
    for module in (health, products, checkout, orders, admin):
        app.include_router(module.router)
    http_metrics.instrument(app, settings.metrics_enabled, settings.order_final_within_s)
    if provider is not None:
        # No spans of their own for the ASGI receive and send events: two or three per request
        # that say nothing the server span does not, and cost CPU on every one.
        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider,
                                           exclude_spans=["receive", "send"])
        SQLAlchemyInstrumentor().instrument(engine=get_engine(), tracer_provider=provider)
        # Injects the trace context into the task headers, so the worker joins this trace.
        CeleryInstrumentor().instrument(tracer_provider=provider)
        # After it (receivers run in the order connected): the trace_context_drop fault.
        before_task_publish.connect(drop_order_trace_context, weak=False)
    return app


app = create_app()
