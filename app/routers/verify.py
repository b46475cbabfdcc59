"""Verification anyone can run: a proof document, or a file against a batch. No API key needed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Query, Request, UploadFile

from app.deps import DbSession, SettingsDep
from app.routers.batches import sha256_limited
from app.schemas import VerificationPublic
from app.services import proofs
from app.state import ChainDep

router = APIRouter(prefix="/v1/verify", tags=["verify"])

_BATCH_ID = r"^0x[0-9a-fA-F]{64}$"


@router.post("/proof", response_model=VerificationPublic)
def verify_proof(proof: Annotated[dict[str, Any], Body()], chain: ChainDep) -> VerificationPublic:
    """Check a qcn-proof document against the chain (the same checks as ``qcn verify``)."""
    return proofs.verify_document(proof=proof, chain=chain)


@router.post("/file", response_model=VerificationPublic)
def verify_file(
    request: Request,
    file: UploadFile,
    batch_id: Annotated[
        str, Form(pattern=_BATCH_ID, description="on-chain batch id (0x...) the file was uploaded with")
    ],
    session: DbSession,
    settings: SettingsDep,
    chain: ChainDep,
) -> VerificationPublic:
    """Is this exact file part of that anchored batch? Hashes the bytes and checks its leaf against the chain."""
    sha256 = sha256_limited(file, request, settings.max_upload_bytes)
    return proofs.verify_uploaded_file(session=session, batch_ref=batch_id, sha256=sha256, chain=chain)


@router.get("/file-proof")
def public_file_proof(
    batch_id: Annotated[str, Query(pattern=_BATCH_ID, description="on-chain batch id (0x...)")],
    sha256: Annotated[str, Query(pattern=r"^(0x)?[0-9a-fA-F]{64}$", description="SHA-256 of the file you hold")],
    session: DbSession,
    chain: ChainDep,
) -> dict[str, Any]:
    """The proof for a file you hold: knowing its SHA-256 is the capability; nothing else of the batch is disclosed."""
    return proofs.public_file_proof(session=session, batch_ref=batch_id, sha256=sha256, chain=chain)
