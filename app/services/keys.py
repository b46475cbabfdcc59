"""API keys of a party: list, issue (optionally expiring), revoke.

A party manages its own keys; the consortium admin manages everyone's. Another party's keys do not exist
for the caller (404), like every other tenant-owned object (:mod:`app.policy`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import Principal, issue_key_row
from app.db import ApiKey, Party
from app.errors import InvalidRequest, NotFound
from app.policy import party_scope

__all__ = ["MAX_KEY_LIFETIME", "create_key", "list_keys", "revoke_key"]

MAX_KEY_LIFETIME = timedelta(days=3 * 366)


def _party(session: Session, principal: Principal, party_id: int) -> Party:
    party = session.scalars(select(Party).where(party_scope(principal), Party.id == party_id)).first()
    if party is None:
        raise NotFound(f"party {party_id} not found")
    return party


def list_keys(*, session: Session, principal: Principal, party_id: int) -> list[ApiKey]:
    """The party's keys, newest first (hashes are never shown, only prefix, label and dates)."""
    party = _party(session, principal, party_id)
    return list(session.scalars(select(ApiKey).where(ApiKey.party_id == party.id).order_by(ApiKey.id.desc())))


def create_key(
    *, session: Session, principal: Principal, party_id: int, label: str | None, expires_at: datetime | None
) -> tuple[ApiKey, str]:
    """Issue a key (clear text returned once). ``expires_at`` must lie in the future, within 3 years.

    A key never outlives the key that issues it: called with an expiring key, the new key expires with it at the
    latest (and by default), so a leaked short-lived key cannot mint a permanent one.
    """
    party = _party(session, principal, party_id)
    cap = principal.key_expires_at
    if cap is not None:
        if expires_at is None:
            expires_at = cap
        elif expires_at.tzinfo is not None and expires_at > cap:
            raise InvalidRequest(
                f"expires_at is after {cap.isoformat()}, when the key you call with expires: a key cannot "
                "outlive the key that issues it",
                field="expires_at",
            )
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidRequest("expires_at needs a time zone (e.g. ...Z)", field="expires_at")
        now = datetime.now(UTC)
        if expires_at <= now:
            raise InvalidRequest("expires_at lies in the past", field="expires_at")
        if expires_at - now > MAX_KEY_LIFETIME:
            raise InvalidRequest("expires_at is more than 3 years ahead", field="expires_at")
    return issue_key_row(session=session, party=party, label=label, expires_at=expires_at)


def revoke_key(*, session: Session, principal: Principal, party_id: int, key_id: int) -> ApiKey:
    """Revoke one of the party's keys (at once, for every gateway process); revoking twice keeps the first time."""
    party = _party(session, principal, party_id)
    row = session.scalars(select(ApiKey).where(ApiKey.party_id == party.id, ApiKey.id == key_id)).first()
    if row is None:
        raise NotFound(f"API key {key_id} of party {party_id} not found")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row
