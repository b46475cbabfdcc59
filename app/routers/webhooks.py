"""Webhook subscriptions of the calling party and their delivery log."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.db import WebhookSubscription
from app.deps import CurrentPrincipal, DbSession, SettingsDep
from app.inputs import DbId, Limit, SafeText
from app.services import webhooks as service

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class WebhookCreate(BaseModel):
    """An endpoint to notify; ``secret`` keys the HMAC (generated when omitted, shown once)."""

    model_config = ConfigDict(extra="forbid")

    url: SafeText = Field(min_length=8, max_length=2000)
    secret: SafeText | None = Field(default=None, min_length=16, max_length=200)
    events: list[Annotated[SafeText, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=50, description="event types to receive; default all"
    )


def _public(sub: WebhookSubscription, *, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": sub.id,
        "party_id": sub.party_id,
        "url": sub.url,
        "events": json.loads(sub.events) if sub.events else None,
        "active": sub.active,
        "created_at": sub.created_at.isoformat(),
    }
    if secret is not None:
        out["secret"] = secret
    return out


@router.post("", status_code=status.HTTP_201_CREATED)
def create(
    body: WebhookCreate, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> dict[str, Any]:
    """Register an endpoint for the caller's party; the response carries the secret (only this once)."""
    sub, secret = service.create_subscription(
        session=session, principal=principal, settings=settings, url=body.url, secret=body.secret, events=body.events
    )
    return _public(sub, secret=secret)


@router.get("")
def list_subscriptions(principal: CurrentPrincipal, session: DbSession) -> list[dict[str, Any]]:
    """The caller's subscriptions (admin: all)."""
    return [_public(s) for s in service.list_subscriptions(session=session, principal=principal)]


@router.delete("/{sub_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete(sub_id: DbId, principal: CurrentPrincipal, session: DbSession) -> Response:
    """Stop deliveries to a subscription (its log is kept)."""
    service.delete_subscription(session=session, principal=principal, sub_id=sub_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{sub_id}/deliveries")
def deliveries(
    sub_id: DbId, principal: CurrentPrincipal, session: DbSession, limit: Limit = 100
) -> list[dict[str, Any]]:
    """The delivery log of a subscription, newest first: body, attempts, last HTTP status and error."""
    rows = service.list_deliveries(session=session, principal=principal, sub_id=sub_id, limit=limit)
    return [service.public_delivery(d) for d in rows]
