import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.errors import AFFECTED_FEATURES
from recordstore import correlation
from recordstore.broker import celery_app
from recordstore.db import get_engine

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="The process answers; checks nothing")
def live() -> dict:
    """An empty route: liveness, and the floor ./lab bench measures the checkout against
    (the same gateway, uvicorn processes and middleware, no work)."""
    return {"status": "ok"}


def _probe(check) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure means the dependency is down
        return {"status": "down", "error": str(exc).splitlines()[0][:200]}
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
    down = [name for name, c in checks.items() if c["status"] != "up"]
    body = {
        "status": "ok" if not down else "degraded",
        "checks": checks,
        "down": down,
        "affected_features": sorted({f for name in down for f in AFFECTED_FEATURES[name]}),
        "correlation_id": correlation.current(),
    }
    return JSONResponse(body, status_code=503 if down else 200)
