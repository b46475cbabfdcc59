"""Database rows as the chain indexer stores them (a published template, an agreement on it, a case), for tests
that need them without running the contracts (authorization matrix, portal pages)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.db import AgreementRecord, CaseRecord, TemplateRecord


def add_agreement(
    s: Session,
    *,
    agreement_id: str,
    oem_id: int,
    supplier_id: int,
    lab_id: int,
    status: str,
    template_id: str,
    chain_template_id: str,
    document_hash: str,
) -> AgreementRecord:
    """A published template (version 1, placeholder document) of ``oem_id`` and an agreement on it."""
    template = TemplateRecord(
        template_id=template_id,
        version=1,
        oem_id=oem_id,
        chain_template_id=chain_template_id,
        document="{}",
        document_hash=document_hash,
        status="published",
    )
    s.add(template)
    s.flush()
    agreement = AgreementRecord(
        agreement_id=agreement_id,
        template_pk=template.id,
        oem_id=oem_id,
        supplier_id=supplier_id,
        lab_id=lab_id,
        terms="{}",
        status=status,
    )
    s.add(agreement)
    s.flush()
    return agreement


def add_case(s: Session, agreement: AgreementRecord, *, case_id: str, batch_id: str, **extra: Any) -> CaseRecord:
    """A case open on chain (``open_status`` done, state opened unless ``extra`` says) between the agreement's
    parties."""
    case = CaseRecord(
        case_id=case_id,
        batch_id=batch_id,
        agreement_id=agreement.agreement_id,
        oem_id=agreement.oem_id,
        supplier_id=agreement.supplier_id,
        lab_id=agreement.lab_id,
        open_status="done",
        **{"state": "opened", **extra},
    )
    s.add(case)
    s.flush()
    return case
