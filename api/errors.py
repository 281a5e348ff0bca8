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
from recordstore.config import get_settings
from recordstore.db import DatabaseProblem, classify, first_line
from recordstore.metrics import DATABASE_ERRORS

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


def database_problem(problem: DatabaseProblem, exc: BaseException) -> JSONResponse:
    """The answer to a database error: each problem its own status, code and detail, the same
    words /health uses for the database's state."""
    s = get_settings()
    if problem is DatabaseProblem.UNAVAILABLE:
        return dependency_down("database")
    if problem is DatabaseProblem.BUSY:
        return error_response(
            503, problem, f"the database is up but no connection was free within "
            f"{s.db_connect_timeout_s} s: every connection is in use", headers={"Retry-After": "2"})
    if problem is DatabaseProblem.TIMEOUT:
        limit = ("its lock timeout" if getattr(exc.orig, "sqlstate", "") == "55P03"  # type: ignore[union-attr]
                 else f"the {s.db_statement_timeout_ms} ms statement timeout")
        return error_response(
            504, problem, f"a database statement ran past {limit} and was cancelled: the "
            "database is up, the query is slow")
    return error_response(
        503, problem, "the transaction conflicted with a concurrent one (deadlock or "
        "serialization failure) and was rolled back, nothing saved: retry",
        headers={"Retry-After": "1"})


def record_database_problem(request: Request, problem: DatabaseProblem,
                            exc: BaseException) -> None:
    """The log event, the metric and the request's span status: all name the same problem."""
    DATABASE_ERRORS.labels(reason=problem.reason).inc()
    log.error(problem.value, error=first_line(exc))
    # The server span's status is set by its instrumentation as the answer starts (an error
    # without a description); the middleware puts this one back after it.
    request.state.span_status = f"{problem.value}: {first_line(exc)}"


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

    async def database(request: Request, exc: DBAPIError | PoolTimeout):
        problem = classify(exc)
        if problem is None:
            log.exception("database_error")
            return error_response(500, "internal_error", "unexpected database error")
        record_database_problem(request, problem, exc)
        return database_problem(problem, exc)

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
