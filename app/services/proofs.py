"""Portable proofs (qcn-proof v1) for records and files of anchored batches, and their verification.

A proof is built from what the database holds (salts, digests, the anchored header) and is checked by
anyone against the chain alone; the gateway's own verify endpoints run the same checks as ``qcn verify``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.chainctx import ChainContext, b32
from app.db import Batch, BatchFile
from app.errors import Conflict, NotFound
from app.schemas import VerificationPublic
from app.services.batches import list_records, record_leaves
from chain.merkle import MerkleTree
from chain.proof import BatchHeader, ProofDocument, VerificationResult, make_proof, verify_proof

__all__ = [
    "batch_header",
    "batch_tree",
    "file_proof",
    "public_file_proof",
    "record_proof",
    "verify_document",
    "verify_uploaded_file",
]


def batch_header(batch: Batch) -> BatchHeader:
    """The header exactly as anchored (requires an anchored batch)."""
    if batch.status != "anchored" or batch.anchored_at is None:
        raise Conflict(
            f"batch {batch.batch_id} is not anchored yet (status {batch.status}); retry shortly", status=batch.status
        )
    return BatchHeader(
        root=b32(batch.root),
        report_hash=b32(batch.report_hash),
        agreement_id=b32(batch.agreement_id),
        supplier=str(batch.supplier.account),
        record_count=batch.leaf_count,
        verdict=batch.verdict,
        anchored_at=batch.anchored_at,
        supersedes=b32(batch.supersedes),
    )


def batch_tree(*, session: Session, batch: Batch) -> MerkleTree:
    """Rebuild the batch's tree from the stored salts and digests (records first, then files)."""
    values = record_leaves(session=session, batch=batch)
    leaves = [(values[i : i + 32], values[i + 32 : i + 64]) for i in range(0, len(values), 64)]
    for f in session.scalars(select(BatchFile).where(BatchFile.batch_pk == batch.id).order_by(BatchFile.id)):
        leaves.append((bytes.fromhex(f.salt[2:]), bytes.fromhex(f.sha256)))
    tree = MerkleTree.build(leaves)
    if "0x" + tree.root.hex() != batch.root:
        raise Conflict(f"stored leaves of batch {batch.batch_id} do not rebuild its root; the database is damaged")
    return tree


def _proof(
    *, session: Session, batch: Batch, index: int, chain: ChainContext, record: dict[str, Any] | None, kind: str
) -> dict[str, Any]:
    header = batch_header(batch)
    doc = make_proof(
        tree=batch_tree(session=session, batch=batch),
        index=index,
        chain_id=chain.chain_id,
        registry=chain.anchor_registry_address,
        batch_id=bytes.fromhex(batch.batch_id[2:]),
        header=header,
        record=record,
        kind="record" if kind == "record" else "file",
        tx_hash=bytes.fromhex(batch.tx_hash[2:]) if batch.tx_hash else None,
        block_number=batch.block_number,
    )
    out: dict[str, Any] = json.loads(doc.to_json(indent=None))
    return out


def record_proof(*, session: Session, batch: Batch, index: int, chain: ChainContext) -> dict[str, Any]:
    """Proof for record ``index`` of the batch, disclosing that record (and no other)."""
    rows = list_records(session=session, batch=batch, limit=1, offset=index)
    row = rows[0] if rows else None
    if row is None:
        raise NotFound(f"batch {batch.batch_id} has no record {index} (it has {batch.record_count})")
    return _proof(session=session, batch=batch, index=index, chain=chain, record=json.loads(row.data), kind="record")


def file_proof(*, session: Session, batch: Batch, sha256: str, chain: ChainContext) -> dict[str, Any]:
    """Proof for an uploaded file of the batch by its SHA-256 (hex, with or without 0x)."""
    sha = sha256.lower().removeprefix("0x")
    files = list(session.scalars(select(BatchFile).where(BatchFile.batch_pk == batch.id).order_by(BatchFile.id)))
    for j, f in enumerate(files):
        if f.sha256 == sha:
            return _proof(
                session=session, batch=batch, index=batch.record_count + j, chain=chain, record=None, kind="file"
            )
    raise NotFound(f"no file with sha256 {sha} in batch {batch.batch_id}")


def to_public(result: VerificationResult) -> VerificationPublic:
    from datetime import datetime

    return VerificationPublic(
        ok=result.ok,
        checks=list(result.checks_passed),
        failure=None if result.ok else f"{result.failure}: {result.message}",
        batch_id=result.batch_id,
        supplier=result.supplier,
        anchored_at=datetime.fromisoformat(result.anchored_at.replace("Z", "+00:00")) if result.anchored_at else None,
        tx_hash=result.tx_hash,
        block_number=result.block_number,
    )


def verify_document(*, proof: dict[str, Any], chain: ChainContext) -> VerificationPublic:
    """Run the portable-proof checks against this gateway's chain."""
    return to_public(
        verify_proof(
            proof,
            chain.fetch_commitment,
            expected_chain_id=chain.chain_id,
            expected_registry=chain.anchor_registry_address,
        )
    )


def _batch_by_chain_id(session: Session, batch_ref: str) -> Batch:
    batch = session.scalars(select(Batch).where(Batch.batch_id == batch_ref.lower())).first()
    if batch is None:
        raise NotFound(f"batch {batch_ref} not found")
    return batch


def public_file_proof(*, session: Session, batch_ref: str, sha256: str, chain: ChainContext) -> dict[str, Any]:
    """File proof for anyone who holds the file (its hash is the capability)."""
    return file_proof(session=session, batch=_batch_by_chain_id(session, batch_ref), sha256=sha256, chain=chain)


def verify_uploaded_file(*, session: Session, batch_ref: str, sha256: str, chain: ChainContext) -> VerificationPublic:
    """Is the file with this SHA-256 (hex) byte-for-byte a file of the anchored batch ``batch_ref``?"""
    batch = _batch_by_chain_id(session, batch_ref)
    sha = sha256
    known = session.scalars(select(BatchFile).where(BatchFile.batch_pk == batch.id, BatchFile.sha256 == sha)).first()
    if known is None:
        return VerificationPublic(
            ok=False,
            checks=[],
            batch_id=batch.batch_id,
            failure=f"file_digest_mismatch: sha256 {sha} is not a file of batch {batch.batch_id}",
        )
    proof = ProofDocument.from_json(file_proof(session=session, batch=batch, sha256=sha, chain=chain))
    return to_public(verify_proof(proof, chain.fetch_commitment, file_sha256=bytes.fromhex(sha)))
