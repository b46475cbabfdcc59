"""Status of relayed transactions (the ``status_url`` of every 202 a relay endpoint answers)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from app.deps import CurrentPrincipal, DbSession
from app.services import relay as service

__all__ = ["router"]

router = APIRouter(prefix="/v1/relay", tags=["relay"])


@router.get("/{relay_id}")
def relay_status(
    relay_id: Annotated[str, Path(min_length=36, max_length=36)], principal: CurrentPrincipal, session: DbSession
) -> dict[str, Any]:
    """One relayed transaction of your party: ``pending`` (queued or awaiting its receipt), ``mined``,
    ``reverted`` or ``failed`` (with ``error``); ``result`` carries what the gateway did once it was mined."""
    return service.public_status(service.get_status(session=session, principal=principal, relay_id=relay_id))
