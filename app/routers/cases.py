"""Tracing cases per role: list/get/timeline/analysis, supplier response, lab verdict, acceptance or
dispute, arbitration, claims. Visible to the case's OEM, supplier and lab and the admin; others get 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.auth import require_role
from app.deps import CurrentPrincipal, DbSession, SettingsDep
from app.inputs import Limit, Offset, RefPath
from app.routers.batches import read_limited
from app.services import cases as service
from app.services import relay
from app.state import ChainDep

router = APIRouter(prefix="/v1/cases", tags=["cases"])

_MAX_RAW_TX = 2 * 128 * 1024 + 2  # a signed transaction of at most 128 KiB, as 0x hex


class SignedMessage(BaseModel):
    """An EIP-712 ``message`` (as returned in ``typed_data.message``) and its 65-byte signature (0x hex)."""

    model_config = ConfigDict(extra="forbid")

    message: dict[str, Any]
    signature: str = Field(min_length=4, max_length=200, pattern=r"^0x[0-9a-fA-F]+$")


class SignedTx(BaseModel):
    """A raw signed transaction (0x hex) prepared by the gateway and signed by the party's own key."""

    model_config = ConfigDict(extra="forbid")

    raw: str = Field(min_length=4, max_length=_MAX_RAW_TX, pattern=r"^0x([0-9a-fA-F]{2})+$")


class Arbitration(BaseModel):
    """The arbiter's ruling: who is responsible, the class, the root cause (text or bytes32) and the ruling."""

    model_config = ConfigDict(extra="forbid")

    responsible_party: int = Field(ge=0, le=3, description="0 none, 1 supplier, 2 OEM, 3 other")
    nc_class: int = Field(ge=0, le=3, description="0 none, 1 critical, 2 major, 3 minor")
    root_cause: str = Field(min_length=1, max_length=200)
    ruling: str = Field(min_length=1, max_length=100_000, description="written ruling; its SHA-256 goes on chain")


@router.get("")
def list_cases(
    principal: CurrentPrincipal,
    session: DbSession,
    state: Annotated[str | None, Query(max_length=24, pattern=r"^[a-z_]+$")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[dict[str, Any]]:
    """Cases the caller is a party of (a lab: the cases assigned to it; admin: all)."""
    rows = service.list_cases(session=session, principal=principal, state=state, limit=limit, offset=offset)
    return [service.case_public(c) for c in rows]


@router.get("/{case_ref}")
def get_case(case_ref: RefPath, principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    """One case by its on-chain id (0x...) or row id."""
    return service.case_public(service.get_case(session=session, principal=principal, case_ref=case_ref))


@router.get("/{case_ref}/timeline")
def timeline(case_ref: RefPath, principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    """Every step with its tx hash and block, plus the anchoring proofs of batch, analysis and evidence."""
    case = service.get_case(session=session, principal=principal, case_ref=case_ref)
    return service.timeline(session=session, case=case)


@router.get("/{case_ref}/analysis")
def analysis(case_ref: RefPath, principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    """The root-cause analysis the case was opened on, and whether it is the one anchored on chain."""
    case = service.get_case(session=session, principal=principal, case_ref=case_ref)
    return service.case_analysis(session=session, case=case)


@router.post("/{case_ref}/response/prepare")
def prepare_response(
    case_ref: RefPath,
    request: Request,
    files: list[UploadFile],
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    chain: ChainDep,
) -> dict[str, Any]:
    """Supplier: upload evidence files; returns their evidence hash and the unsigned ``respond`` to sign."""
    case = service.get_case(session=session, principal=principal, case_ref=case_ref)
    service.require_case_role(principal, case, "supplier")
    uploads = read_limited(files, request, settings.max_upload_bytes)
    return service.prepare_response(
        session=session, chain=chain, principal=principal, case=case, files=[(u.filename, u.data) for u in uploads]
    )


@router.get("/{case_ref}/verdict-typed-data")
def verdict_typed_data(
    case_ref: RefPath,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    chain: ChainDep,
    root_cause: Annotated[str | None, Query(max_length=200)] = None,
    responsible_party: Annotated[int, Query(ge=0, le=3)] = 1,
    nc_class: Annotated[int, Query(ge=0, le=3)] = 2,
    deadline: Annotated[int | None, Query(ge=0, le=2**64 - 1)] = None,
) -> dict[str, Any]:
    """Lab: the EIP-712 verdict to sign with any wallet (``eth_signTypedData_v4``)."""
    case = service.get_case(session=session, principal=principal, case_ref=case_ref)
    service.require_case_role(principal, case, "lab")
    return service.verdict_typed_data(
        chain=chain,
        settings=settings,
        session=session,
        case=case,
        root_cause=root_cause,
        responsible_party=responsible_party,
        nc_class=nc_class,
        deadline=deadline,
    )


@router.post("/{case_ref}/verdict")
def submit_verdict(
    case_ref: RefPath, body: SignedMessage, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> dict[str, Any]:
    """Lab: submit the signed verdict; the contract checks signer, accreditation, round and deadline."""
    case = service.get_case(session=session, principal=principal, case_ref=case_ref)
    service.require_case_role(principal, case, "lab")
    return service.submit_verdict(chain=chain, case=case, message=body.message, signature=body.signature)


@router.get("/{case_ref}/acceptance-typed-data")
def acceptance_typed_data(
    case_ref: RefPath,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    chain: ChainDep,
    accept: bool = True,
    deadline: Annotated[int | None, Query(ge=0, le=2**64 - 1)] = None,
) -> dict[str, Any]:
    """OEM / supplier: the EIP-712 acceptance of the current verdict (``accept=false``: a dispute)."""
    case = service.get_case(session=session, principal=principal, case_ref=case_ref)
    service.require_case_role(principal, case, "oem", "supplier")
    return service.acceptance_typed_data(chain=chain, settings=settings, case=case, accept=accept, deadline=deadline)


@router.post("/{case_ref}/acceptance")
def submit_acceptance(
    case_ref: RefPath, body: SignedMessage, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> dict[str, Any]:
    """OEM / supplier: relay a signed acceptance, or a dispute (``accept`` false in the signed message)."""
    case = service.get_case(session=session, principal=principal, case_ref=case_ref)
    service.require_case_role(principal, case, "oem", "supplier")
    return service.submit_acceptance(
        chain=chain, principal=principal, case=case, message=body.message, signature=body.signature
    )


@router.post("/{case_ref}/arbitrate")
def arbitrate(
    case_ref: RefPath, body: Arbitration, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> dict[str, Any]:
    """Consortium admin: rule on a disputed case (or one whose lab missed its deadline)."""
    require_role(principal, "admin")
    case = service.get_case(session=session, principal=principal, case_ref=case_ref)
    return service.arbitrate(
        chain=chain,
        case=case,
        responsible_party=body.responsible_party,
        nc_class=body.nc_class,
        root_cause=body.root_cause,
        ruling=body.ruling,
    )


@router.post("/{case_ref}/claim/prepare")
def prepare_claim(
    case_ref: RefPath, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> dict[str, Any]:
    """OEM: the unsigned ``claim`` of the penalties owed under the case's agreement."""
    case = service.get_case(session=session, principal=principal, case_ref=case_ref)
    service.require_case_role(principal, case, "oem")
    return service.prepare_claim(chain=chain, principal=principal, case=case)


@router.post("/{case_ref}/lab-fee/prepare")
def prepare_lab_fee(
    case_ref: RefPath, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> dict[str, Any]:
    """Lab of the case: the unsigned ``claimLabFee`` (claims every fee the lab earned)."""
    case = service.get_case(session=session, principal=principal, case_ref=case_ref)
    service.require_case_role(principal, case, "lab")
    return service.prepare_lab_fee_claim(chain=chain, principal=principal)


def _relay_route(path: str, function: str, doc: str) -> None:
    """``POST {path}``: relay the case transaction ``function`` its party signed (the service checks who may)."""

    def relay_signed(
        case_ref: RefPath,
        body: SignedTx,
        principal: CurrentPrincipal,
        session: DbSession,
        chain: ChainDep,
        settings: SettingsDep,
    ) -> JSONResponse:
        case = service.get_case(session=session, principal=principal, case_ref=case_ref)
        rows = service.submit_relayed(
            session=session, chain=chain, principal=principal, settings=settings, case=case, raw=body.raw,
            function=function,
        )  # fmt: skip
        return relay.accepted(session, rows)

    relay_signed.__doc__ = doc
    router.post(path, status_code=202, name=f"relay_{function}")(relay_signed)


_relay_route("/{case_ref}/response", "respond", "Supplier: relay the signed ``respond`` transaction.")
_relay_route("/{case_ref}/claim", "claim", "OEM: relay the signed ``claim``.")
_relay_route("/{case_ref}/lab-fee", "claimLabFee", "Lab of the case: relay the signed ``claimLabFee``.")
