"""Tracing cases in the gateway: automatic opening, and every party's action on a case.

Opening (the ``cases`` queue of :mod:`app.jobs`, which claims pending rows and applies its backoff):

1. :func:`discover` — the latest anomalous analysis of a batch that is anchored under an active
   agreement with a lab gets one :class:`~app.db.CaseRecord` (``open_status`` pending): that row is the outbox
   of the ``openCase`` transaction, and a batch gets at most one automatic case;
2. :func:`open_due` — for each pending row: if its predicted case id (``nextCaseId``, stored *before*
   sending) already exists on chain, a previous pass sent it and died before recording: adopt it; otherwise
   store the predicted id, then send ``openCase`` with ``analysisHash`` = the SHA-256 of the stored analysis
   document (which anchors it) and the batch header exactly as anchored (:func:`open_case_row`). Reverts
   and outages back off exponentially; after ``cases_open_max_attempts`` the row is ``failed``.

State is never set here: the indexer (:mod:`app.services.indexer`) folds the contract's events into the row.

Party actions (``app/routers/cases.py``): the lab signs a verdict (EIP-712, any wallet) that the gateway
relays; OEM and supplier sign acceptances or disputes the same way; the supplier's response and the claims
are transactions only the party's own account may send, so the gateway prepares them unsigned and relays
what the party signed (:mod:`app.services.relay`); the consortium arbiter rules with the arbiter key (ARBITER_ROLE).
Visibility: the case's OEM, supplier and (current) lab, and the admin; anyone else gets 404.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from eth_utils import keccak
from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.auth import Principal
from app.chainctx import ChainContext, b32
from app.db import (
    AgreementRecord,
    AnalysisResult,
    Batch,
    CaseEvidence,
    CaseRecord,
    ChainEventRecord,
    RelayTransaction,
)
from app.errors import Conflict, Forbidden, InvalidRequest, NotFound
from app.inputs import is_row_id
from app.policy import case_scope
from app.services import relay
from app.services.batches import store_blob
from app.services.indexer import event_args
from app.services.proofs import batch_header
from app.settings import Settings
from chain.canonical import json_sha256
from chain.cases import Acceptance, CaseState, OpenRequest, Verdict
from chain.tx import decode_signed

__all__ = [
    "acceptance_typed_data",
    "arbitrate",
    "case_analysis",
    "case_public",
    "discover",
    "discover_due",
    "evidence_hash_of",
    "get_case",
    "list_cases",
    "open_case_row",
    "prepare_claim",
    "prepare_lab_fee_claim",
    "prepare_response",
    "require_case_role",
    "submit_acceptance",
    "submit_relayed",
    "submit_verdict",
    "timeline",
    "verdict_typed_data",
]

log = logging.getLogger("qcn.cases")

_ZERO32 = "0x" + "00" * 32
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ACTIVE_AGREEMENT = ("active", "suspended")


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


# ----------------------------------------------------------------------------------------------- automation
# documents (by SHA-256: the judgement is a function of the document alone) whose only anomaly is one value: such
# a batch stays "anomalous without a case", so every discovery pass (once a second when idle) would read and log
# it again
_ONE_VALUE: set[str] = set()
_ONE_VALUE_MAX = 100_000


def discover(*, session: Session, settings: Settings) -> int:
    """Queue a case for every anomalous, anchored batch under an agreement with a lab; returns how many.

    A verdict whose every anomaly is one value of one sample (:func:`models.verdict.single_value`) opens
    none: one unit far out is contained by acceptance (the lot is rejected when that value is out of spec on a
    critical characteristic), and a tracing case asks what changed in the process, which needs more than one row.
    """
    if not settings.cases_auto_open:
        return 0
    has_case = select(CaseRecord.id).where(CaseRecord.batch_pk == Batch.id).exists()
    rows = session.execute(
        select(AnalysisResult, Batch, AgreementRecord)
        .join(Batch, Batch.id == AnalysisResult.batch_pk)
        .join(AgreementRecord, AgreementRecord.agreement_id == Batch.agreement_id)
        .where(
            AnalysisResult.anomalous.is_(True),
            Batch.status == "anchored",
            AgreementRecord.status.in_(_ACTIVE_AGREEMENT),
            AgreementRecord.lab_id.is_not(None),
            ~has_case,
        )
        .order_by(AnalysisResult.id)
    ).all()
    latest: dict[str, tuple[AnalysisResult, Batch, AgreementRecord]] = {}
    for analysis, batch, agreement in rows:
        latest[batch.id] = (analysis, batch, agreement)  # later analyses win
    for key, (analysis, batch, _) in list(latest.items()):
        if analysis.sha256 in _ONE_VALUE:
            del latest[key]  # judged on an earlier pass: not read or logged again
            continue
        one = _single_value(analysis.document)
        if one is not None:
            log.info("no case for batch %s: its only anomaly is %s of sample %s", batch.batch_id, *one)
            if len(_ONE_VALUE) >= _ONE_VALUE_MAX:
                _ONE_VALUE.clear()
            _ONE_VALUE.add(analysis.sha256)
            del latest[key]
    for analysis, batch, agreement in latest.values():
        session.add(
            CaseRecord(
                batch_pk=batch.id,
                analysis_pk=analysis.id,
                batch_id=batch.batch_id,
                agreement_id=agreement.agreement_id,
                oem_id=agreement.oem_id,
                supplier_id=agreement.supplier_id,
                lab_id=agreement.lab_id,
                analysis_hash="0x" + analysis.sha256,
                lab_fee=str(settings.cases_lab_fee),
            )
        )
    session.flush()
    return len(latest)


def _single_value(document: str) -> tuple[str, str] | None:
    """The one (characteristic, sample) a stored analysis's anomalies are all about, if so."""
    try:
        reasons = json.loads(document).get("verdict", {}).get("reasons", [])
    except (ValueError, AttributeError):
        return None
    if not isinstance(reasons, list) or not all(isinstance(r, dict) for r in reasons):
        return None
    from models.verdict import single_value  # the verdict module brings pandas/scipy: not at gateway start

    return single_value(reasons)


def _open_one(sessions: sessionmaker[Session], chain: ChainContext, settings: Settings, pk: int) -> bool:
    with sessions() as s:
        case = s.get(CaseRecord, pk)
        if case is None or case.open_status != "pending" or case.batch_pk is None:
            return False
        batch = s.get(Batch, case.batch_pk)
        if batch is None:
            return False
        header = batch_header(batch)
        batch_id, predicted = b32(case.batch_id), case.case_id
        request = OpenRequest(
            agreement_id=b32(case.agreement_id),
            batch_id=batch_id,
            analysis_hash=b32(str(case.analysis_hash)),
            lab_fee=int(case.lab_fee),
        )
    if predicted is not None and chain.cases.case(b32(predicted)).state != CaseState.NONE:
        _mark_opened(sessions, pk, predicted, None)  # sent by an earlier pass that died before recording
        return True
    case_id = _hex(chain.cases.next_case_id(batch_id))
    with sessions() as s, s.begin():  # remembered before sending: a crash after sending adopts it next pass
        row = s.get(CaseRecord, pk)
        if row is None:
            return False
        row.case_id = case_id
    result = chain.cases.open_case(request, header)
    opened = _hex(bytes(result.event("CaseOpened")["caseId"]))
    _mark_opened(sessions, pk, opened, result.tx_hash)
    log.info("case %s opened for batch %s in tx %s", opened, case.batch_id, result.tx_hash)
    return True


def _mark_opened(sessions: sessionmaker[Session], pk: int, case_id: str, tx_hash: str | None) -> None:
    with sessions() as s, s.begin():
        case = s.get(CaseRecord, pk)
        if case is None:
            return
        case.case_id, case.open_status, case.last_error = case_id, "done", None
        case.open_tx = tx_hash or case.open_tx


def open_case_row(*, sessions: sessionmaker[Session], chain: ChainContext, settings: Settings, pk: int) -> bool:
    """Send (or adopt) the ``openCase`` transaction of one claimed case row; True when it is open on chain."""
    return _open_one(sessions, chain, settings, pk)


def discover_due(*, sessions: sessionmaker[Session], settings: Settings) -> int:
    """:func:`discover` in its own transaction (run before each claim of the ``cases`` queue)."""
    with sessions() as s, s.begin():
        return discover(session=s, settings=settings)


# ----------------------------------------------------------------------------------------------- reading
def get_case(*, session: Session, principal: Principal, case_ref: str) -> CaseRecord:
    """A case by its on-chain id (0x...) or row id, if the caller is one of its parties (else 404)."""
    column = CaseRecord.case_id if case_ref.startswith("0x") else CaseRecord.id
    value: Any = case_ref.lower() if case_ref.startswith("0x") else (int(case_ref) if is_row_id(case_ref) else -1)
    case = session.scalars(select(CaseRecord).where(case_scope(principal), column == value)).first()
    if case is None:
        raise NotFound(f"case {case_ref} not found")
    return case


def list_cases(
    *, session: Session, principal: Principal, state: str | None = None, limit: int = 100, offset: int = 0
) -> list[CaseRecord]:
    """Cases the caller is a party of (admin: all), newest first; ``state`` filters."""
    q = select(CaseRecord).where(case_scope(principal)).order_by(CaseRecord.id.desc()).limit(limit).offset(offset)
    if state:
        q = q.where(CaseRecord.state == state)
    return list(session.scalars(q))


def case_public(case: CaseRecord) -> dict[str, Any]:
    """The API view of a case."""
    return {
        "id": case.id,
        "case_id": case.case_id,
        "state": case.state,
        "deadline": case.deadline,
        "opened_at": case.opened_at,
        "batch_id": case.batch_id,
        "batch": case.batch_pk,
        "agreement_id": case.agreement_id,
        "oem_id": case.oem_id,
        "supplier_id": case.supplier_id,
        "lab_id": case.lab_id,
        "lab_account": case.lab_account,
        "analysis_id": case.analysis_pk,
        "analysis_hash": case.analysis_hash,
        "lab_fee": case.lab_fee,
        "round": case.round,
        "verdict_hash": case.verdict_hash,
        "root_cause_code": case.root_cause_code,
        "responsible_party": case.responsible_party,
        "nc_class": case.nc_class,
        "oem_accepted": case.oem_accepted,
        "supplier_accepted": case.supplier_accepted,
        "lab_deadline_missed": case.lab_deadline_missed,
        "penalized": case.penalized,
        "lab_fee_paid": case.lab_fee_paid,
        "open": {
            "status": case.open_status,
            "attempts": case.attempts,
            "tx_hash": case.open_tx,
            "last_error": case.last_error,
        },
    }


def _event_public(row: ChainEventRecord) -> dict[str, Any]:
    return {
        "contract": row.contract,
        "event": row.name,
        "tx_hash": row.tx_hash,
        "block_number": row.block_number,
        "block_hash": row.block_hash,
        "log_index": row.log_index,
        "at": row.block_time,
        "args": event_args(row),
    }


def timeline(*, session: Session, case: CaseRecord) -> dict[str, Any]:
    """Every step of the case with its tx hash and block, and what proves the anchoring of its inputs.

    ``anchoring``: the batch's ``BatchAnchored`` transaction and commitment; ``analysis``: the stored
    document's SHA-256 next to the ``analysisHash`` the case was opened with; ``evidence``: each evidence
    hash seen on chain with the stored files whose hash recomputes to it.
    """
    steps = [
        _event_public(r)
        for r in session.scalars(
            select(ChainEventRecord)
            .where(ChainEventRecord.case_id == case.case_id)
            .order_by(ChainEventRecord.block_number, ChainEventRecord.log_index)
        )
    ]
    batch = session.get(Batch, case.batch_pk) if case.batch_pk else None
    anchored = session.scalars(
        select(ChainEventRecord)
        .where(
            ChainEventRecord.name.in_(("BatchAnchored", "BatchAnchoredSimple")),
            ChainEventRecord.batch_id == case.batch_id,
        )
        .order_by(ChainEventRecord.block_number.desc())
    ).first()
    analysis = session.get(AnalysisResult, case.analysis_pk) if case.analysis_pk else None
    opened = next((s for s in steps if s["event"] == "CaseOpened"), None)
    on_chain_analysis = opened["args"]["analysisHash"] if opened else None
    evidence = []
    for step in steps:
        eh = step["args"].get("evidenceHash")
        if not eh or eh == _ZERO32:
            continue
        files = session.scalars(
            select(CaseEvidence).where(CaseEvidence.case_pk == case.id, CaseEvidence.evidence_hash == eh)
        ).all()
        recomputed = evidence_hash_of(str(case.case_id), [f.sha256 for f in files]) if files else None
        evidence.append(
            {
                "event": step["event"],
                "tx_hash": step["tx_hash"],
                "block_number": step["block_number"],
                "evidence_hash": eh,
                "files": [{"sha256": f.sha256, "filename": f.filename, "size": f.size} for f in files],
                "recomputed_hash": recomputed,
                "matches": recomputed == eh,
            }
        )
    return {
        "case": case_public(case),
        "steps": steps,
        "anchoring": {
            "batch_id": case.batch_id,
            "tx_hash": batch.tx_hash if batch else (anchored.tx_hash if anchored else None),
            "block_number": batch.block_number if batch else (anchored.block_number if anchored else None),
            "commitment": batch.commitment if batch else None,
            "root": batch.root if batch else None,
            "event_indexed": anchored is not None,
        },
        "analysis": {
            "sha256": analysis.sha256 if analysis else None,
            "on_chain_hash": on_chain_analysis,
            "matches": analysis is not None and on_chain_analysis == "0x" + analysis.sha256,
            "open_tx": opened["tx_hash"] if opened else None,
        },
        "evidence": evidence,
    }


def case_analysis(*, session: Session, case: CaseRecord) -> dict[str, Any]:
    """The analysis the case was opened on: document, hash, and whether it is the one anchored on chain."""
    analysis = session.get(AnalysisResult, case.analysis_pk) if case.analysis_pk else None
    if analysis is None:
        raise NotFound(f"case {case.case_id} has no stored analysis (it was opened outside the gateway)")
    doc = json.loads(analysis.document)
    return {
        "analysis_id": analysis.id,
        "sha256": analysis.sha256,
        "anchored_as": case.analysis_hash,
        "matches": case.analysis_hash == "0x" + hashlib.sha256(analysis.document.encode()).hexdigest(),
        "top_cause": analysis.top_cause,
        "root_cause_status": analysis.root_cause_status,
        "document": doc,
    }


# ----------------------------------------------------------------------------------------------- actions
def require_case_role(principal: Principal, case: CaseRecord, *roles: str) -> None:
    """The caller must be the case's party in one of ``roles`` ("oem", "supplier", "lab", "admin")."""
    allowed = {
        "oem": case.oem_id,
        "supplier": case.supplier_id,
        "lab": case.lab_id,
    }
    if "admin" in roles and principal.is_admin:
        return
    if any(principal.role == r and allowed.get(r) == principal.party_id for r in roles):
        return
    raise Forbidden(f"this action on case {case.case_id} is for its {' or '.join(roles)}", role=principal.role)


def _on_chain(case: CaseRecord) -> bytes:
    if case.case_id is None or case.open_status != "done":
        raise Conflict(f"case row {case.id} is not open on chain yet (status {case.open_status})")
    return b32(case.case_id)


def _jsonable_message(message: dict[str, Any]) -> dict[str, Any]:
    return {k: ("0x" + bytes(v).hex() if isinstance(v, bytes | bytearray) else v) for k, v in message.items()}


def _code(value: str) -> bytes:
    return b32(value) if _HEX32.match(value) else bytes(keccak(text=value))


def verdict_typed_data(
    *,
    chain: ChainContext,
    settings: Settings,
    session: Session,
    case: CaseRecord,
    root_cause: str | None,
    responsible_party: int,
    nc_class: int,
    deadline: int | None,
) -> dict[str, Any]:
    """EIP-712 ``Verdict`` for the case's lab to sign (nonce = the case's round, analysis = the anchored hash).

    ``root_cause`` is a 0x bytes32 code or text (hashed with keccak256); default: the analysis's top cause.
    """
    case_id = _on_chain(case)
    if root_cause is None:
        analysis = session.get(AnalysisResult, case.analysis_pk) if case.analysis_pk else None
        root_cause = (analysis.top_cause if analysis else None) or "unknown"
    verdict = Verdict(
        case_id=case_id,
        batch_id=b32(case.batch_id),
        root_cause_code=_code(root_cause),
        responsible_party=responsible_party,
        nc_class=nc_class,
        analysis_hash=b32(str(case.analysis_hash)),
        deadline=deadline
        if deadline is not None
        else chain.rpc.latest_timestamp() + settings.cases_signature_validity_s,
        nonce=case.round,
    )
    typed = chain.cases.verdict_typed_data(verdict)
    typed["message"] = _jsonable_message(typed["message"])
    return {"typed_data": typed, "verdict_hash": _hex(chain.cases.verdict_hash(verdict)), "root_cause": root_cause}


def _verdict_from(message: dict[str, Any]) -> Verdict:
    try:
        return Verdict(
            case_id=b32(str(message["caseId"])),
            batch_id=b32(str(message["batchId"])),
            root_cause_code=b32(str(message["rootCauseCode"])),
            responsible_party=int(message["responsibleParty"]),
            nc_class=int(message["ncClass"]),
            analysis_hash=b32(str(message["analysisHash"])),
            deadline=int(message["deadline"]),
            nonce=int(message["nonce"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"not a Verdict message: {exc}", field="message") from exc


def _signature(value: str) -> bytes:
    try:
        raw = bytes(HexBytes(value))
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"signature is not hex: {exc}", field="signature") from exc
    if len(raw) != 65:
        raise InvalidRequest(f"a signature has 65 bytes (r, s, v), got {len(raw)}", field="signature")
    return raw


def submit_verdict(*, chain: ChainContext, case: CaseRecord, message: dict[str, Any], signature: str) -> dict[str, Any]:
    """Relay the lab-signed verdict; the contract checks the signer, accreditation, nonce and deadline."""
    case_id = _on_chain(case)
    verdict = _verdict_from(message)
    if verdict.case_id != case_id:
        raise InvalidRequest(f"the signed verdict is for case {_hex(verdict.case_id)}, not {case.case_id}")
    result = chain.cases.submit_verdict(verdict, _signature(signature))
    ev = result.event("VerdictSubmitted")
    return {
        "tx_hash": result.tx_hash,
        "block_number": result.block_number,
        "verdict_hash": _hex(bytes(ev["verdictHash"])),
        "dispute_deadline": int(ev["disputeDeadline"]),
    }


def acceptance_typed_data(
    *, chain: ChainContext, settings: Settings, case: CaseRecord, accept: bool, deadline: int | None
) -> dict[str, Any]:
    """EIP-712 ``Acceptance`` of the case's current verdict (``accept=False``: a dispute) for OEM/supplier."""
    case_id = _on_chain(case)
    if case.verdict_hash is None or case.state != "verdict_submitted":
        raise Conflict(f"case {case.case_id} has no verdict awaiting acceptance (state {case.state})", state=case.state)
    acceptance = Acceptance(
        case_id=case_id,
        verdict_hash=b32(case.verdict_hash),
        accept=accept,
        deadline=deadline
        if deadline is not None
        else chain.rpc.latest_timestamp() + settings.cases_signature_validity_s,
        nonce=case.round,
    )
    typed = chain.cases.acceptance_typed_data(acceptance)
    typed["message"] = _jsonable_message(typed["message"])
    return {"typed_data": typed}


def submit_acceptance(
    *, chain: ChainContext, principal: Principal, case: CaseRecord, message: dict[str, Any], signature: str
) -> dict[str, Any]:
    """Relay the caller's signed acceptance (or dispute, ``accept`` false) for their own account."""
    case_id = _on_chain(case)
    try:
        acceptance = Acceptance(
            case_id=b32(str(message["caseId"])),
            verdict_hash=b32(str(message["verdictHash"])),
            accept=bool(message["accept"]),
            deadline=int(message["deadline"]),
            nonce=int(message["nonce"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"not an Acceptance message: {exc}", field="message") from exc
    if acceptance.case_id != case_id:
        raise InvalidRequest(f"the signed acceptance is for case {_hex(acceptance.case_id)}, not {case.case_id}")
    if not principal.account:
        raise InvalidRequest("your party has no on-chain account")
    result = chain.cases.submit_acceptance(acceptance, principal.account, _signature(signature))
    names = [n for n, _ in result.events]
    return {"tx_hash": result.tx_hash, "block_number": result.block_number, "events": names}


def arbitrate(
    *,
    chain: ChainContext,
    case: CaseRecord,
    responsible_party: int,
    nc_class: int,
    root_cause: str,
    ruling: str,
) -> dict[str, Any]:
    """Consortium admin principal, relayed with the arbiter key (ARBITER_ROLE): rule on a disputed case; the
    ruling text is hashed."""
    case_id = _on_chain(case)
    ruling_hash = hashlib.sha256(ruling.encode()).digest()
    client = chain.cases.with_sender(chain.arbiter)
    result = client.arbitrate(case_id, responsible_party, nc_class, _code(root_cause), ruling_hash)
    return {"tx_hash": result.tx_hash, "block_number": result.block_number, "ruling_hash": _hex(ruling_hash)}


def evidence_hash_of(case_id: str, sha256s: list[str]) -> str:
    """Evidence hash of a set of files: SHA-256 of the RFC 8785 form of ``{"case_id", "files": [sorted hex]}``.

    The document holds only ASCII strings, so its RFC 8785 bytes equal the sorted-keys ``json.dumps`` bytes
    hashes were made with before (``HashFormat.LEGACY_JSON``): every stored evidence hash still verifies.
    """
    return "0x" + json_sha256({"case_id": case_id, "files": sorted(sha256s)})


def _prepared(prepared: list[relay.PreparedTx]) -> list[dict[str, Any]]:
    return [{"description": p.description, "tx": p.tx} for p in prepared]


def prepare_response(
    *,
    session: Session,
    chain: ChainContext,
    principal: Principal,
    case: CaseRecord,
    files: list[tuple[str | None, bytes]],
) -> dict[str, Any]:
    """Supplier: store the evidence files and return the unsigned ``respond(caseId, evidenceHash)``."""
    case_id = _on_chain(case)
    if case.state != "opened":
        raise Conflict(f"case {case.case_id} is in state {case.state}; a response is due only while opened")
    if not files:
        raise InvalidRequest("attach at least one evidence file as multipart field 'files'", field="files")
    shas = []
    for _name, data in files:
        sha = hashlib.sha256(data).hexdigest()
        shas.append(sha)
        store_blob(session=session, sha256=sha, data=data)
    evidence = evidence_hash_of(str(case.case_id), shas)
    for (name, data), sha in zip(files, shas, strict=True):
        session.add(
            CaseEvidence(
                case_pk=case.id,
                party_id=principal.party_id,
                evidence_hash=evidence,
                sha256=sha,
                filename=name,
                size=len(data),
            )
        )
    call = chain.cases.contract.functions.respond(case_id, b32(evidence))
    prepared = relay.prepare(chain=chain, principal=principal, calls=[("respond to the case with evidence", call)])
    return {"evidence_hash": evidence, "files": shas, "transactions": _prepared(prepared)}


def prepare_claim(*, chain: ChainContext, principal: Principal, case: CaseRecord) -> dict[str, Any]:
    """OEM: the unsigned ``claim(agreementId)`` of the penalties owed under the case's agreement."""
    call = chain.agreements.contract.functions.claim(b32(case.agreement_id))
    claimable = chain.agreements.balances(b32(case.agreement_id)).claimable
    prepared = relay.prepare(chain=chain, principal=principal, calls=[("claim penalties", call)])
    return {"claimable": str(claimable), "transactions": _prepared(prepared)}


def prepare_lab_fee_claim(*, chain: ChainContext, principal: Principal) -> dict[str, Any]:
    """Lab: the unsigned ``claimLabFee()`` of every fee it earned."""
    if not principal.account:
        raise InvalidRequest("your party has no on-chain account")
    claimable = chain.cases.lab_fee_claimable(principal.account)
    call = chain.cases.contract.functions.claimLabFee()
    prepared = relay.prepare(chain=chain, principal=principal, calls=[("claim lab fees", call)])
    return {"claimable": str(claimable), "transactions": _prepared(prepared)}


# who of a case's parties signs each relayed case transaction
_RELAY_ROLE = {"respond": "supplier", "claim": "oem", "claimLabFee": "lab"}


def submit_relayed(
    *,
    session: Session,
    chain: ChainContext,
    principal: Principal,
    settings: Settings,
    case: CaseRecord,
    raw: str,
    function: str,
) -> list[RelayTransaction]:
    """Check and relay a transaction the caller signed (``function`` is the only one allowed here); for
    ``respond`` the transaction must be about this case. Only the case's party for ``function`` relays it (403).
    Accepted rows: the relay queue awaits the receipt."""
    require_case_role(principal, case, _RELAY_ROLE[function])
    if function == "respond":
        case_id = _on_chain(case)
        try:
            data = bytes(decode_signed(bytes(HexBytes(raw))).get("data", b""))
        except ValueError as exc:
            raise InvalidRequest(f"not a signed Ethereum transaction: {exc}", field="raw") from exc
        if data[4:36] != case_id:
            raise Forbidden(f"the signed respond is not about case {case.case_id}")
    return relay.submit(
        session=session, chain=chain, principal=principal, settings=settings, raws=[raw], allowed={function}
    )
