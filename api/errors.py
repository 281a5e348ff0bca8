"""Every error is JSON {"error", "detail", "correlation_id"} with its status; never a trace."""

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from recordstore import correlation
from recordstore.checkout import InsufficientStock, ProductNotFound
from recordstore.db import is_outage

log = structlog.get_logger("api.errors")

# The guide's dependency map: what a learner loses when a dependency is down.
AFFECTED_FEATURES = {
    "database": ["checkout", "browsing", "order history"],
    "broker": ["order processing", "emails"],
}
SLUGS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
         422: "validation_error", 503: "service_unavailable"}


def error_response(status: int, error: str, detail, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": error, "detail": detail, "correlation_id": correlation.current()},
        headers=headers,
    )


def dependency_down(name: str) -> JSONResponse:
    return error_response(
        503, f"{name}_unavailable",
        f"the {name} is unavailable; affected: {', '.join(AFFECTED_FEATURES[name])}",
        headers={"Retry-After": "5"},
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation(_: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                  for e in errors]
        return error_response(422, "validation_error", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, SLUGS.get(exc.status_code, "error"), exc.detail,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(ProductNotFound)
    async def not_found(_: Request, exc: ProductNotFound):
        return error_response(404, "product_not_found", str(exc))

    @app.exception_handler(InsufficientStock)
    async def no_stock(_: Request, exc: InsufficientStock):
        return error_response(409, "insufficient_stock", str(exc))

    async def database(_: Request, exc: DBAPIError | PoolTimeout):
        if not is_outage(exc):
            log.exception("database_error")
            return error_response(500, "internal_error", "unexpected database error")
        if isinstance(exc, PoolTimeout):
            log.error("database_pool_exhausted", error=str(exc).splitlines()[0])
        else:
            log.error("database_unavailable", error=str(exc.orig).splitlines()[0])
        return dependency_down("database")

    app.add_exception_handler(DBAPIError, database)
    app.add_exception_handler(PoolTimeout, database)

    @app.exception_handler(BrokerError)
    async def broker(_: Request, exc: BrokerError):
        log.error("broker_unavailable", error=str(exc))
        return dependency_down("broker")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception):
        log.exception("unhandled_error")
        return error_response(500, "internal_error", "unexpected error; see the API log")
