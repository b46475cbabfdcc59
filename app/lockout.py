"""Failed-authentication lockout with backoff, per client address, shared by all gateway processes.

After ``auth_lockout_failures`` wrong keys from one address within ``auth_lockout_window_s`` seconds the
address is locked out: every request presenting a key gets 429 with ``Retry-After`` until the lock ends.
Each further lockout doubles the wait (``auth_lockout_base_s`` up to ``auth_lockout_max_s``); a successful
authentication clears the record. The state lives in the database (table ``auth_failures``), so several
gateway processes behind one load balancer share it. The address is the TCP peer: behind a reverse proxy
every client shares the proxy's address, so run the proxy's own limiter or give the gateway the real peer.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.auth import aware
from app.db import AuthFailure, upsert
from app.errors import TooManyRequests
from app.settings import Settings

__all__ = ["check_locked", "clear_failures", "record_failure"]


def check_locked(*, session: Session, address: str) -> bool:
    """Raise :class:`TooManyRequests` while ``address`` is locked out; otherwise whether it has a failure record
    (which :func:`clear_failures` then removes after a successful authentication)."""
    row = session.get(AuthFailure, address[:64])
    until = aware(row.locked_until) if row is not None else None
    now = datetime.now(UTC)
    if until is not None and until > now:
        wait = max(1, math.ceil((until - now).total_seconds()))
        raise TooManyRequests(f"too many failed authentications from {address}: retry in {wait} s", retry_after=wait)
    return row is not None


def record_failure(*, sessions: sessionmaker[Session], settings: Settings, address: str) -> None:
    """Count one failed authentication (own transaction: the request's own one is rolled back)."""
    now = datetime.now(UTC)
    key = address[:64]
    with sessions() as s, s.begin():
        values = {"address": key, "failures": 0, "window_start": now, "lockouts": 0}
        s.execute(upsert(s, AuthFailure).values(**values).on_conflict_do_nothing(index_elements=["address"]))
        row = s.scalars(select(AuthFailure).where(AuthFailure.address == key).with_for_update()).one()
        start = aware(row.window_start) or now
        if now - start > timedelta(seconds=settings.auth_lockout_window_s):
            row.failures, row.window_start = 0, now
        row.failures += 1
        if row.failures >= settings.auth_lockout_failures:
            wait = min(settings.auth_lockout_base_s * 2**row.lockouts, settings.auth_lockout_max_s)
            row.lockouts += 1
            row.failures, row.window_start = 0, now
            row.locked_until = now + timedelta(seconds=wait)


def clear_failures(*, session: Session, address: str) -> None:
    """A successful authentication forgets the address's failures (only touches an existing row)."""
    if session.get(AuthFailure, address[:64]) is not None:
        session.execute(delete(AuthFailure).where(AuthFailure.address == address[:64]))
