"""Consortium parties (admin) and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from app.auth import require_role
from app.deps import CurrentPrincipal, DbSession
from app.schemas import ApiKeyCreate, ApiKeyInfo, ApiKeyPublic, PartyCreate, PartyCreated, PartyPublic
from app.services import keys
from app.services import parties as service
from app.state import ChainDep

router = APIRouter(prefix="/v1/parties", tags=["parties"])

PartyId = Annotated[int, Path(ge=1, le=2**31 - 1)]
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PartyCreated)
def register_party(body: PartyCreate, principal: CurrentPrincipal, session: DbSession, chain: ChainDep) -> PartyCreated:
    """Register an OEM, supplier or lab on chain and in the gateway; returns its first API key (shown once)."""
    require_role(principal, "admin")
    party, key = service.register_party(session=session, chain=chain, party_in=body)
    return PartyCreated(**PartyPublic.model_validate(party).model_dump(), api_key=key)


@router.get("", response_model=list[PartyPublic])
def list_parties(principal: CurrentPrincipal, session: DbSession) -> list[PartyPublic]:
    """All parties (admin); other callers see only themselves."""
    parties = service.list_parties(session=session, principal=principal)
    return [PartyPublic.model_validate(p) for p in parties]


@router.get("/me", response_model=PartyPublic)
def me(principal: CurrentPrincipal, session: DbSession) -> PartyPublic:
    return PartyPublic.model_validate(
        service.get_party(session=session, principal=principal, party_id=principal.party_id)
    )


@router.post("/{party_id}/keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyPublic)
def new_key(
    party_id: PartyId, principal: CurrentPrincipal, session: DbSession, body: ApiKeyCreate | None = None
) -> ApiKeyPublic:
    """Issue another API key (the party itself or the admin), e.g. for rotation; revoke the old one afterwards."""
    body = body or ApiKeyCreate()
    row, key = keys.create_key(
        session=session, principal=principal, party_id=party_id, label=body.label, expires_at=body.expires_at
    )
    return ApiKeyPublic(party_id=row.party_id, api_key=key, id=row.id, label=row.label, expires_at=row.expires_at)


@router.get("/{party_id}/keys", response_model=list[ApiKeyInfo])
def list_keys(party_id: PartyId, principal: CurrentPrincipal, session: DbSession) -> list[ApiKeyInfo]:
    """The party's API keys (the party itself or the admin): prefix, label, created, expires, revoked."""
    return [
        ApiKeyInfo.model_validate(k) for k in keys.list_keys(session=session, principal=principal, party_id=party_id)
    ]


@router.delete("/{party_id}/keys/{key_id}", response_model=ApiKeyInfo)
def revoke_key(party_id: PartyId, key_id: KeyId, principal: CurrentPrincipal, session: DbSession) -> ApiKeyInfo:
    """Revoke a key now (the party itself or the admin); every gateway process refuses it from then on."""
    return ApiKeyInfo.model_validate(
        keys.revoke_key(session=session, principal=principal, party_id=party_id, key_id=key_id)
    )
