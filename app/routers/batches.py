"""Batch upload, status, records and proofs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Path, Query, Request, Response, UploadFile, status

from app.auth import require_role
from app.deps import CurrentPrincipal, DbSession, ParseLimits, SettingsDep
from app.errors import PayloadTooLarge
from app.inputs import Limit, Offset, RefPath, safe_filename
from app.schemas import BatchFileDetail, BatchPublic, RecordPublic
from app.services import agreements, proofs
from app.services import batches as service
from app.services.batches import Upload
from app.services.views import batch_file_detail, batch_public
from app.state import ChainDep, OptionalChainDep

router = APIRouter(prefix="/v1/batches", tags=["batches"])

_AGREEMENT_REF = r"^(0x[0-9a-fA-F]{64}|[0-9]{1,10})$"
Sha256Path = Annotated[str, Path(pattern=r"^(0x)?[0-9a-fA-F]{64}$", description="SHA-256 of the file (hex)")]

_CHUNK = 1024 * 1024


def read_limited(files: list[UploadFile], request: Request, max_bytes: int) -> list[Upload]:
    """Read uploaded files, refusing (413) as soon as their total size passes ``max_bytes``.

    Synchronous on purpose: routes using it are plain ``def`` so parsing runs in the worker thread pool,
    never on the event loop (pyHanko and the parsers are CPU-bound and partly run their own event loops).
    """
    _check_declared_size(request, max_bytes)
    total = 0
    out = []
    for f in files:
        chunks = []
        for chunk in _chunks(f, max_bytes, total):
            total += len(chunk)
            chunks.append(chunk)
        out.append(Upload(filename=safe_filename(f.filename), data=b"".join(chunks)))
    return out


def sha256_limited(file: UploadFile, request: Request, max_bytes: int) -> str:
    """SHA-256 (hex) of an uploaded file, read in chunks and never held whole in memory; 413 past ``max_bytes``."""
    _check_declared_size(request, max_bytes)
    digest = hashlib.sha256()
    for chunk in _chunks(file, max_bytes, 0):
        digest.update(chunk)
    return digest.hexdigest()


def _check_declared_size(request: Request, max_bytes: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise PayloadTooLarge(
            f"upload of {int(declared)} bytes exceeds the limit of {max_bytes} bytes",
            limit="max_upload_bytes",
            allowed=max_bytes,
        )


def _chunks(file: UploadFile, max_bytes: int, before: int) -> Iterator[bytes]:
    """The file's bytes in chunks; 413 once they and the ``before`` bytes of earlier files pass ``max_bytes``."""
    total = before
    while chunk := file.file.read(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLarge(
                f"upload exceeds the limit of {max_bytes} bytes", limit="max_upload_bytes", allowed=max_bytes
            )
        yield chunk


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BatchPublic)
def upload_batch(
    request: Request,
    response: Response,
    files: list[UploadFile],
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    limits: ParseLimits,
    chain: OptionalChainDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200, pattern=r"^[\x20-\x7e]+$")] = None,
    agreement_id: Annotated[
        str | None, Form(max_length=66, pattern=_AGREEMENT_REF, description="deliver under this agreement (0x id)")
    ] = None,
    lot_size: Annotated[
        int | None, Form(gt=0, le=2**31 - 1, description="lot size, for the ISO 2859-1 sampling plan")
    ] = None,
) -> BatchPublic:
    """Upload one batch: a measurement file (CSV/JSON/...) plus optional lab reports, as multipart ``files``.

    The batch is stored and queued for anchoring in one transaction; poll ``GET /v1/batches/{id}`` for the
    receipt. Repeating an upload (same ``Idempotency-Key`` or same content) returns the same batch with 200.
    """
    require_role(principal, "supplier")
    uploads = read_limited(files, request, settings.max_upload_bytes)
    supplier = service.supplier_party(session=session, principal=principal)
    agreement = None
    if agreement_id:
        record, template = agreements.template_for_batch(
            session=session, supplier=supplier, agreement_ref=agreement_id, chain=chain
        )
        agreement = (record.agreement_id, template)
    batch, created = service.create_batch(
        session=session,
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
    if not created:
        response.status_code = status.HTTP_200_OK
    return batch_public(session=session, batch=batch, chain=chain, created=created, just_stored=created)


@router.get("", response_model=list[BatchPublic])
def list_batches(
    principal: CurrentPrincipal,
    session: DbSession,
    chain: OptionalChainDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[BatchPublic]:
    """Batches the caller may see, newest first (suppliers: their own)."""
    batches = service.list_batches(session=session, principal=principal, limit=limit, offset=offset)
    return [batch_public(session=session, batch=b, chain=chain) for b in batches]


@router.get("/{batch_ref}", response_model=BatchPublic)
def get_batch(
    batch_ref: RefPath, principal: CurrentPrincipal, session: DbSession, chain: OptionalChainDep
) -> BatchPublic:
    """One batch (by uuid or on-chain 0x id) with its anchor status and receipt."""
    batch = service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    return batch_public(session=session, batch=batch, chain=chain)


@router.get("/{batch_ref}/records", response_model=list[RecordPublic])
def list_records(
    batch_ref: RefPath,
    principal: CurrentPrincipal,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Offset = 0,
) -> list[RecordPublic]:
    batch = service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    rows = service.list_records(session=session, batch=batch, limit=limit, offset=offset)
    return [RecordPublic(index=r.idx, record=service.record_json(r), leaf_hash=r.leaf_hash) for r in rows]


@router.get("/{batch_ref}/records/{index}/proof")
def record_proof(
    batch_ref: RefPath,
    index: Annotated[int, Path(ge=0, le=2**31 - 1)],
    principal: CurrentPrincipal,
    session: DbSession,
    chain: ChainDep,
) -> dict[str, Any]:
    """Portable proof (qcn-proof v1) for one record; verify it with ``qcn verify PROOF.json``."""
    batch = service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    return proofs.record_proof(session=session, batch=batch, index=index, chain=chain)


@router.get("/{batch_ref}/files/{sha256}", response_model=BatchFileDetail)
def get_file(
    batch_ref: RefPath, sha256: Sha256Path, principal: CurrentPrincipal, session: DbSession
) -> BatchFileDetail:
    """A file of the batch: for lab reports the normalised report with every field's provenance and the
    signature verdict (valid / untrusted / expired-at-signing / unsigned / malformed; a tampered or revoked
    signature refuses the batch with 422)."""
    batch = service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    return batch_file_detail(batch=batch, sha256=sha256)


@router.get("/{batch_ref}/files/{sha256}/proof")
def file_proof(
    batch_ref: RefPath, sha256: Sha256Path, principal: CurrentPrincipal, session: DbSession, chain: ChainDep
) -> dict[str, Any]:
    """Portable proof for an uploaded file of the batch, addressed by its SHA-256."""
    batch = service.get_batch(session=session, principal=principal, batch_ref=batch_ref)
    return proofs.file_proof(session=session, batch=batch, sha256=sha256, chain=chain)
