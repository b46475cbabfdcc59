"""The FastAPI application factory: ``uvicorn app.main:create_app --factory``."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app import heap, wakeups
from app.chainctx import ChainHolder
from app.db import make_engine, make_session_factory, upgrade
from app.errors import install_error_handlers
from app.parse_slots import ParseSlots
from app.portal import install as install_portal
from app.routers import agreements, analysis, batches, parties, system, verify
from app.schemas import ERROR_RESPONSES
from app.services.parties import ensure_admin_party
from app.settings import Settings, gateway_production_problems, get_settings

__all__ = ["create_app"]

log = logging.getLogger("qcn.gateway")


def create_app(
    settings: Settings | None = None, *, embedded_worker: bool | None = None, settle_heap: bool = False
) -> FastAPI:
    """Build the gateway. ``embedded_worker`` runs the anchoring worker in this process (default: dev only);
    ``settle_heap``: a server process of its own (``qcn serve``), see :mod:`app.heap`."""
    settings = settings or get_settings()
    if problems := gateway_production_problems(settings):
        raise ValueError("production settings rejected: " + "; ".join(problems))
    engine = make_engine(settings.db_url)
    upgrade(engine)
    session_factory = make_session_factory(engine)
    wakeups.for_sessions(session_factory)  # commits of new queue rows wake the worker (app/wakeups.py)
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
        if settle_heap:  # everything loaded for serving stays: out of the garbage collector's walks
            heap.settle()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=10)
            engine.dispose()

    # the docs pages load Swagger UI / ReDoc from assets shipped in the fastapi-offline wheel, served by the
    # gateway itself: /docs works on an air-gapped network (no CDN, no web fonts, no online validator)
    app = FastAPIOffline(
        swagger_ui_parameters={"validatorUrl": None},
        title="qcn gateway",
        version="0.1.0",
        description="Quality Contract Network: upload inspection batches, anchor them on chain, serve portable proofs.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.chain_holder = holder
    app.state.parse_slots = ParseSlots(settings.parse_max_children, wait_s=settings.parse_slot_wait_s)
    install_error_handlers(app)
    _install_body_limits(app, settings)
    for module in (system, parties, batches, verify, analysis, agreements):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    from app.routers import cases, relay, webhooks

    for module in (cases, webhooks, relay):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    install_portal(app)
    return app


def _install_body_limits(app: FastAPI, settings: Settings) -> None:
    """Bodies are bounded (size per route, JSON depth) by an ASGI middleware before FastAPI parses them."""
    import re

    from fastapi import params
    from fastapi.routing import APIRoute, iter_route_contexts

    from app.bodylimits import BodyLimitMiddleware

    patterns: list[re.Pattern[str]] = []

    def upload_paths() -> list[re.Pattern[str]]:
        """Path patterns of the routes taking multipart files (computed once the routes are all there)."""
        if not patterns:
            for ctx in iter_route_contexts(app.routes):
                route = ctx.original_route
                form = isinstance(route, APIRoute) and isinstance(
                    getattr(route.body_field, "field_info", None), params.Form
                )
                if form and ctx.path:
                    patterns.append(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", ctx.path) + "$"))
        return patterns

    app.add_middleware(
        BodyLimitMiddleware,
        upload_paths=upload_paths,
        max_upload_bytes=settings.max_upload_bytes,
        max_json_bytes=settings.max_json_bytes,
        max_json_depth=settings.max_json_depth,
    )


def app_from_env() -> FastAPI:
    """Factory for ``qcn serve`` / uvicorn workers: ``QCN_EMBEDDED_WORKER=1|0`` overrides the default."""
    import os

    flag = os.environ.get("QCN_EMBEDDED_WORKER")
    return create_app(embedded_worker=None if flag is None else flag == "1", settle_heap=True)
