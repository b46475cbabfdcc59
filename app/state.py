"""Process-wide objects hung on ``app.state`` at start-up (never at import time) and their dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.chainctx import ChainContext
from app.errors import ServiceUnavailable
from chain.errors import ChainError

__all__ = ["ChainDep", "OptionalChainDep"]


def _chain(request: Request) -> ChainContext:
    """The connected chain context (503 naming the node when it is down)."""
    try:
        chain: ChainContext = request.app.state.chain_holder.get()
    except ChainError as exc:
        raise ServiceUnavailable(f"the chain is not reachable: {exc}") from exc
    return chain


def _optional_chain(request: Request) -> ChainContext | None:
    """The chain context if the node answers, else None: uploads and reads keep working with the node down."""
    try:
        chain: ChainContext = request.app.state.chain_holder.get()
    except ChainError:
        return None
    return chain


ChainDep = Annotated[ChainContext, Depends(_chain)]
OptionalChainDep = Annotated[ChainContext | None, Depends(_optional_chain)]
