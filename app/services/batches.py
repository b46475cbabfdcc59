"""Batch uploads: parse, canonicalise, salt, build the Merkle tree and store everything in one transaction.

The batch, its records, the raw files and the anchoring outbox row are written together; if anything fails
nothing is stored. The chain is never called here: the anchoring worker picks the outbox row up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.auth import Principal
from app.db import RECORDS_PER_CHUNK, Batch, BatchFile, Blob, OutboxItem, Party, RecordChunk, upsert
from app.errors import Conflict, InvalidRequest, NotFound
from app.policy import batch_scope
from app.quality import AssessmentInputError, Template, assess_inspection
from chain.canonical import canonical_bytes, number_text, string_text
from chain.clients import supplier_batch_id
from chain.merkle import leaf_hash, tree_from_texts
from parsers import detect_format, parse
from parsers.errors import EmptyInput, ParseError
from parsers.guarded import parse_guarded, verify_signature_guarded
from parsers.limits import Limits
from parsers.model import InspectionBatch, Measurement, ParsedFile

if TYPE_CHECKING:  # cryptography and the report model load with the first signed lab report
    from app.parse_slots import ParseSlots
    from parsers.signatures import TrustStore

__all__ = [
    "ZERO32",
    "StoredRecord",
    "Upload",
    "batch_id_for",
    "create_batch",
    "get_batch",
    "list_batches",
    "list_records",
    "measurement_texts",
    "outbox_attempts",
    "record_json",
    "record_leaves",
    "store_blob",
]

ZERO32 = "0x" + "00" * 32
_MAX_ID_TEXT = 100  # batches.lot_id / part_number are VARCHAR(100)
# observations.sample_id / variable are VARCHAR(200), unit VARCHAR(32): longer text is a 422, not a 500
_OBSERVATION_TEXT = (("sample_id", 200), ("characteristic", 200), ("unit", 32))
_PROCESS_TEXT = (("sample_id", 200), ("variable", 200), ("unit", 32))


def _check_observation_text(inspection: InspectionBatch) -> None:
    """Refuse identifiers that do not fit the observation columns (or hold a NUL, which PostgreSQL text cannot
    store), naming the field, the value's length and the allowed length."""
    for what, items, fields in (
        ("measurement", inspection.measurements, _OBSERVATION_TEXT),
        ("process value", inspection.process, _PROCESS_TEXT),
    ):
        for name, allowed in fields:
            values = list(map(attrgetter(name), items))  # a loop in C: 1,000s of rows per upload
            if None in values:
                values = [v or "" for v in values]
            longest = max(map(len, values), default=0)
            if longest > allowed:
                i = next(i for i, v in enumerate(values) if len(v) == longest)
                raise InvalidRequest(
                    f"{what} {i + 1}: {name} of {longest} characters is longer than the {allowed} characters stored",
                    field=name,
                    allowed=allowed,
                    actual=longest,
                )
            if "\x00" in "".join(values):
                raise InvalidRequest(f"a {what}'s {name} contains a NUL character", field=name)


@dataclass(frozen=True)
class Upload:
    """One uploaded file as received."""

    filename: str | None
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def label(self) -> str:
        """How messages name the file: its name, else the start of its hash."""
        return self.filename or self.sha256[:12]


def batch_id_for(supplier_account: str, idempotency_key: str) -> str:
    """The on-chain batch id: the supplier's address, then 12 bytes of keccak256(key)
    (:func:`chain.clients.supplier_batch_id`), so a retried upload maps to one id and no other party can anchor
    it first."""
    return "0x" + supplier_batch_id(supplier_account, idempotency_key).hex()


def _content_hash(uploads: list[Upload]) -> str:
    return hashlib.sha256("".join(sorted(u.sha256 for u in uploads)).encode()).hexdigest()


def _report_hash(reports: list[Upload]) -> str:
    if not reports:
        return ZERO32
    if len(reports) == 1:
        return "0x" + reports[0].sha256
    return (
        "0x"
        + hashlib.sha256(b"".join(bytes.fromhex(r.sha256) for r in sorted(reports, key=lambda u: u.sha256))).hexdigest()
    )


# Line-based text formats whose parsers are plain Python loops over rows: they check the time limit between
# rows, recurse nowhere and allocate in proportion to the input, so a small file of theirs parses in the
# request's own process. Everything else (PDF/OCR, DCC and QIF XML, XLSX zip archives, JSON, whose decoder
# recurses in C under the raised recursion limit of the web3 stack) and any large file keeps the child
# process of parsers.guarded with its memory cap and kill-on-timeout.
_INLINE_FORMATS = frozenset({"csv", "aqdef"})
_Slot = Callable[[str], AbstractContextManager[None]] | None


def _parse_all(
    uploads: list[Upload], limits: Limits, isolated: bool, inline_max_bytes: int = 0, slot: _Slot = None
) -> list[ParsedFile]:
    """Parse every file; ``isolated`` runs each in a child process bounded by the memory/time limits, except
    CSV/AQDEF files of at most ``inline_max_bytes`` (a child costs a fork and about half a core-second per file).
    A child runs in a ``slot`` (a bounded number per gateway process and per party)."""
    out = []
    for upload in uploads:
        guarded = isolated and not (
            len(upload.data) <= inline_max_bytes and detect_format(upload.data, upload.filename) in _INLINE_FORMATS
        )
        if not guarded:
            out.append(parse(upload.data, filename=upload.filename, limits=limits))
            continue
        with slot(upload.filename or "an uploaded file") if slot else contextlib.nullcontext():
            out.append(parse_guarded(upload.data, filename=upload.filename, limits=limits))
    return out


def _lab_trust(session: Session, trust_dir: Path | None) -> tuple[TrustStore, dict[str, str]]:
    """Trust for lab-report signatures: the consortium's trust dir (``QCN_TRUST_DIR``) plus the certificates of
    registered labs (pinned as anchors), and fingerprint -> lab (party id) to attribute a signature to its lab."""
    from parsers.signatures import TrustStore, load_trust_dir

    labs = session.scalars(select(Party).where(Party.kind == "lab", Party.certificate_pem.is_not(None))).all()
    store = TrustStore.of([str(lab.certificate_pem).encode() for lab in labs])
    if trust_dir is not None:
        store = load_trust_dir(trust_dir).merged(store)
    return store, {str(lab.certificate_sha256): str(lab.id) for lab in labs}


# A verifier refuses these outright: the content is not what was signed, or the signer's key was withdrawn.
_REFUSED_VERDICTS = ("tampered", "revoked")


def _check_signature(
    upload: Upload, parsed: ParsedFile, trust: tuple[TrustStore, dict[str, str]], limits: Limits, isolated: bool
) -> None:
    """Judge a lab report's digital signature; refuse a tampered or revoked one (nothing is stored). ``isolated``:
    in a child process with the parse's memory and time limits, as the file's parse was."""
    from parsers.signatures import attach_signature, verify_report_signature

    store, signers = trust
    if parsed.report is None or parsed.format not in ("pdf", "dcc"):
        return
    check = verify_signature_guarded if isolated else verify_report_signature
    try:
        info = check(upload.data, parsed.format, trust=store, trusted_signers=signers, limits=limits)
    except ParseError as exc:  # e.g. the check's memory limit: say which of the files it was
        exc.location = exc.location or upload.label
        raise
    if info.verdict in _REFUSED_VERDICTS:
        raise InvalidRequest(
            f"lab report {upload.label!r} has a {info.verdict} signature: {info.reason}",
            field="files",
            file=upload.filename,
            signature_verdict=info.verdict,
        )
    parsed.report = attach_signature(parsed.report, info)


def _review_reason(reports: list[tuple[Upload, ParsedFile]]) -> str | None:
    """One line per reason a lab report needs a person (an empty or unsure extraction is not trusted silently)."""
    lines: list[str] = []
    for u, p in reports:
        if p.report is None:
            continue
        reasons = list(p.report.review.reasons)
        if not p.report.results and not any("no result rows" in r for r in reasons):
            reasons.append("no result rows were found in the report")
        lines += [f"{u.label}: {reason}" for reason in reasons]
    return "\n".join(lines) or None


def _same_terms(existing: Batch, key: str, agreement_id: str, lot_size: int | None) -> None:
    """A repeated upload must not silently drop what it adds: the same files under another agreement or lot size
    are a :class:`Conflict` (a new delivery needs its own Idempotency-Key), never the old batch with a 200."""
    differences = []
    if existing.agreement_id.lower() != agreement_id.lower():
        differences.append(f"agreement {existing.agreement_id} (this request: {agreement_id})")
    if lot_size is not None and existing.lot_size != lot_size:
        differences.append(f"lot size {existing.lot_size} (this request: {lot_size})")
    if differences:
        raise Conflict(
            f"batch {existing.id} already holds these files (idempotency key {key!r}) with "
            + " and ".join(differences)
            + "; to record another delivery of the same files send a new Idempotency-Key",
            batch=existing.id,
        )


def create_batch(
    *,
    session: Session,
    supplier: Party,
    uploads: list[Upload],
    idempotency_key: str | None,
    limits: Limits,
    isolated: bool = False,
    inline_max_bytes: int = 0,
    agreement: tuple[str, Template] | None = None,
    lot_size: int | None = None,
    trust_dir: Path | None = None,
    slots: ParseSlots | None = None,
) -> tuple[Batch, bool]:
    """Store a new batch (or return the identical earlier one). Returns ``(batch, created)``.

    Under an ``agreement`` (its on-chain id and template) the batch is assessed against the template: per
    record verdicts, sample size by the ISO 2859-1 plan for ``lot_size``, accept/reject by the AQL numbers; the
    verdict is anchored with the batch and counted on chain in that agreement's quarter.

    ``slots``: the gateway's :class:`~app.parse_slots.ParseSlots`; child-process parses and signature checks each
    take one of the supplier's (503 when none frees up in time, before anything is stored).

    Exactly one inspection file (measurements) is required; lab reports are optional and become leaves too.
    Reusing an idempotency key with different content is a :class:`Conflict`.
    """
    if not uploads:
        raise InvalidRequest("no file uploaded: send the measurement file as multipart field 'files'")
    if supplier.account is None:
        raise InvalidRequest("the supplier has no on-chain account registered")
    content = _content_hash(uploads)
    key = idempotency_key or f"sha256:{content}"
    existing = session.scalars(
        select(Batch).where(Batch.supplier_id == supplier.id, Batch.idempotency_key == key)
    ).first()
    if existing is not None:
        if existing.content_sha256 != content:
            raise Conflict(
                f"idempotency key {key!r} was already used for different content (batch {existing.id})",
                batch=existing.id,
            )
        _same_terms(existing, key, agreement[0] if agreement else ZERO32, lot_size)
        return existing, False

    # nothing is written yet: end the read transaction so its pooled connection is not held while files parse
    # (up to parse_max_seconds) or wait for a parser slot; a concurrent twin that commits first meanwhile is
    # caught by the unique key below
    session.commit()
    slot = (lambda what: slots.hold(supplier.id, what)) if slots is not None else None
    parsed = _parse_all(uploads, limits, isolated, inline_max_bytes, slot)
    tabular = [(u, p) for u, p in zip(uploads, parsed, strict=True) if p.kind == "inspection"]
    reports = [(u, p) for u, p in zip(uploads, parsed, strict=True) if p.kind == "report"]
    # process-data files (process values, no measurements) ride along with the one measurement file
    process_files = [
        (u, p)
        for u, p in tabular
        if p.inspection is not None and not p.inspection.measurements and p.inspection.process
    ]
    process_ids = {id(u) for u, _ in process_files}
    inspections = [(u, p) for u, p in tabular if id(u) not in process_ids] or tabular[:1]
    if len(inspections) != 1:
        raise InvalidRequest(
            f"a batch needs exactly one measurement file (CSV, JSON, XLSX, QIF or AQDEF); got {len(inspections)}",
            files=[u.filename for u, _ in inspections],
        )
    inspection = inspections[0][1].inspection
    assert inspection is not None
    if process_files and id(inspections[0][0]) not in process_ids:
        extra = [pv for _, p in process_files if p.inspection is not None for pv in p.inspection.process]
        inspection = inspection.model_copy(update={"process": [*inspection.process, *extra]})
        inspections = [*inspections, *process_files]
    for name, value in (("lot_id", inspection.lot_id), ("part_number", inspection.part_number)):
        if value is not None and len(value) > _MAX_ID_TEXT:
            raise InvalidRequest(
                f"{name} of {len(value)} characters is longer than the {_MAX_ID_TEXT} characters stored",
                field=name,
                allowed=_MAX_ID_TEXT,
            )
        if value is not None and "\x00" in value:
            raise InvalidRequest(f"{name} contains a NUL character", field=name)
    _check_observation_text(inspection)
    if not inspection.measurements:
        raise EmptyInput("the measurement file has no measurements", location=inspections[0][0].filename)

    if reports:
        trust = _lab_trust(session, trust_dir)
        for upload, report in reports:
            with slot(f"the signature of {upload.filename or 'a lab report'}") if slot else contextlib.nullcontext():
                _check_signature(upload, report, trust, limits, isolated)

    assessment = None
    verdict = 0
    if agreement is not None:
        try:
            assessment = assess_inspection(agreement[1], inspection, lot_size=lot_size)
        except AssessmentInputError as exc:
            raise InvalidRequest(f"cannot assess the batch against the agreement: {exc}", field=exc.field) from exc
        verdict = 1 if assessment.verdict == "accept" else 2

    batch_id = batch_id_for(supplier.account, key)
    texts = measurement_texts(batch_id, inspection.measurements)
    # each lab report is anchored twice: the exact file (by SHA-256) and its parsed content (canonical JSON)
    report_idx: dict[str, int] = {}
    for upload, report in reports:
        report_idx[upload.sha256] = len(texts)
        record = {
            "batch": batch_id,
            "kind": "lab_report",
            "file_sha256": upload.sha256,
            "report": report.report.to_public_dict() if report.report is not None else {},
        }
        texts.append(canonical_bytes(record))
    files = [*inspections, *reports]
    tree = tree_from_texts(texts, files=[u.data for u, _ in files])
    file_rows = [(u, p, tree.leaf(len(texts) + j)) for j, (u, p) in enumerate(files)]

    batch = Batch(
        id=str(uuid.uuid4()),
        batch_id=batch_id,
        supplier_id=supplier.id,
        idempotency_key=key,
        content_sha256=content,
        part_number=inspection.part_number,
        lot_id=inspection.lot_id,
        record_count=len(texts),
        leaf_count=len(tree),
        root="0x" + tree.root.hex(),
        report_hash=_report_hash([u for u, _ in reports]),
        agreement_id=agreement[0] if agreement else ZERO32,
        verdict=verdict,
        lot_size=assessment.lot_size if assessment else lot_size,
        assessment=assessment.model_dump_json() if assessment else None,
        supersedes=ZERO32,
        status="pending",
        review_reason=_review_reason(reports),
    )
    session.add(batch)
    try:
        session.flush()
    except IntegrityError as exc:
        # a concurrent upload with the same key committed first (PostgreSQL waits on the unique index, SQLite
        # on its write lock): answer like a repeated upload instead of failing
        session.rollback()
        return _existing_after_race(session=session, supplier_id=supplier.id, key=key, content=content, exc=exc)
    stored_files = []
    for upload, p, leaf in file_rows:
        store_blob(session=session, sha256=upload.sha256, data=upload.data)
        parsed_json = p.report.model_dump_json() if p.report is not None else None
        stored_files.append(
            BatchFile(
                batch_pk=batch.id,
                sha256=upload.sha256,
                filename=upload.filename,
                format=p.format,
                kind=p.kind,
                size=len(upload.data),
                salt="0x" + leaf.salt.hex(),
                leaf_hash="0x" + leaf.hash.hex(),  # one per file: hashing it again costs nothing
                parsed_json=parsed_json,
                report_record_idx=report_idx.get(upload.sha256),
                signature_verdict=p.report.signature.verdict if p.report is not None else None,
            )
        )
    session.add_all(stored_files)
    set_committed_value(batch, "files", stored_files)  # what the response lists: known, not read back
    for start in range(0, len(texts), RECORDS_PER_CHUNK):
        chunk_texts = texts[start : start + RECORDS_PER_CHUNK]
        session.add(
            RecordChunk(
                batch_pk=batch.id,
                first=start,
                count=len(chunk_texts),
                data=b"\n".join(chunk_texts).decode(),
                leaves=tree.packed_leaves(start, start + len(chunk_texts)),
            )
        )
    session.add(OutboxItem(kind="anchor", batch_pk=batch.id))
    from app.services import analysis  # the analysis stack loads when a batch first needs it

    analysis.on_batch_stored(session=session, batch=batch, inspection=inspection)
    session.flush()
    return batch, True


def measurement_texts(batch_id: str, measurements: Sequence[Measurement]) -> list[bytes]:
    """The RFC 8785 bytes of each measurement's record under ``batch_id``: exactly
    ``canonical_bytes({"batch": batch_id, **m.record()})``, written straight from the fields (no dict per record:
    a third of an upload's hashing cost). The text around the sample and the value repeats from record to
    record (same characteristic and coverage factor, same uncertainty and unit): each variant is written once.
    A record with anything unusual takes the reference path."""
    head = '{"batch":' + string_text(batch_id) + ',"characteristic":'
    out: list[bytes] = []
    fronts: dict[tuple[str, float | None], str] = {}  # up to "measured_at":
    backs: dict[tuple[float | None, str], str] = {}  # from ,"uncertainty": up to "value":
    for m in measurements:
        value, u, k, at = m.value, m.uncertainty, m.coverage_factor, m.measured_at
        if type(value) is not float or not (u is None or type(u) is float) or not (k is None or type(k) is float):
            out.append(canonical_bytes({"batch": batch_id, **m.record()}))
            continue
        # 0.0 and -0.0 are one key: both are written "0"
        front = fronts.get((m.characteristic, k))
        if front is None:
            front = fronts[(m.characteristic, k)] = (
                head
                + string_text(m.characteristic)
                + ',"coverage_factor":'
                + ("null" if k is None else number_text(k))
                + ',"measured_at":'
            )
        back = backs.get((u, m.unit))
        if back is None:
            back = backs[(u, m.unit)] = (
                ',"uncertainty":' + ("null" if u is None else number_text(u)) + ',"unit":' + string_text(m.unit)
            ) + ',"value":'
        text = (
            front
            + ("null" if at is None else string_text(at.isoformat()))
            + ',"sample":'
            + string_text(m.sample_id)
            + back
            + number_text(value)
            + "}"
        )
        try:
            out.append(text.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate: the reference path names the problem
            out.append(canonical_bytes({"batch": batch_id, **m.record()}))
    return out


def _existing_after_race(
    *, session: Session, supplier_id: int, key: str, content: str, exc: Exception
) -> tuple[Batch, bool]:
    existing = session.scalars(
        select(Batch).where(Batch.supplier_id == supplier_id, Batch.idempotency_key == key)
    ).first()
    if existing is None:
        raise Conflict("a concurrent upload of the same batch is in progress: retry the request") from exc
    if existing.content_sha256 != content:
        raise Conflict(
            f"idempotency key {key!r} was already used for different content (batch {existing.id})",
            batch=existing.id,
        ) from exc
    return existing, False


def store_blob(*, session: Session, sha256: str, data: bytes) -> None:
    """Insert a file's bytes unless a blob with that SHA-256 exists (also when another request races us)."""
    values = {"sha256": sha256, "size": len(data), "data": data}
    session.execute(upsert(session, Blob).values(**values).on_conflict_do_nothing(index_elements=["sha256"]))


def get_batch(*, session: Session, principal: Principal, batch_ref: str) -> Batch:
    """A batch by its uuid or on-chain id, if the caller may see it (others get 404, not 403)."""
    column = Batch.batch_id if batch_ref.startswith("0x") else Batch.id
    batch = session.scalars(select(Batch).where(batch_scope(principal), column == batch_ref.lower())).first()
    if batch is None:
        raise NotFound(f"batch {batch_ref} not found")
    return batch


def list_batches(*, session: Session, principal: Principal, limit: int = 100, offset: int = 0) -> list[Batch]:
    q = select(Batch).where(batch_scope(principal)).order_by(Batch.created_at.desc()).limit(limit).offset(offset)
    return list(session.scalars(q))


@dataclass(frozen=True)
class StoredRecord:
    """One canonical record of a batch as stored: its index, RFC 8785 text and leaf value."""

    idx: int
    data: str
    salt: bytes
    digest: bytes

    @property
    def leaf_hash(self) -> str:
        return "0x" + leaf_hash(self.salt, self.digest).hex()


def list_records(*, session: Session, batch: Batch, limit: int, offset: int) -> list[StoredRecord]:
    """Records ``offset`` to ``offset + limit`` of the batch (fewer at its end), reading only their chunks."""
    stop = min(offset + limit, batch.record_count)
    if offset >= stop:
        return []
    q = (
        select(RecordChunk)
        .where(
            RecordChunk.batch_pk == batch.id,
            RecordChunk.first < stop,
            RecordChunk.first + RecordChunk.count > offset,
        )
        .order_by(RecordChunk.first)
    )
    out: list[StoredRecord] = []
    for chunk in session.scalars(q):
        first = chunk.first
        lo, hi = max(offset, first) - first, min(stop, first + chunk.count) - first
        lines = chunk.data.split("\n")
        for i in range(lo, hi):
            value = chunk.leaves[64 * i : 64 * i + 64]
            out.append(StoredRecord(first + i, lines[i], value[:32], value[32:]))
    return out


def record_leaves(*, session: Session, batch: Batch) -> bytes:
    """The ``salt || digest`` values of every record of the batch, in leaf order (64 bytes each)."""
    q = select(RecordChunk.leaves).where(RecordChunk.batch_pk == batch.id).order_by(RecordChunk.first)
    return b"".join(session.scalars(q))


def outbox_attempts(*, session: Session, batch: Batch) -> tuple[int, str | None]:
    """How often anchoring was tried and the last error, for the batch status."""
    item = session.scalars(
        select(OutboxItem).where(OutboxItem.batch_pk == batch.id).order_by(OutboxItem.id.desc())
    ).first()
    return (item.attempts, item.last_error) if item is not None else (0, None)


def record_json(record: StoredRecord) -> dict[str, Any]:
    return dict(json.loads(record.data))


def supplier_party(*, session: Session, principal: Principal) -> Party:
    """The calling supplier's party row (a supplier uploads only as itself)."""
    party = session.get(Party, principal.party_id)
    if party is None or party.kind != "supplier":
        raise NotFound("supplier party not found")
    return party
