"""FastAPI dependencies as ``Annotated`` aliases: settings, DB session, the calling principal, limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from app import lockout
from app.auth import Principal, authenticate
from app.errors import Unauthenticated
from app.settings import Settings
from parsers.limits import Limits

__all__ = ["CurrentPrincipal", "DbSession", "ParseLimits", "SettingsDep"]


async def _settings(request: Request) -> Settings:
    # async: FastAPI runs a plain function dependency in a worker thread, a round trip for an attribute read
    settings: Settings = request.app.state.settings
    return settings


def _session(request: Request) -> Iterator[Session]:
    """One session per request: commits as soon as the handler returns, rolls back on error.

    Function-scoped on purpose: a request-scoped ``yield`` dependency finishes *after* the response is sent,
    so a client could hold a 201 for a write whose commit then failed. Here the commit runs before the
    response is built; a failed commit reaches the error handlers and the client gets an error. Services may
    roll back and carry on in a fresh transaction (e.g. after losing an idempotent-insert race).
    """
    factory = request.app.state.session_factory
    with factory() as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()


SettingsDep = Annotated[Settings, Depends(_settings)]
DbSession = Annotated[Session, Depends(_session, scope="function")]


def _principal(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(max_length=500)] = None,
    x_api_key: Annotated[str | None, Header(max_length=500)] = None,
) -> Principal:
    key = x_api_key
    if key is None and authorization:
        scheme, _, value = authorization.partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else None
    address = request.client.host if request.client else "unknown"
    failed_before = bool(key) and lockout.check_locked(session=session, address=address)
    try:
        principal = authenticate(session=session, key=key, admin_token=settings.api_admin_token.get_secret_value())
    except Unauthenticated:
        if key:  # a wrong key counts; a missing one is no guess
            lockout.record_failure(sessions=request.app.state.session_factory, settings=settings, address=address)
        raise
    if failed_before:  # most requests come from an address with no failures: no second look-up
        lockout.clear_failures(session=session, address=address)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(_principal)]


async def _limits(settings: SettingsDep) -> Limits:
    return Limits(
        max_bytes=settings.max_upload_bytes,
        max_pages=settings.parse_max_pages,
        max_rows=settings.parse_max_rows,
        max_seconds=settings.parse_max_seconds,
        max_memory_bytes=settings.parse_max_memory_bytes,
    )


ParseLimits = Annotated[Limits, Depends(_limits)]
