"""API keys bound to one party and its role.

A key looks like ``qcn_<prefix>_<secret>``; we store the prefix (to find the row) and the SHA-256 of the
whole key (high-entropy keys need no slow KDF). A key may carry an expiry; a revoked or expired key is refused.
The bootstrap admin token from the settings is accepted as the consortium admin. Keys travel as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.db import ApiKey, Party
from app.errors import Forbidden, Unauthenticated

__all__ = ["ROLES", "Principal", "authenticate", "aware", "issue_key", "issue_key_row", "require_role"]

ROLES = ("admin", "oem", "supplier", "lab")


@dataclass(frozen=True)
class Principal:
    """Who is calling: their party row id, kind (= role), on-chain account, and when the key used expires."""

    party_id: int
    role: str
    name: str
    account: str | None
    key_expires_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(*, session: Session, party: Party, label: str | None = None, expires_at: datetime | None = None) -> str:
    """Create a new API key for ``party``; the clear key is returned once and never stored."""
    return issue_key_row(session=session, party=party, label=label, expires_at=expires_at)[1]


def issue_key_row(
    *, session: Session, party: Party, label: str | None = None, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """Like :func:`issue_key`, also returning the stored row (its id names the key for revocation)."""
    prefix = secrets.token_hex(6)
    key = f"qcn_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(party_id=party.id, prefix=prefix, key_hash=_hash(key), label=label, expires_at=expires_at)
    session.add(row)
    session.flush()
    return row, key


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without a zone; they were stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def authenticate(*, session: Session, key: str | None, admin_token: str) -> Principal:
    """Resolve a presented key to its principal or raise :class:`Unauthenticated`."""
    if not key:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    if hmac.compare_digest(key.encode(), admin_token.encode()):
        admin = session.scalars(select(Party).where(Party.kind == "admin").order_by(Party.id)).first()
        if admin is None:
            raise Unauthenticated("the consortium admin party is not set up yet")
        return Principal(admin.id, "admin", admin.name, admin.account)
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "qcn":
        raise Unauthenticated("malformed API key")
    # the key with its party in one statement (the party was a second, lazy query on every request)
    row = session.scalars(select(ApiKey).options(joinedload(ApiKey.party)).where(ApiKey.prefix == parts[1])).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, _hash(key)):
        raise Unauthenticated("unknown or revoked API key")
    expires = aware(row.expires_at)
    if expires is not None and expires <= datetime.now(UTC):
        raise Unauthenticated(f"API key expired at {expires.isoformat()}")
    party = row.party
    return Principal(party.id, party.kind, party.name, party.account, key_expires_at=expires)


def require_role(principal: Principal, *roles: str) -> None:
    """Raise :class:`Forbidden` unless the principal has one of ``roles``."""
    if principal.role not in roles:
        raise Forbidden(f"this action needs role {' or '.join(roles)}; you are {principal.role}", role=principal.role)
