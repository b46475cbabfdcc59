"""The lab's own pages: the reports it issued (found by its registered certificate in their digital
signature), what was read from each, the signature verdicts, and its accreditation (from the consortium
registry, and as printed on its reports)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import Principal
from app.db import Batch, BatchFile, Party
from app.errors import Forbidden

__all__ = ["lab_reports"]

_LIMIT = 200


def _value(field: Any) -> Any:
    return field.get("value") if isinstance(field, dict) else None


def _report_row(f: BatchFile, b: Batch, doc: dict[str, Any]) -> dict[str, Any]:
    sig = doc.get("signature") or {}
    acc = doc.get("accreditation") or {}
    results = doc.get("results") or []
    return {
        "filename": f.filename,
        "sha256": f.sha256,
        "lot_id": b.lot_id,
        "supplier": b.supplier.name if b.supplier else "",
        "uploaded": b.created_at,
        "report_id": _value(doc.get("report_id")),
        "title": _value(doc.get("title")),
        "issued": _value((doc.get("dates") or {}).get("issue")),
        "conformity": _value(doc.get("conformity_statement")),
        "results": len(results),
        "failed": sum(1 for r in results if str(_value(r.get("verdict")) or "").lower() == "fail"),
        "accreditation": (_value(acc.get("body")), _value(acc.get("id"))) if acc else None,
        "verdict": f.signature_verdict or sig.get("verdict") or "unsigned",
        "signer": sig.get("signer_subject"),
        "signed_at": sig.get("signing_time"),
        "review": (doc.get("review") or {}).get("reasons") or [],
    }


def lab_reports(*, session: Session, principal: Principal) -> dict[str, Any]:
    """The calling lab's issued reports (newest first) and its accreditation data."""
    if principal.role != "lab" or principal.party_id is None:
        raise Forbidden("only a lab has a reports page")
    lab = session.get(Party, principal.party_id)
    assert lab is not None
    marker = f'"lab_id":"{lab.id}"'  # set by the parser only when the signer's certificate is this lab's
    rows = session.execute(
        select(BatchFile, Batch)
        .join(Batch, Batch.id == BatchFile.batch_pk)
        .where(BatchFile.kind == "report", BatchFile.parsed_json.contains(marker))
        .order_by(BatchFile.id.desc())
        .limit(_LIMIT)
    ).all()
    reports = []
    for f, b in rows:
        doc = json.loads(f.parsed_json or "{}")
        if str((doc.get("signature") or {}).get("lab_id")) != str(lab.id):
            continue  # the marker text appeared elsewhere in the report (e.g. a printed value)
        reports.append(_report_row(f, b, doc))
    printed = sorted({r["accreditation"] for r in reports if r["accreditation"] and all(r["accreditation"])})
    return {
        "lab": lab,
        "reports": reports,
        "printed_accreditations": [
            {"body": body, "id": number, "matches_registry": number == lab.accreditation_id} for body, number in printed
        ],
    }
