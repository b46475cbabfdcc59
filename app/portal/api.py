"""JSON endpoints the portal's own JavaScript calls: session cookie + CSRF header, same services as ``/v1``.

Every action follows the CLI's non-custodial flow: the gateway *prepares* (unsigned transactions or EIP-712
typed data), the browser signs with the user's key (keystore decrypted locally, or an injected wallet), and
posts back only signatures or raw signed transactions, which the services check and relay. Responses are
normalised for the browser: ``{"transactions": [...]}`` or ``{"typed_data": {...}}`` to sign, and relays take
``{"raw": [...]}`` or ``{"message": ..., "signature": ...}``.

Relaying does not wait for the chain (as on ``/v1``): a relay endpoint answers 202 with the stored
transactions and a ``status_url`` under ``/portal/api/relay/`` (same body as the API's, session-authenticated),
which the page polls until each transaction is mined, reverted or failed; ``result`` then carries what the
gateway did after mining (the published template, the agreement's new status).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Path, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.db import RelayTransaction
from app.deps import ParseLimits
from app.errors import Forbidden, InvalidRequest
from app.portal.security import audit
from app.portal.web import PageUser, Portal, client_ip, require_csrf, require_level
from app.routers.batches import read_limited
from app.services import agreements as agreement_service
from app.services import batches as batch_service
from app.services import cases as case_service
from app.services import relay
from app.services.batches import Upload
from app.services.views import agreement_public, batch_public
from app.state import ChainDep, OptionalChainDep

__all__ = ["router"]

router = APIRouter(prefix="/portal/api", include_in_schema=False)

# functions each party may relay from its own account under an agreement (as on /v1/agreements/{ref}/transactions)
_RELAYABLE = {"supplier": {"approve", "deposit", "withdraw"}, "oem": {"claim"}}
_8D = ("d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8")


class RawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    raw: list[str] = Field(min_length=1, max_length=8)


class SignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signature: str = Field(min_length=2, max_length=200)


class SignedMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: dict[str, Any]
    signature: str = Field(min_length=2, max_length=200)


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document: dict[str, Any]


def _act(portal: Portal, level: str, action: str, target: str | None = None, **detail: Any) -> None:
    require_csrf(portal, None)
    require_level(portal, level)
    _audit(portal, action, target, **detail)


def _audit(portal: Portal, action: str, target: str | None = None, **detail: Any) -> None:
    audit(
        session=portal.session,
        actor=portal.user.email,
        action=action,
        user=portal.user,
        target=target,
        ip=client_ip(portal.request),
        detail=detail or None,
    )


def _txs(prepared: list[relay.PreparedTx]) -> dict[str, Any]:
    return {"transactions": [{"description": t.description, "tx": t.tx} for t in prepared]}


def _status(row: RelayTransaction) -> dict[str, Any]:
    """The API's view of a relayed transaction, with the status URL the browser can follow (session cookie)."""
    return {**relay.public_status(row), "status_url": f"/portal/api/relay/{row.id}"}


def _accepted(rows: list[RelayTransaction], *, many: bool = False) -> JSONResponse:
    """202 for a relay: the transactions (pending) and where to follow them. The portal's request session is
    committed before the response is sent (see :mod:`app.portal.web`), so the status URLs exist by then."""
    url = f"/portal/api/relay/{rows[-1].id}"
    body = {"status": "pending", "status_url": url, "many": many, "transactions": [_status(r) for r in rows]}
    return JSONResponse(status_code=202, content=body, headers={"Location": url})


def _settings(portal: Portal) -> Any:
    return portal.request.app.state.settings


def _amount(text: str) -> int:
    """A token amount typed by a person ("1,250.5") in smallest units (18 decimals)."""
    try:
        value = Decimal(text.replace(",", "").strip())
    except InvalidOperation as exc:
        raise InvalidRequest(f"{text!r} is not an amount", field="amount") from exc
    if value <= 0 or value != value.quantize(Decimal("1e-18")):
        raise InvalidRequest(f"{text!r} is not a positive amount with at most 18 decimals", field="amount")
    return int(value * 10**18)


# ------------------------------------------------------------------------------------------------ batches
@router.post("/batches")
def upload(
    request: Request,
    response: Response,
    portal: PageUser,
    files: list[UploadFile],
    limits: ParseLimits,
    chain: OptionalChainDep,
    agreement_id: Annotated[str | None, Form()] = None,
    lot_size: Annotated[int | None, Form(gt=0)] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Supplier: upload one batch (several files) with a progress bar; answers with the per-file and
    per-characteristic result and the anchoring status to follow."""
    require_csrf(portal, None)
    require_level(portal, "operator")
    settings = request.app.state.settings
    uploads: list[Upload] = read_limited(files, request, settings.max_upload_bytes)
    supplier = batch_service.supplier_party(session=portal.session, principal=portal.principal)
    agreement = None
    if agreement_id:
        record, template = agreement_service.template_for_batch(
            session=portal.session, supplier=supplier, agreement_ref=agreement_id, chain=chain
        )
        agreement = (record.agreement_id, template)
    batch, created = batch_service.create_batch(
        session=portal.session,
        supplier=supplier,
        uploads=uploads,
        idempotency_key=idempotency_key,
        limits=limits,
        isolated=settings.parse_isolated,
        inline_max_bytes=settings.parse_inline_max_bytes,
        agreement=agreement,
        lot_size=lot_size,
        trust_dir=settings.trust_dir,
        slots=request.app.state.parse_slots,
    )
    # audited after the batch is stored: the upload ends its read transaction before parsing (no connection
    # held), so an entry written earlier would commit even for an upload that then fails
    _audit(portal, "batch.upload", target=agreement_id, files=[f.filename for f in files])
    public = batch_public(session=portal.session, batch=batch, chain=chain, created=created)
    return {"batch": json.loads(public.model_dump_json()), "href": f"/portal/batches/{batch.id}"}


@router.get("/batches/{ref}")
def batch_status(ref: str, portal: PageUser, chain: OptionalChainDep) -> dict[str, Any]:
    batch = batch_service.get_batch(session=portal.session, principal=portal.principal, batch_ref=ref)
    public = batch_public(session=portal.session, batch=batch, chain=chain)
    return {
        "status": public.status,
        "receipt": json.loads(public.receipt.model_dump_json()) if public.receipt else None,
    }


# ---------------------------------------------------------------------------------------------- templates
@router.post("/templates")
def create_template(body: TemplateIn, portal: PageUser, chain: ChainDep) -> dict[str, Any]:
    """OEM: validate (problems come back per field) and draft a template; returns the publish tx to sign."""
    _act(portal, "operator", "template.draft", target=str(body.document.get("template_id", ""))[:200])
    record, txs = agreement_service.create_template(
        session=portal.session, chain=chain, principal=portal.principal, document=body.document
    )
    return {"template": {"id": record.id, "href": f"/portal/templates/{record.id}"}, **_txs(txs)}


@router.post("/templates/{pk}/prepare")
def prepare_publish(pk: int, portal: PageUser, chain: ChainDep) -> dict[str, Any]:
    """OEM: the ``publishTemplate`` transaction of a stored draft (fresh nonce and fees)."""
    _act(portal, "signer", "template.prepare", target=str(pk))
    record = agreement_service.get_template(session=portal.session, principal=portal.principal, template_pk=pk)
    doc = agreement_service.template_of(record).document()
    _record, txs = agreement_service.create_template(
        session=portal.session, chain=chain, principal=portal.principal, document=doc
    )
    return _txs(txs)


@router.post("/templates/{pk}/publish", status_code=202)
def publish_template(pk: int, body: RawIn, portal: PageUser, chain: ChainDep) -> JSONResponse:
    """OEM: relay the signed ``publishTemplate``; once mined, the status's ``result`` is the published template."""
    _act(portal, "signer", "template.publish", target=str(pk))
    rows = agreement_service.publish_template(
        session=portal.session,
        chain=chain,
        principal=portal.principal,
        settings=_settings(portal),
        template_pk=pk,
        raw=body.raw[0],
    )
    return _accepted(rows)


# --------------------------------------------------------------------------------------------- agreements
@router.post("/agreements")
def propose(
    portal: PageUser,
    chain: ChainDep,
    template: Annotated[int, Form()],
    supplier_id: Annotated[int, Form()],
    lab_id: Annotated[int | None, Form()] = None,
) -> dict[str, Any]:
    _act(portal, "operator", "agreement.propose", target=str(template), supplier_id=supplier_id)
    record = agreement_service.propose_agreement(
        session=portal.session,
        chain=chain,
        principal=portal.principal,
        template_pk=template,
        supplier_id=supplier_id,
        lab_id=lab_id,
    )
    return {"id": record.id, "href": f"/portal/agreements/{record.id}"}


@router.post("/agreements/{ref}/typed")
def agreement_typed(ref: str, portal: PageUser, chain: ChainDep) -> dict[str, Any]:
    require_csrf(portal, None)
    record = agreement_service.get_agreement(session=portal.session, principal=portal.principal, agreement_ref=ref)
    if record.status != "proposed":
        raise InvalidRequest(f"agreement {record.agreement_id} is {record.status}; nothing to sign")
    return {"typed_data": agreement_service.typed_data(chain=chain, record=record)}


@router.post("/agreements/{ref}/signature")
def agreement_sign(ref: str, body: SignatureIn, portal: PageUser, chain: ChainDep) -> dict[str, Any]:
    _act(portal, "signer", "agreement.sign", target=ref)
    record = agreement_service.sign_agreement(
        session=portal.session, chain=chain, principal=portal.principal, agreement_ref=ref, signature=body.signature
    )
    return json.loads(agreement_public(record=record, chain=None).model_dump_json())


@router.post("/agreements/{ref}/prepare/{action}")
def agreement_prepare(
    ref: str, action: str, portal: PageUser, chain: ChainDep, amount: Annotated[str | None, Form()] = None
) -> dict[str, Any]:
    """Supplier: deposit (approve + deposit) or withdraw ``amount`` tokens; OEM: claim penalties."""
    _act(portal, "operator", f"agreement.prepare_{action}", target=ref, amount=amount)
    record = agreement_service.get_agreement(session=portal.session, principal=portal.principal, agreement_ref=ref)
    if action == "deposit":
        return _txs(
            agreement_service.prepare_deposit(
                chain=chain, principal=portal.principal, record=record, amount=_amount(amount or "")
            )
        )
    if action in ("withdraw", "claim"):
        value = _amount(amount or "") if action == "withdraw" else None
        return _txs(
            agreement_service.prepare_party_tx(
                chain=chain, principal=portal.principal, record=record, action=action, amount=value
            )
        )
    raise InvalidRequest(f"unknown action {action!r}: deposit, withdraw or claim", field="action")


@router.post("/agreements/{ref}/relay", status_code=202)
def agreement_relay(ref: str, body: RawIn, portal: PageUser, chain: ChainDep) -> JSONResponse:
    """Relay the party's signed transactions in order (approve then deposit ...); once the last is mined the
    gateway re-reads the agreement and the status's ``result`` carries its status."""
    _act(portal, "signer", "agreement.relay", target=ref)
    principal = portal.principal
    if principal.role not in _RELAYABLE:
        raise Forbidden("only the OEM and the supplier of an agreement relay its transactions")
    record = agreement_service.get_agreement(session=portal.session, principal=principal, agreement_ref=ref)
    rows = relay.submit(
        session=portal.session,
        chain=chain,
        principal=principal,
        settings=_settings(portal),
        raws=body.raw,
        allowed=_RELAYABLE[principal.role],
        follow_up=f"agreement:{record.agreement_id}",
    )
    return _accepted(rows, many=True)


@router.get("/relay/{relay_id}")
def relay_status(relay_id: Annotated[str, Path(min_length=36, max_length=36)], portal: PageUser) -> dict[str, Any]:
    """A relayed transaction of the user's party (the admin party: any), as ``GET /v1/relay/{id}``; another
    party's id is not found."""
    return _status(relay.get_status(session=portal.session, principal=portal.principal, relay_id=relay_id))


# ---------------------------------------------------------------------------------------------------- cases
def _report_8d(case_id: str, fields: dict[str, str]) -> bytes:
    """The 8D report the supplier filled in, as a JSON evidence file (hashed and anchored with the response)."""
    doc = {"format": "qcn-8d/1", "case_id": case_id, **{k.upper(): v for k, v in fields.items()}}
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=2).encode()


@router.post("/cases/{ref}/response/prepare")
def response_prepare(
    ref: str,
    request: Request,
    portal: PageUser,
    chain: ChainDep,
    d1: Annotated[str, Form(max_length=4000)] = "",
    d2: Annotated[str, Form(max_length=4000)] = "",
    d3: Annotated[str, Form(max_length=4000)] = "",
    d4: Annotated[str, Form(max_length=4000)] = "",
    d5: Annotated[str, Form(max_length=4000)] = "",
    d6: Annotated[str, Form(max_length=4000)] = "",
    d7: Annotated[str, Form(max_length=4000)] = "",
    d8: Annotated[str, Form(max_length=4000)] = "",
    files: list[UploadFile] | None = None,
) -> dict[str, Any]:
    """Supplier: the 8D report (D1-D8) plus attachments become the evidence; returns ``respond`` to sign."""
    _act(portal, "operator", "case.prepare_response", target=ref)
    fields = dict(zip(_8D, (d1, d2, d3, d4, d5, d6, d7, d8), strict=True))
    missing = [k.upper() for k, v in fields.items() if not v.strip()]
    if missing:
        raise InvalidRequest(f"fill in every 8D discipline; missing {', '.join(missing)}", field=missing[0].lower())
    case = case_service.get_case(session=portal.session, principal=portal.principal, case_ref=ref)
    case_service.require_case_role(portal.principal, case, "supplier")
    settings = request.app.state.settings
    attachments = read_limited([f for f in (files or []) if f.filename], request, settings.max_upload_bytes)
    evidence: list[tuple[str | None, bytes]] = [(f"8D-{case.id}.json", _report_8d(str(case.case_id), fields))]
    evidence += [(u.filename, u.data) for u in attachments]
    out = case_service.prepare_response(
        session=portal.session, chain=chain, principal=portal.principal, case=case, files=evidence
    )
    return out


def _case_relay(portal: Portal, chain: Any, ref: str, raw: list[str], function: str) -> JSONResponse:
    case = case_service.get_case(session=portal.session, principal=portal.principal, case_ref=ref)
    rows = case_service.submit_relayed(
        session=portal.session,
        chain=chain,
        principal=portal.principal,
        settings=_settings(portal),
        case=case,
        raw=raw[0],
        function=function,
    )
    return _accepted(rows)


@router.post("/cases/{ref}/response/relay", status_code=202)
def response_relay(ref: str, body: RawIn, portal: PageUser, chain: ChainDep) -> JSONResponse:
    _act(portal, "signer", "case.respond", target=ref)
    return _case_relay(portal, chain, ref, body.raw, "respond")


@router.post("/cases/{ref}/verdict/typed")
def verdict_typed(
    ref: str,
    portal: PageUser,
    chain: ChainDep,
    root_cause: Annotated[str, Form(min_length=1, max_length=200)],
    responsible_party: Annotated[int, Form(ge=0, le=3)],
    nc_class: Annotated[int, Form(ge=0, le=3)],
) -> dict[str, Any]:
    _act(portal, "operator", "case.prepare_verdict", target=ref, root_cause=root_cause)
    case = case_service.get_case(session=portal.session, principal=portal.principal, case_ref=ref)
    case_service.require_case_role(portal.principal, case, "lab")
    return case_service.verdict_typed_data(
        chain=chain,
        settings=portal.request.app.state.settings,
        session=portal.session,
        case=case,
        root_cause=root_cause,
        responsible_party=responsible_party,
        nc_class=nc_class,
        deadline=None,
    )


@router.post("/cases/{ref}/verdict/submit")
def verdict_submit(ref: str, body: SignedMessageIn, portal: PageUser, chain: ChainDep) -> dict[str, Any]:
    _act(portal, "signer", "case.verdict", target=ref)
    case = case_service.get_case(session=portal.session, principal=portal.principal, case_ref=ref)
    case_service.require_case_role(portal.principal, case, "lab")
    return case_service.submit_verdict(chain=chain, case=case, message=body.message, signature=body.signature)


@router.post("/cases/{ref}/acceptance/typed")
def acceptance_typed(
    ref: str, portal: PageUser, chain: ChainDep, accept: Annotated[str, Form()] = "true"
) -> dict[str, Any]:
    require_csrf(portal, None)
    case = case_service.get_case(session=portal.session, principal=portal.principal, case_ref=ref)
    case_service.require_case_role(portal.principal, case, "oem", "supplier")
    return case_service.acceptance_typed_data(
        chain=chain, settings=portal.request.app.state.settings, case=case, accept=accept == "true", deadline=None
    )


@router.post("/cases/{ref}/acceptance/submit")
def acceptance_submit(ref: str, body: SignedMessageIn, portal: PageUser, chain: ChainDep) -> dict[str, Any]:
    accept = bool(body.message.get("accept", True))
    _act(portal, "signer", "case.accept" if accept else "case.dispute", target=ref)
    case = case_service.get_case(session=portal.session, principal=portal.principal, case_ref=ref)
    case_service.require_case_role(portal.principal, case, "oem", "supplier")
    return case_service.submit_acceptance(
        chain=chain, principal=portal.principal, case=case, message=body.message, signature=body.signature
    )


@router.post("/cases/{ref}/claim/prepare")
def claim_prepare(ref: str, portal: PageUser, chain: ChainDep) -> dict[str, Any]:
    _act(portal, "operator", "case.prepare_claim", target=ref)
    case = case_service.get_case(session=portal.session, principal=portal.principal, case_ref=ref)
    case_service.require_case_role(portal.principal, case, "oem")
    return case_service.prepare_claim(chain=chain, principal=portal.principal, case=case)


@router.post("/cases/{ref}/claim/relay", status_code=202)
def claim_relay(ref: str, body: RawIn, portal: PageUser, chain: ChainDep) -> JSONResponse:
    _act(portal, "signer", "case.claim", target=ref)
    return _case_relay(portal, chain, ref, body.raw, "claim")
