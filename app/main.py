"""The FastAPI application factory: ``uvicorn app.main:create_app --factory``."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.chainctx import ChainHolder
from app.db import make_engine, make_session_factory, upgrade
from app.errors import install_error_handlers
from app.portal import install as install_portal
from app.routers import agreements, analysis, batches, parties, system, verify
from app.services.parties import ensure_admin_party
from app.settings import Settings, get_settings

__all__ = ["create_app"]

log = logging.getLogger("qcn.gateway")


def create_app(settings: Settings | None = None, *, embedded_worker: bool | None = None) -> FastAPI:
    """Build the gateway. ``embedded_worker`` runs the anchoring worker in this process (default: dev only)."""
    settings = settings or get_settings()
    engine = make_engine(settings.db_url)
    upgrade(engine)
    session_factory = make_session_factory(engine)
    ensure_admin_party(session_factory=session_factory)
    holder = ChainHolder(settings)
    run_worker = settings.env == "dev" if embedded_worker is None else embedded_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if run_worker:
            from app.worker import run_worker_thread

            thread = run_worker_thread(settings=settings, session_factory=session_factory, holder=holder, stop=stop)
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)
            engine.dispose()

    app = FastAPI(
        title="qcn gateway",
        version="0.1.0",
        description="Quality Contract Network: upload inspection batches, anchor them on chain, serve portable proofs.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.chain_holder = holder
    install_error_handlers(app)
    for module in (system, parties, batches, verify, analysis, agreements):
        app.include_router(module.router)
    from app.routers import cases, webhooks  # Step 5: tracing cases and webhooks

    for module in (cases, webhooks):
        app.include_router(module.router)
    install_portal(app)  # issue 13: the web portal
    return app


def app_from_env() -> FastAPI:
    """Factory for ``qcn serve`` / uvicorn workers: ``QCN_EMBEDDED_WORKER=1|0`` overrides the default."""
    import os

    flag = os.environ.get("QCN_EMBEDDED_WORKER")
    return create_app(embedded_worker=None if flag is None else flag == "1")
