import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.errors import AFFECTED_FEATURES
from recordstore import correlation
from recordstore.broker import celery_app
from recordstore.db import DatabaseProblem, classify, first_line, get_engine

router = APIRouter(tags=["health"])
STATES = {DatabaseProblem.UNAVAILABLE: "down", DatabaseProblem.BUSY: "busy",
          DatabaseProblem.TIMEOUT: "timeout", DatabaseProblem.CONFLICT: "conflict"}


@router.get("/health/live", summary="The process answers; checks nothing")
def live() -> dict:
    """An empty route: liveness, and the floor ./lab bench measures the checkout against
    (the same gateway, uvicorn processes and middleware, no work)."""
    return {"status": "ok"}


def _probe(check) -> dict:
    """A dependency's state. The database's in the words its errors use (classify): down
    (unreachable), busy (no connection free in time) or timeout; "down" for any other failure."""
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure means the dependency cannot serve
        problem = classify(exc)
        state = {"status": STATES.get(problem, "down"), "error": first_line(exc)[:200]}
        return {**state, "code": problem.value} if problem else state
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def _database() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def _broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.connect()


@router.get("/health", summary="The API and the state of each dependency")
def health() -> JSONResponse:
    checks = {"database": _probe(_database), "broker": _probe(_broker)}
    failing = [name for name, c in checks.items() if c["status"] != "up"]
    body = {
        "status": "ok" if not failing else "degraded",
        "checks": checks,
        # Unreachable, and up with no connection free: they differ (checks has each state).
        "down": [name for name in failing if checks[name]["status"] == "down"],
        "busy": [name for name in failing if checks[name]["status"] == "busy"],
        "affected_features": sorted({f for name in failing for f in AFFECTED_FEATURES[name]}),
        "correlation_id": correlation.current(),
    }
    return JSONResponse(body, status_code=503 if failing else 200)
