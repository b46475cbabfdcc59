"""Shaping table rows into API schemas (kept out of the routers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.chainctx import ChainContext
from app.db import AgreementRecord, Batch, BatchFile
from app.errors import NotFound
from app.schemas import (
    AgreementPublic,
    AnchorReceiptPublic,
    BatchFileDetail,
    BatchFilePublic,
    BatchPublic,
    TemplatePublic,
)
from app.services.batches import outbox_attempts

__all__ = ["agreement_public", "batch_file_detail", "batch_public", "file_public"]


def file_public(f: BatchFile) -> BatchFilePublic:
    return BatchFilePublic(
        sha256=f.sha256,
        filename=f.filename,
        format=f.format,
        kind=f.kind,
        size=f.size,
        signature_verdict=f.signature_verdict,
    )


def batch_file_detail(*, batch: Batch, sha256: str) -> BatchFileDetail:
    """A file of the batch with its parsed report (provenance included) and verification state."""
    sha = sha256.lower().removeprefix("0x")
    for f in batch.files:
        if f.sha256 == sha:
            return BatchFileDetail(
                **file_public(f).model_dump(),
                batch_id=batch.batch_id,
                anchored=batch.status == "anchored",
                report=json.loads(f.parsed_json) if f.parsed_json else None,
                report_record_index=f.report_record_idx,
            )
    raise NotFound(f"no file with sha256 {sha} in batch {batch.batch_id}")


def batch_public(
    *, session: Session, batch: Batch, chain: ChainContext | None, created: bool = True, just_stored: bool = False
) -> BatchPublic:
    """``just_stored``: the batch was stored by this request (no anchoring attempt yet: no query for them)."""
    attempts, error = (0, None) if just_stored else outbox_attempts(session=session, batch=batch)
    receipt = None
    if batch.status == "anchored":
        receipt = AnchorReceiptPublic(
            chain_id=chain.chain_id if chain else None,
            registry=chain.anchor_registry_address if chain else None,
            tx_hash=batch.tx_hash,
            block_number=batch.block_number,
            anchored_at=datetime.fromtimestamp(batch.anchored_at, tz=UTC) if batch.anchored_at is not None else None,
            commitment=batch.commitment,
        )
    return BatchPublic(
        id=batch.id,
        batch_id=batch.batch_id,
        supplier=batch.supplier.name,
        supplier_account=batch.supplier.account,
        part_number=batch.part_number,
        lot_id=batch.lot_id,
        record_count=batch.record_count,
        leaf_count=batch.leaf_count,
        root=batch.root,
        report_hash=batch.report_hash,
        status="anchored" if batch.status == "anchored" else "pending",
        agreement_id=batch.agreement_id if batch.agreement_id != "0x" + "00" * 32 else None,
        lot_size=batch.lot_size,
        verdict=("none", "accept", "reject")[batch.verdict],
        assessment=json.loads(batch.assessment) if batch.assessment else None,
        receipt=receipt,
        anchor_attempts=attempts,
        anchor_error=error if batch.status != "anchored" else None,
        files=[file_public(f) for f in batch.files],
        review_required=batch.review_reason is not None,
        review_reasons=batch.review_reason.split("\n") if batch.review_reason else [],
        created_at=batch.created_at,
        created=created,
    )


def agreement_public(*, record: AgreementRecord, chain: ChainContext | None, typed: bool = False) -> AgreementPublic:
    from app.services import agreements

    return AgreementPublic(
        id=record.id,
        agreement_id=record.agreement_id,
        template=TemplatePublic.model_validate(record.template),
        oem_id=record.oem_id,
        supplier_id=record.supplier_id,
        lab_id=record.lab_id,
        status=record.status,
        signed_by_oem=record.oem_signature is not None,
        signed_by_supplier=record.supplier_signature is not None,
        chain_tx=record.chain_tx,
        on_chain=agreements.agreement_status(chain=chain, record=record)
        if chain and record.status != "proposed"
        else None,
        typed_data=agreements.typed_data(chain=chain, record=record) if chain and typed else None,
        created_at=record.created_at,
    )
