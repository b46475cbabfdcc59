"""``/v1/users``: the consortium admin creates a party's first portal user (API key auth, like the rest of /v1)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field

from app.auth import require_role
from app.deps import CurrentPrincipal, DbSession
from app.portal.models import PortalUser
from app.portal.security import audit, create_user

__all__ = ["router"]

router = APIRouter(prefix="/v1/users", tags=["users"])


class UserCreate(BaseModel):
    """A person of a party. Without ``password`` one is generated and returned once."""

    model_config = ConfigDict(extra="forbid")

    party_id: int
    email: str = Field(min_length=3, max_length=254)
    display_name: str = Field(default="", max_length=200)
    role: str = Field(default="signer", description="viewer | operator | signer")
    party_admin: bool = Field(default=True, description="may invite colleagues of the same party")
    password: str | None = Field(default=None, min_length=10, max_length=500)


def _public(user: PortalUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "party_id": user.party_id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "party_admin": user.party_admin,
        "created_at": user.created_at.isoformat(),
    }


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: UserCreate, principal: CurrentPrincipal, session: DbSession, request: Request) -> dict[str, Any]:
    """Admin: create a portal user of a party (its first user is usually its party admin)."""
    require_role(principal, "admin")
    password = body.password or secrets.token_urlsafe(12)
    user = create_user(
        session=session,
        party_id=body.party_id,
        email=body.email,
        display_name=body.display_name,
        role=body.role,
        password=password,
        party_admin=body.party_admin,
    )
    ip = request.client.host if request.client else None
    audit(session=session, actor="admin", action="user.create", party_id=user.party_id, target=user.email, ip=ip)
    out = _public(user)
    if body.password is None:
        out["password"] = password  # shown once; the user should change it
    return out


@router.get("")
def list_users(principal: CurrentPrincipal, session: DbSession) -> list[dict[str, Any]]:
    """Admin: every portal user; others: the users of their own party."""
    q = session.query(PortalUser).order_by(PortalUser.id)
    if not principal.is_admin:
        q = q.filter(PortalUser.party_id == principal.party_id)
    return [_public(u) for u in q]
