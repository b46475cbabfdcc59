"""Consortium parties (admin) and API keys."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.auth import require_role
from app.deps import CurrentPrincipal, DbSession
from app.schemas import ApiKeyPublic, PartyCreate, PartyCreated, PartyPublic
from app.services import parties as service
from app.state import ChainDep

router = APIRouter(prefix="/v1/parties", tags=["parties"])


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
def new_key(party_id: int, principal: CurrentPrincipal, session: DbSession) -> ApiKeyPublic:
    """Issue another API key for a party (admin), e.g. for rotation; revoke the old one afterwards."""
    require_role(principal, "admin")
    return ApiKeyPublic(party_id=party_id, api_key=service.issue_party_key(session=session, party_id=party_id))
