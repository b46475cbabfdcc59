"""Health and chain information."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from app.deps import DbSession
from app.schemas import ChainInfo
from app.state import ChainDep

router = APIRouter(tags=["system"])


@router.get("/health")
def health(session: DbSession) -> dict[str, Any]:
    """Liveness + database reachability (the chain may be down: uploads still work and anchor later)."""
    session.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get("/v1/chain", response_model=ChainInfo)
def chain_info(chain: ChainDep) -> ChainInfo:
    """Chain id, contract addresses and the relayer account this gateway anchors with."""
    return chain.info()
