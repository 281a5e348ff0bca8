"""Runtime fault toggles for the exercises. Needs `Authorization: Bearer <ADMIN_TOKEN>`."""

import secrets
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, HTTPException

from recordstore import chaos
from recordstore.config import get_settings

router = APIRouter(prefix="/admin", tags=["admin"])


def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
    token = get_settings().admin_token
    if not token:
        raise HTTPException(503, "the admin routes are off: no ADMIN_TOKEN is set (./lab up "
                            "makes one; with plain compose, export ADMIN_TOKEN first)")
    expected = f"Bearer {token}"
    if not authorization or not secrets.compare_digest(authorization, expected):
        raise HTTPException(401, "a valid 'Authorization: Bearer <ADMIN_TOKEN>' header is needed",
                            headers={"WWW-Authenticate": "Bearer"})


Guarded = [Depends(require_token)]


def _view(active: dict[str, float]) -> dict:
    # Every process (the API's, the worker's) rereads the faults at most this often.
    return {"active": active, "in_effect_within_s": chaos.CACHE_S,
            "notes": chaos.notes(active, get_settings()),
            "available": {name: {"description": f.description, "min": f.minimum,
                                 "max": f.maximum} for name, f in chaos.FAULTS.items()}}


@router.get("/chaos", dependencies=Guarded, summary="The faults switched on now")
def show_chaos() -> dict:
    return _view(chaos.read_faults())


@router.put("/chaos", dependencies=Guarded, summary="Switch faults on (or change them)")
def set_chaos(changes: Annotated[dict[str, float], Body(examples=[{"payment_failure_rate": 0.3}])]
              ) -> dict:
    try:
        return _view(chaos.set_faults(changes))
    except chaos.ChaosError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.delete("/chaos", dependencies=Guarded, summary="Switch every fault off")
def reset_chaos() -> dict:
    return _view(chaos.reset_faults())
