"""The OEM's supplier scorecard: per agreement, quarterly scores and deposit ratio from the chain, and from the
stored batches the rejection rate and the Cpk trend of each characteristic."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import Principal
from app.chainctx import ChainContext
from app.db import Batch
from app.services import agreements as agreement_service

__all__ = ["scorecard_rows"]

_LAST_BATCHES = 40


def scorecard_rows(*, session: Session, principal: Principal, chain: ChainContext | None) -> list[dict[str, Any]]:
    out = []
    for record in agreement_service.list_agreements(session=session, principal=principal):
        if record.status == "proposed":
            continue
        batches = list(
            session.scalars(
                select(Batch)
                .where(Batch.agreement_id == record.agreement_id)
                .order_by(Batch.created_at.desc())
                .limit(_LAST_BATCHES)
            )
        )
        batches.reverse()
        cpk: dict[str, list[float | None]] = {}
        nonconforming = 0
        for b in batches:
            assessment = json.loads(b.assessment) if b.assessment else {}
            for ch in assessment.get("characteristics") or []:
                cpk.setdefault(ch["id"], []).append(ch.get("cpk"))
                nonconforming += int(ch.get("nonconforming") or 0)
        rejected = sum(1 for b in batches if b.verdict == 2)
        status = evaluations = None
        if chain is not None:
            status = agreement_service.agreement_status(chain=chain, record=record)
            evaluations = agreement_service.history(chain=chain, record=record, names=("Evaluated",))
        out.append(
            {
                "agreement": record,
                "batches": len(batches),
                "rejected": rejected,
                "rejection_rate": rejected / len(batches) if batches else None,
                "nonconforming": nonconforming,
                "cpk": cpk,
                "status": status,
                "evaluations": evaluations or [],
            }
        )
    return out
