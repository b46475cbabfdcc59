"""Templates, agreements, deposits and quarterly evaluations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from fastapi.responses import JSONResponse

from app.auth import require_role
from app.chainctx import b32
from app.deps import CurrentPrincipal, DbSession, SettingsDep
from app.inputs import DbId, RefPath
from app.quality import library_templates
from app.schemas import (
    AgreementCreate,
    AgreementPublic,
    AmountIn,
    InspectionIn,
    PreparedTxPublic,
    RelayedTxPublic,
    SignatureIn,
    SignedTxIn,
    TemplateCreate,
    TemplateDetail,
    TemplateDraft,
    TemplatePublic,
)
from app.services import agreements as service
from app.services import relay
from app.services.views import agreement_public
from app.state import ChainDep

router = APIRouter(tags=["agreements"])

# functions each party may relay through the gateway from its own account
_RELAYABLE = {
    "supplier": {"approve", "deposit", "withdraw"},
    "oem": {"claim", "suspend", "resume", "terminate", "recordInspection"},
}


def _prepared(txs: list[relay.PreparedTx]) -> list[PreparedTxPublic]:
    return [PreparedTxPublic(description=t.description, tx=t.tx) for t in txs]


@router.get("/v1/templates/library")
def template_library(principal: CurrentPrincipal) -> dict[str, Any]:
    """Ready-made templates shipped with qcn (machined part, electrode coating, semiconductor test ...)."""
    return {name: t.document() for name, t in library_templates().items()}


@router.post("/v1/templates", status_code=status.HTTP_201_CREATED, response_model=TemplateDraft)
def create_template(
    body: TemplateCreate, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> TemplateDraft:
    """OEM: validate and store a template; returns the unsigned ``publishTemplate`` transaction to sign."""
    record, txs = service.create_template(session=session, chain=chain, principal=principal, document=body.document)
    return TemplateDraft(template=TemplatePublic.model_validate(record), transactions=_prepared(txs))


@router.post("/v1/templates/{template_pk}/publish", status_code=status.HTTP_202_ACCEPTED)
def publish_template(
    template_pk: DbId,
    body: SignedTxIn,
    principal: CurrentPrincipal,
    session: DbSession,
    chain: ChainDep,
    settings: SettingsDep,
) -> JSONResponse:
    """OEM: relay the signed ``publishTemplate`` (202; poll ``status_url``: once mined, its ``result`` is the
    published template). The template is immutable from then on."""
    rows = service.publish_template(
        session=session, chain=chain, principal=principal, settings=settings, template_pk=template_pk, raw=body.raw[0]
    )
    return relay.accepted(session, rows)


@router.get("/v1/templates", response_model=list[TemplatePublic])
def list_templates(principal: CurrentPrincipal, session: DbSession) -> list[TemplatePublic]:
    """OEMs: their templates, every version; suppliers and labs: the templates of their agreements."""
    return [TemplatePublic.model_validate(t) for t in service.list_templates(session=session, principal=principal)]


@router.get("/v1/templates/{template_pk}", response_model=TemplateDetail)
def get_template(template_pk: DbId, principal: CurrentPrincipal, session: DbSession) -> TemplateDetail:
    record = service.get_template(session=session, principal=principal, template_pk=template_pk)
    return TemplateDetail(
        **TemplatePublic.model_validate(record).model_dump(), document=service.template_of(record).document()
    )


@router.post("/v1/agreements", status_code=status.HTTP_201_CREATED, response_model=AgreementPublic)
def propose(body: AgreementCreate, principal: CurrentPrincipal, session: DbSession, chain: ChainDep) -> AgreementPublic:
    """OEM: propose an agreement; OEM and supplier then sign its EIP-712 typed data (returned here)."""
    record = service.propose_agreement(
        session=session,
        chain=chain,
        principal=principal,
        template_pk=body.template,
        supplier_id=body.supplier_id,
        lab_id=body.lab_id,
    )
    return agreement_public(record=record, chain=chain, typed=True)


@router.get("/v1/agreements", response_model=list[AgreementPublic])
def list_agreements(principal: CurrentPrincipal, session: DbSession) -> list[AgreementPublic]:
    return [
        agreement_public(record=r, chain=None) for r in service.list_agreements(session=session, principal=principal)
    ]


@router.get("/v1/agreements/{ref}", response_model=AgreementPublic)
def get_agreement(ref: RefPath, principal: CurrentPrincipal, session: DbSession, chain: ChainDep) -> AgreementPublic:
    """One agreement with its state, ratio, balances and current-quarter counters read from the chain."""
    record = service.get_agreement(session=session, principal=principal, agreement_ref=ref)
    return agreement_public(record=record, chain=chain, typed=record.status == "proposed")


@router.post("/v1/agreements/{ref}/signatures", response_model=AgreementPublic)
def sign(
    ref: RefPath, body: SignatureIn, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> AgreementPublic:
    """OEM or supplier: submit your EIP-712 signature; the second one activates the agreement on chain."""
    record = service.sign_agreement(
        session=session, chain=chain, principal=principal, agreement_ref=ref, signature=body.signature
    )
    return agreement_public(record=record, chain=chain)


@router.post("/v1/agreements/{ref}/deposits/prepare", response_model=list[PreparedTxPublic])
def prepare_deposit(
    ref: RefPath, body: AmountIn, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> list[PreparedTxPublic]:
    """Supplier: the unsigned approve + deposit transactions for ``amount``; sign and post to .../transactions."""
    record = service.get_agreement(session=session, principal=principal, agreement_ref=ref)
    return _prepared(service.prepare_deposit(chain=chain, principal=principal, record=record, amount=body.amount))


@router.post("/v1/agreements/{ref}/withdrawals/prepare", response_model=list[PreparedTxPublic])
def prepare_withdrawal(
    ref: RefPath, body: AmountIn, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> list[PreparedTxPublic]:
    """Supplier: the unsigned ``withdraw`` of excess deposit (above the required amount)."""
    record = service.get_agreement(session=session, principal=principal, agreement_ref=ref)
    txs = service.prepare_party_tx(
        chain=chain, principal=principal, record=record, action="withdraw", amount=body.amount
    )
    return _prepared(txs)


@router.post("/v1/agreements/{ref}/claims/prepare", response_model=list[PreparedTxPublic])
def prepare_claim(
    ref: RefPath, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> list[PreparedTxPublic]:
    """OEM: the unsigned ``claim`` of penalties owed to it."""
    record = service.get_agreement(session=session, principal=principal, agreement_ref=ref)
    return _prepared(
        service.prepare_party_tx(chain=chain, principal=principal, record=record, action="claim", amount=None)
    )


@router.post("/v1/agreements/{ref}/inspections/prepare", response_model=list[PreparedTxPublic])
def prepare_inspection(
    ref: RefPath, body: InspectionIn, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> list[PreparedTxPublic]:
    """OEM: the unsigned ``recordInspection`` of your incoming inspection of a batch of this agreement
    (accepted or rejected; one result per batch). These results are the batch and rejection counts of the
    supplier's quality score. Sign it and post it to .../transactions."""
    record = service.get_agreement(session=session, principal=principal, agreement_ref=ref)
    txs = service.prepare_inspection(
        session=session, chain=chain, principal=principal, record=record, batch_ref=body.batch, accepted=body.accepted
    )
    return _prepared(txs)


@router.get("/v1/agreements/{ref}/inspections")
def inspections(ref: RefPath, principal: CurrentPrincipal, session: DbSession, chain: ChainDep) -> list[dict[str, Any]]:
    """The OEM's recorded incoming inspections of this agreement's batches (batch, quarter, accepted), oldest
    first, read from the chain."""
    record = service.get_agreement(session=session, principal=principal, agreement_ref=ref)
    return service.history(chain=chain, record=record, names=("InspectionRecorded",))


@router.post("/v1/agreements/{ref}/transactions", status_code=status.HTTP_202_ACCEPTED)
def relay_transactions(
    ref: RefPath,
    body: SignedTxIn,
    principal: CurrentPrincipal,
    session: DbSession,
    chain: ChainDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Relay transactions you signed with your own key (checked: your account, our contracts, allowed calls,
    consecutive nonces). 202: they are sent in order in the background; poll each ``status_url``."""
    require_role(principal, "supplier", "oem")
    record = service.get_agreement(session=session, principal=principal, agreement_ref=ref)
    rows = relay.submit(
        session=session,
        chain=chain,
        principal=principal,
        settings=settings,
        raws=body.raw,
        allowed=_RELAYABLE[principal.role],
        follow_up=f"agreement:{record.agreement_id}",
    )
    return relay.accepted(session, rows, many=True)


@router.get("/v1/agreements/{ref}/deposits")
def deposits(ref: RefPath, principal: CurrentPrincipal, session: DbSession, chain: ChainDep) -> dict[str, Any]:
    """Deposit balance, required amount, claimable penalties and the history of deposits, withdrawals, claims."""
    record = service.get_agreement(session=session, principal=principal, agreement_ref=ref)
    return {
        "status": service.agreement_status(chain=chain, record=record),
        "history": service.history(chain=chain, record=record, names=service.MONEY_EVENTS),
    }


@router.get("/v1/agreements/{ref}/evaluations")
def evaluations(ref: RefPath, principal: CurrentPrincipal, session: DbSession, chain: ChainDep) -> list[dict[str, Any]]:
    """Quarterly evaluations: quarter, score, old and new deposit ratio, formula version."""
    record = service.get_agreement(session=session, principal=principal, agreement_ref=ref)
    return service.history(chain=chain, record=record, names=("Evaluated",))


@router.post("/v1/agreements/{ref}/evaluations/{quarter}", response_model=RelayedTxPublic)
def evaluate(
    ref: RefPath,
    quarter: Annotated[int, Path(ge=0, le=2**32 - 1)],
    principal: CurrentPrincipal,
    session: DbSession,
    chain: ChainDep,
) -> RelayedTxPublic:
    """Evaluate an ended quarter now (anyone party to the agreement; the scheduler also does it). Once only."""
    record = service.get_agreement(session=session, principal=principal, agreement_ref=ref)
    sent = chain.agreements.evaluate(b32(record.agreement_id), quarter)
    return RelayedTxPublic(
        tx_hash=sent.tx_hash, block_number=sent.block_number, gas_used=sent.gas_used, function="evaluate"
    )
