"""People and their sessions: argon2id passwords, login sessions, CSRF tokens, login rate limit, audit log.

Sessions are opaque random tokens in an HttpOnly, SameSite=Strict cookie (Secure in production); the
database keeps only their SHA-256, so a leaked database holds no usable session. Each session has its own
CSRF token, sent back in a hidden form field or the ``X-CSRF-Token`` header of every state-changing request.
Failed logins are counted from the audit log (per email and per client address), so the limit holds across
gateway processes.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth import Principal
from app.db import Party, utcnow
from app.errors import Conflict, Forbidden, InvalidRequest, NotFound
from app.portal.errors import LoginFailed, TooManyAttempts
from app.portal.models import USER_ROLES, AuditEntry, PortalInvite, PortalSession, PortalUser

__all__ = [
    "LOGIN_WINDOW",
    "MAX_FAILED_LOGINS",
    "SESSION_TTL",
    "accept_invite",
    "audit",
    "check_csrf",
    "create_user",
    "end_session",
    "hash_password",
    "invite",
    "login",
    "principal_of",
    "resolve_session",
    "verify_password",
]

SESSION_TTL = timedelta(hours=12)
INVITE_TTL = timedelta(days=7)
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILED_LOGINS = 5  # per email in LOGIN_WINDOW
MAX_FAILED_LOGINS_PER_IP = 30  # per client address (a plant behind one NAT address has many people)
MIN_PASSWORD = 10

# argon2id with the library's RFC 9106 "low memory" profile (t=3, m=64 MiB, p=4)
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this when the email is unknown keeps both paths equally slow (no user enumeration by
    timing); made on the first login, not at the gateway's start (one argon2 hash is ~0.4 s of CPU)."""
    return _HASHER.hash("not a password of anyone")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were written in UTC
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def audit(
    *,
    session: Session,
    actor: str,
    action: str,
    user: PortalUser | None = None,
    party_id: int | None = None,
    target: str | None = None,
    outcome: str = "ok",
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit entry (in the caller's transaction, so it commits with what it records)."""
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            user_id=user.id if user else None,
            party_id=party_id if party_id is not None else (user.party_id if user else None),
            target=target,
            outcome=outcome,
            ip=ip,
            detail=json.dumps(detail, sort_keys=True) if detail else None,
        )
    )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidRequest(f"the password needs at least {MIN_PASSWORD} characters", field="password")


def _check_role(role: str) -> None:
    if role not in USER_ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(USER_ROLES)}, not {role!r}", field="role")


def create_user(
    *,
    session: Session,
    party_id: int,
    email: str,
    display_name: str,
    role: str,
    password: str,
    party_admin: bool = False,
) -> PortalUser:
    """Create a person of a party (consortium admin, or an accepted invitation)."""
    _check_role(role)
    _check_password(password)
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidRequest(f"{email!r} is not an email address", field="email")
    party = session.get(Party, party_id)
    if party is None or party.kind == "admin":
        raise NotFound(f"no party {party_id}", field="party_id")
    if session.scalars(select(PortalUser).where(PortalUser.email == email)).first() is not None:
        raise Conflict(f"a user with email {email} exists already", field="email")
    user = PortalUser(
        party_id=party_id,
        email=email,
        display_name=display_name.strip() or email,
        role=role,
        party_admin=party_admin,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    return user


def _failed_logins(session: Session, who: Any) -> int:
    since = utcnow() - LOGIN_WINDOW
    q = select(func.count(AuditEntry.id)).where(
        AuditEntry.action == "login", AuditEntry.outcome == "failed", AuditEntry.at >= since, who
    )
    return int(session.scalar(q) or 0)


def login(*, session: Session, email: str, password: str, ip: str | None) -> tuple[PortalUser, str]:
    """Check the password (rate limited) and open a session; returns the user and the cookie token.

    Raises :class:`TooManyAttempts` after ``MAX_FAILED_LOGINS`` failures in ``LOGIN_WINDOW`` for this email or
    ``MAX_FAILED_LOGINS_PER_IP`` from this client address, :class:`LoginFailed` on a wrong email or password.
    The caller commits either way, so the failure is counted.
    """
    email = email.strip().lower()
    if _failed_logins(session, AuditEntry.actor == email) >= MAX_FAILED_LOGINS or (
        ip is not None and _failed_logins(session, AuditEntry.ip == ip) >= MAX_FAILED_LOGINS_PER_IP
    ):
        audit(session=session, actor=email, action="login", outcome="denied", ip=ip, detail={"reason": "rate"})
        raise TooManyAttempts(
            f"too many failed logins; try again in {int(LOGIN_WINDOW.total_seconds() // 60)} minutes",
            retry_after=int(LOGIN_WINDOW.total_seconds()),
        )
    user = session.scalars(select(PortalUser).where(PortalUser.email == email)).first()
    ok = verify_password(user.password_hash if user else _dummy_hash(), password)
    if user is None or not ok or user.disabled_at is not None:
        audit(session=session, actor=email, action="login", user=user, outcome="failed", ip=ip)
        raise LoginFailed("wrong email or password")
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    token = secrets.token_urlsafe(32)
    session.add(
        PortalSession(
            token_hash=_sha(token), user_id=user.id, csrf_token=secrets.token_hex(32), expires_at=utcnow() + SESSION_TTL
        )
    )
    audit(session=session, actor=email, action="login", user=user, ip=ip)
    return user, token


def resolve_session(*, session: Session, token: str | None) -> PortalSession | None:
    """The live session of a cookie token, or None (unknown, expired, or its user disabled)."""
    if not token or len(token) > 200:
        return None
    row = session.get(PortalSession, _sha(token))
    if row is None or _aware(row.expires_at) <= utcnow() or row.user.disabled_at is not None:
        return None
    return row


def end_session(*, session: Session, token: str | None, ip: str | None) -> None:
    row = resolve_session(session=session, token=token)
    if row is not None:
        audit(session=session, actor=row.user.email, action="logout", user=row.user, ip=ip)
        session.delete(row)


def check_csrf(row: PortalSession, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(row.csrf_token.encode(), str(presented).encode())


def principal_of(user: PortalUser) -> Principal:
    """The gateway principal a user acts as: their party (the services decide visibility by party)."""
    party = user.party
    return Principal(party.id, party.kind, party.name, party.account)


def invite(*, session: Session, by: PortalUser, email: str, role: str, ip: str | None) -> str:
    """A party admin invites a colleague into the same party; returns the one-time invitation token."""
    if not by.party_admin:
        raise Forbidden("only a party admin invites colleagues")
    _check_role(role)
    if USER_ROLES.index(role) > USER_ROLES.index(by.role):
        raise Forbidden(
            f"you are {by.role}: you cannot invite a {role} (a party admin grants at most their own role)",
            role=by.role,
        )
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidRequest(f"{email!r} is not an email address", field="email")
    if session.scalars(select(PortalUser).where(PortalUser.email == email)).first() is not None:
        raise Conflict(f"a user with email {email} exists already", field="email")
    token = secrets.token_urlsafe(24)
    session.add(
        PortalInvite(
            token_hash=_sha(token),
            party_id=by.party_id,
            email=email,
            role=role,
            invited_by=by.id,
            expires_at=utcnow() + INVITE_TTL,
        )
    )
    audit(session=session, actor=by.email, action="invite", user=by, target=email, ip=ip, detail={"role": role})
    return token


def pending_invite(*, session: Session, token: str) -> PortalInvite:
    row = session.get(PortalInvite, _sha(token)) if token and len(token) < 200 else None
    if row is None or row.accepted_at is not None or _aware(row.expires_at) <= utcnow():
        raise NotFound("this invitation does not exist, was used or has expired")
    return row


def accept_invite(*, session: Session, token: str, display_name: str, password: str, ip: str | None) -> PortalUser:
    """Turn an invitation into a user with the password the colleague chose (once)."""
    row = pending_invite(session=session, token=token)
    user = create_user(
        session=session,
        party_id=row.party_id,
        email=row.email,
        display_name=display_name,
        role=row.role,
        password=password,
    )
    row.accepted_at = utcnow()
    audit(session=session, actor=user.email, action="invite_accepted", user=user, ip=ip)
    return user
