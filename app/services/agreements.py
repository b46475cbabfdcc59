"""Templates, agreements, deposits and evaluations — the gateway side.

Who signs what (the gateway never holds a party's key):

- the OEM publishes a template from its own account: the gateway validates the document, stores it and hands
  back the unsigned ``publishTemplate`` transaction, which the OEM signs and posts back (:mod:`app.services.relay`);
- OEM and supplier each sign the agreement's EIP-712 typed data; when both signatures are in, the gateway's
  relayer submits ``activate`` (anyone may: the contract checks both signatures);
- deposits, withdrawals and claims are the parties' own transactions (prepare -> sign -> relay);
- ``evaluate`` may be called by anyone once a quarter has ended; the gateway's scheduler does it.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import Principal, require_role
from app.chainctx import ChainContext, b32
from app.db import AgreementRecord, Party, RelayTransaction, TemplateRecord
from app.errors import Conflict, Forbidden, InvalidRequest, NotFound
from app.inputs import is_row_id
from app.policy import agreement_scope, template_scope
from app.quality import Template, TemplateError, load_template
from app.services import relay
from app.settings import Settings
from chain.agreements import AgreementState, AgreementTerms, TemplateTerms, Tier, agreement_typed_data
from chain.contracts import contract_at

__all__ = [
    "MONEY_EVENTS",
    "agreement_status",
    "create_template",
    "get_agreement",
    "get_template",
    "list_agreements",
    "list_templates",
    "prepare_deposit",
    "prepare_party_tx",
    "propose_agreement",
    "publish_template",
    "sign_agreement",
    "sync_status",
    "template_for_batch",
    "template_published",
    "validate_template",
]

_AGREEMENT_DEADLINE_S = 7 * 24 * 3600


# -- templates ---------------------------------------------------------------------------------------------
def _terms(template: Template) -> TemplateTerms:
    t = template.chain_terms()
    return TemplateTerms(
        template_id=b32(t["templateKey"]),
        version=int(t["version"]),
        document_hash=b32(t["documentHash"]),
        deposit_base=int(t["depositBase"]),
        initial_ratio_bps=int(t["initialRatioBps"]),
        min_ratio_bps=int(t["minRatioBps"]),
        max_ratio_bps=int(t["maxRatioBps"]),
        max_step_bps=int(t["maxStepBps"]),
        tiers=tuple(Tier(int(a), int(b)) for a, b in t["tiers"]),
        penalty_critical=int(t["penaltyCritical"]),
        penalty_major=int(t["penaltyMajor"]),
        penalty_minor=int(t["penaltyMinor"]),
        penalty_per_ppm=int(t["penaltyPerPpm"]),
        ppm_target=int(t["targetPpm"]),
        supplier_response_seconds=int(t["supplierResponseSeconds"]),
        lab_verdict_seconds=int(t["labVerdictSeconds"]),
        dispute_window_seconds=int(t["disputeWindowSeconds"]),
        top_up_grace_seconds=int(t["topUpGraceSeconds"]),
        lab_fee_cap=int(t["labFee"]),
    )


def template_of(record: TemplateRecord) -> Template:
    return load_template(record.document)


def validate_template(document: dict[str, Any]) -> Template:
    """The template validator of the API and the portal's editor: `InvalidRequest` with one problem per field."""
    try:
        return load_template(document)
    except TemplateError as exc:
        problems = [{"field": p.field, "message": p.message} for p in exc.problems]
        field = problems[0]["field"] if problems else None
        raise InvalidRequest(str(exc), field=field, problems=problems) from exc


def create_template(
    *, session: Session, chain: ChainContext, principal: Principal, document: dict[str, Any]
) -> tuple[TemplateRecord, list[relay.PreparedTx]]:
    """Validate and store an OEM's template (draft) and prepare its ``publishTemplate`` transaction."""
    require_role(principal, "oem")
    template = validate_template(document)
    existing = session.scalars(
        select(TemplateRecord).where(
            TemplateRecord.template_id == template.template_id, TemplateRecord.version == template.version
        )
    ).first()
    if existing is not None and existing.status == "published":
        raise Conflict(
            f"template {template.template_id} version {template.version} is published and immutable; "
            "publish changes as a new version"
        )
    if existing is not None and existing.oem_id != principal.party_id:
        raise Conflict(f"template id {template.template_id} belongs to another OEM")
    record = existing or TemplateRecord(
        template_id=template.template_id, version=template.version, oem_id=principal.party_id
    )
    record.chain_template_id = "0x" + template.template_key().hex()
    record.document = template.canonical_json().decode()
    record.document_hash = "0x" + template.canonical_hash().hex()
    record.status = "draft"
    session.add(record)
    session.flush()
    call = chain.agreements.contract.functions.publishTemplate(_terms(template).to_abi())
    return record, relay.prepare(chain=chain, principal=principal, calls=[("publish template", call)])


def publish_template(
    *, session: Session, chain: ChainContext, principal: Principal, settings: Settings, template_pk: int, raw: str
) -> list[RelayTransaction]:
    """Relay the OEM-signed ``publishTemplate`` transaction (accepted, awaited by the relay queue, which
    then calls :func:`template_published`)."""
    record = get_template(session=session, principal=principal, template_pk=template_pk)
    if record.oem_id != principal.party_id:
        raise Forbidden("only the OEM that drafted the template publishes it")
    if record.status == "published":
        raise Conflict(f"template {record.template_id} v{record.version} is published already")
    return relay.submit(
        session=session,
        chain=chain,
        principal=principal,
        settings=settings,
        raws=[raw],
        allowed={"publishTemplate"},
        follow_up=f"template:{record.id}",
    )


def template_published(*, session: Session, chain: ChainContext, template_pk: int, tx_hash: str) -> TemplateRecord:
    """Follow-up of a mined ``publishTemplate``: check the on-chain document hash, mark the template published."""
    record = session.get(TemplateRecord, template_pk)
    if record is None:
        raise NotFound(f"template {template_pk} not found")
    oem = session.get(Party, record.oem_id)
    if oem is None or oem.account is None:
        raise Conflict(f"template {record.template_id}: its OEM has no chain account")
    # template ids live in the OEM's own namespace on chain
    terms, _oem, _at = chain.agreements.template(oem.account, b32(record.chain_template_id), record.version)
    if "0x" + terms.document_hash.hex() != record.document_hash:
        raise Conflict("the published template's document hash differs from the stored document")
    record.status, record.chain_tx = "published", tx_hash
    return record


def _visible_templates(session: Session, principal: Principal) -> list[TemplateRecord]:
    q = select(TemplateRecord).where(template_scope(principal))
    return list(session.scalars(q.order_by(TemplateRecord.template_id, TemplateRecord.version)))


def list_templates(*, session: Session, principal: Principal) -> list[TemplateRecord]:
    """OEMs: their templates (all versions); suppliers and labs: the templates of their agreements."""
    return _visible_templates(session, principal)


def get_template(*, session: Session, principal: Principal, template_pk: int) -> TemplateRecord:
    record = session.scalars(
        select(TemplateRecord).where(template_scope(principal), TemplateRecord.id == template_pk)
    ).first()
    if record is not None:
        return record
    raise NotFound(f"template {template_pk} not found")


# -- agreements ---------------------------------------------------------------------------------------------
def _party(session: Session, party_id: int, kind: str) -> Party:
    party = session.get(Party, party_id)
    if party is None or party.kind != kind or party.account is None:
        raise InvalidRequest(f"party {party_id} is not a registered {kind}", field=f"{kind}_id")
    return party


def _terms_of(record: AgreementRecord) -> AgreementTerms:
    raw = json.loads(record.terms)
    return AgreementTerms(
        agreement_id=b32(raw["agreementId"]),
        template_id=b32(raw["templateId"]),
        template_version=int(raw["templateVersion"]),
        oem=raw["oem"],
        supplier=raw["supplier"],
        lab=raw["lab"],
        oem_nonce=int(raw["oemNonce"]),
        supplier_nonce=int(raw["supplierNonce"]),
        deadline=int(raw["deadline"]),
    )


def propose_agreement(
    *,
    session: Session,
    chain: ChainContext,
    principal: Principal,
    template_pk: int,
    supplier_id: int,
    lab_id: int | None,
) -> AgreementRecord:
    """OEM proposes an agreement on one of its published templates; both parties then sign the typed data."""
    require_role(principal, "oem")
    template = get_template(session=session, principal=principal, template_pk=template_pk)
    if template.status != "published":
        raise Conflict(f"template {template.template_id} v{template.version} is not published yet")
    supplier = _party(session, supplier_id, "supplier")
    lab = _party(session, lab_id, "lab") if lab_id is not None else None
    oem = session.get(Party, principal.party_id)
    assert oem is not None and oem.account is not None
    agreement_id = "0x" + os.urandom(32).hex()
    deadline = int(time.time()) + _AGREEMENT_DEADLINE_S
    terms = AgreementTerms(
        agreement_id=b32(agreement_id),
        template_id=b32(template.chain_template_id),
        template_version=template.version,
        oem=oem.account,
        supplier=str(supplier.account),
        lab=str(lab.account) if lab else "",
        oem_nonce=chain.agreements.nonces(oem.account),
        supplier_nonce=chain.agreements.nonces(str(supplier.account)),
        deadline=deadline,
    )
    message = {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in terms.message().items()}
    record = AgreementRecord(
        agreement_id=agreement_id,
        template_pk=template.id,
        oem_id=oem.id,
        supplier_id=supplier.id,
        lab_id=lab.id if lab else None,
        terms=json.dumps(message, sort_keys=True),
        status="proposed",
    )
    session.add(record)
    session.flush()
    return record


def typed_data(*, chain: ChainContext, record: AgreementRecord) -> dict[str, Any]:
    """The EIP-712 typed data both parties sign (verifiable with any standard tool)."""
    data = agreement_typed_data(_terms_of(record), chain_id=chain.chain_id, verifying_contract=chain.agreements.address)
    return json.loads(json.dumps(data, default=lambda b: "0x" + bytes(b).hex()))


def sign_agreement(
    *, session: Session, chain: ChainContext, principal: Principal, agreement_ref: str, signature: str
) -> AgreementRecord:
    """Store the caller's EIP-712 signature (checked here); with both in, activate on chain via the relayer."""
    record = get_agreement(session=session, principal=principal, agreement_ref=agreement_ref)
    if principal.party_id not in (record.oem_id, record.supplier_id):
        raise Forbidden("only the agreement's OEM and supplier sign it")
    if record.status != "proposed":
        raise Conflict(f"agreement {record.agreement_id} is {record.status}, not waiting for signatures")
    from eth_account import Account  # loads with the first signature, not at start
    from eth_account.messages import encode_typed_data

    try:
        signable = encode_typed_data(full_message=typed_data(chain=chain, record=record))
        signer = Account.recover_message(signable, signature=bytes.fromhex(signature.removeprefix("0x")))
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"not a valid EIP-712 signature: {exc}", field="signature") from exc
    expected = chain.parties.party(str(principal.account)).signer
    if to_checksum_address(signer) != to_checksum_address(expected):
        raise InvalidRequest(
            f"the signature is by {signer}, your registered signing key is {expected}", field="signature"
        )
    if principal.party_id == record.oem_id:
        record.oem_signature = signature
    else:
        record.supplier_signature = signature
    if record.oem_signature and record.supplier_signature:
        sent = chain.agreements.activate(
            _terms_of(record),
            bytes.fromhex(record.oem_signature.removeprefix("0x")),
            bytes.fromhex(record.supplier_signature.removeprefix("0x")),
        )
        record.status, record.chain_tx = "active", sent.tx_hash
    return record


def _visible_agreements(session: Session, principal: Principal) -> Any:
    return select(AgreementRecord).where(agreement_scope(principal)).order_by(AgreementRecord.id)


def list_agreements(*, session: Session, principal: Principal) -> list[AgreementRecord]:
    return list(session.scalars(_visible_agreements(session, principal)))


def get_agreement(*, session: Session, principal: Principal, agreement_ref: str) -> AgreementRecord:
    """By database id or on-chain 0x id, if the caller is a party to it (or admin); otherwise 404."""
    q = _visible_agreements(session, principal)
    if agreement_ref.startswith("0x"):
        q = q.where(AgreementRecord.agreement_id == agreement_ref.lower())
    elif is_row_id(agreement_ref):
        q = q.where(AgreementRecord.id == int(agreement_ref))
    else:
        raise NotFound(f"agreement {agreement_ref} not found")
    record = session.scalars(q).first()
    if record is None:
        raise NotFound(f"agreement {agreement_ref} not found")
    return record


def agreement_status(*, chain: ChainContext, record: AgreementRecord) -> dict[str, Any]:
    """State, ratio, balances and the current quarter's counters, read from the chain."""
    aid = b32(record.agreement_id)
    on_chain = chain.agreements.agreement(aid)
    out: dict[str, Any] = {"state": AgreementState(on_chain.state).name.lower(), "late_top_up": on_chain.late_top_up}
    if on_chain.state == AgreementState.NONE:
        return out
    balances = chain.agreements.balances(aid)
    quarter = chain.agreements.current_quarter(aid)
    counters = chain.agreements.quarter_counters(aid, quarter)
    out.update(
        ratio_bps=on_chain.ratio_bps,
        activated_at=on_chain.activated_at,
        top_up_deadline=on_chain.top_up_deadline or None,
        deposited=str(balances.deposited),
        required=str(balances.required),
        claimable=str(balances.claimable),
        excess=str(max(0, balances.deposited - balances.required)),
        shortfall=str(max(0, balances.required - balances.deposited)),
        quarter=quarter,
        counters=counters.__dict__,
    )
    return out


def sync_status(*, chain: ChainContext, record: AgreementRecord) -> None:
    """Refresh the stored status from the chain (suspension and termination happen on chain)."""
    state = chain.agreements.agreement(b32(record.agreement_id)).state
    mapping = {
        AgreementState.ACTIVE: "active",
        AgreementState.SUSPENDED: "suspended",
        AgreementState.TERMINATED: "terminated",
    }
    if state in mapping:
        record.status = mapping[AgreementState(state)]


# -- deposits & party transactions ---------------------------------------------------------------------------
def prepare_deposit(
    *, chain: ChainContext, principal: Principal, record: AgreementRecord, amount: int
) -> list[relay.PreparedTx]:
    """Unsigned ``approve`` + ``deposit`` for the supplier to sign."""
    if principal.party_id != record.supplier_id:
        raise Forbidden("only the agreement's supplier deposits")
    if amount <= 0:
        raise InvalidRequest("amount must be positive", field="amount")
    token = contract_at(chain.w3, "TestToken", chain.token_address)
    return relay.prepare(
        chain=chain,
        principal=principal,
        calls=[
            ("approve the escrow to take the deposit", token.functions.approve(chain.agreements.address, amount)),
            ("deposit", chain.agreements.contract.functions.deposit(b32(record.agreement_id), amount)),
        ],
    )


def prepare_party_tx(
    *, chain: ChainContext, principal: Principal, record: AgreementRecord, action: str, amount: int | None
) -> list[relay.PreparedTx]:
    """Unsigned ``withdraw`` (supplier, excess only) or ``claim`` (OEM, penalties owed)."""
    aid = b32(record.agreement_id)
    if action == "withdraw":
        if principal.party_id != record.supplier_id:
            raise Forbidden("only the agreement's supplier withdraws")
        if not amount or amount <= 0:
            raise InvalidRequest("amount must be positive", field="amount")
        call = chain.agreements.contract.functions.withdraw(aid, amount)
    elif action == "claim":
        if principal.party_id != record.oem_id:
            raise Forbidden("only the agreement's OEM claims penalties")
        call = chain.agreements.contract.functions.claim(aid)
    else:
        raise InvalidRequest(f"unknown action {action!r}: withdraw or claim", field="action")
    return relay.prepare(chain=chain, principal=principal, calls=[(action, call)])


def prepare_inspection(
    *,
    session: Session,
    chain: ChainContext,
    principal: Principal,
    record: AgreementRecord,
    batch_ref: str,
    accepted: bool,
) -> list[relay.PreparedTx]:
    """OEM: the unsigned ``recordInspection`` of its incoming inspection of a batch delivered under ``record``.

    The result (one per batch, accepted or rejected) is what the quality score counts (docs/trust-model.md):
    only the agreement's OEM records it, signed with its own key, for a batch anchored under this agreement.
    """
    from app.services.batches import get_batch
    from app.services.proofs import batch_header

    if principal.party_id != record.oem_id:
        raise Forbidden("only the agreement's OEM records incoming inspections")
    batch = get_batch(session=session, principal=principal, batch_ref=batch_ref)
    if batch.agreement_id != record.agreement_id:
        raise InvalidRequest(
            f"batch {batch_ref} was not delivered under agreement {record.agreement_id}", field="batch"
        )
    header = batch_header(batch)  # 409 until the batch is anchored
    call = chain.agreements.contract.functions.recordInspection(
        b32(record.agreement_id), b32(batch.batch_id), header.as_tuple(), accepted
    )
    verdict = "accepted" if accepted else "rejected"
    return relay.prepare(chain=chain, principal=principal, calls=[(f"recordInspection ({verdict})", call)])


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return str(value)  # token amounts: exact as decimal strings
    return value


# the events that move or bind a supplier's money: the deposit history shown by the API and the portal
MONEY_EVENTS = (
    "Deposited",
    "Withdrawn",
    "Claimed",
    "NonConformityRecorded",
    "DebtRecorded",
    "DebtPaid",
    "DepositBound",
    "DepositReleased",
    "FundingUpdated",
    "LateTopUpFlagged",
)


def history(*, chain: ChainContext, record: AgreementRecord, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """This agreement's events of the given kinds, oldest first, JSON-ready."""
    out = []
    for name in names:
        for e in chain.agreements.events(name, from_block=chain.deployment.block_number):
            if _jsonable(e.get("agreementId", b"")) != record.agreement_id:
                continue
            out.append({"event": name, **{k: _jsonable(v) for k, v in e.items()}})
    return sorted(out, key=lambda r: (r["blockNumber"], r["event"]))


# -- uploads under an agreement --------------------------------------------------------------------------------
def template_for_batch(
    *, session: Session, supplier: Party, agreement_ref: str, chain: ChainContext | None
) -> tuple[AgreementRecord, Template]:
    """The agreement a supplier uploads under, if it may: its own, active (suspended/terminated refused)."""
    record = session.scalars(
        select(AgreementRecord).where(AgreementRecord.agreement_id == agreement_ref.lower())
    ).first()
    if record is None and is_row_id(agreement_ref):
        record = session.get(AgreementRecord, int(agreement_ref))
    if record is None or record.supplier_id != supplier.id:
        raise NotFound(f"agreement {agreement_ref} not found for this supplier")
    if chain is not None:
        sync_status(chain=chain, record=record)
    if record.status != "active":
        raise Conflict(
            f"agreement {record.agreement_id} is {record.status}: batches cannot be delivered under it",
            status=record.status,
        )
    return record, template_of(record.template)
