"""What the portal shows that the API has no single call for: a person's work list and the live-update feed.

Every query goes through the gateway services' visibility rules (a supplier sees its own batches and cases,
a lab the cases assigned to it ...): this module never widens what a party may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.auth import Principal
from app.db import AgreementRecord, AnalysisJob, Batch, CaseRecord, utcnow
from app.services import agreements as agreement_service
from app.services import cases as case_service

__all__ = ["WorkItem", "changes_since", "work_items"]


@dataclass(frozen=True)
class WorkItem:
    """One thing waiting for the user: what, where to do it, and the chain-time deadline if there is one."""

    kind: str  # sign_agreement | respond | verdict | accept | claim | anchoring
    title: str
    href: str
    deadline: int | None = None


def _case_items(session: Session, principal: Principal) -> list[WorkItem]:
    out: list[WorkItem] = []
    open_states = ("opened", "supplier_responded", "verdict_submitted")
    for case in case_service.list_cases(session=session, principal=principal, limit=200):
        if case.state not in open_states and not (case.state == "settled" and case.penalized):
            continue
        href = f"/portal/cases/{case.id}"
        label = f"#{case.id} {(case.case_id or '')[:10]}"
        pid = principal.party_id
        if case.supplier_id == pid and case.state == "opened":
            out.append(WorkItem("respond", label, href, case.deadline))
        elif case.lab_id == pid and case.state in ("opened", "supplier_responded"):
            out.append(WorkItem("verdict", label, href, case.deadline))
        elif case.state == "verdict_submitted" and (
            (case.oem_id == pid and not case.oem_accepted) or (case.supplier_id == pid and not case.supplier_accepted)
        ):
            out.append(WorkItem("accept", label, href, case.deadline))
    return out


def work_items(*, session: Session, principal: Principal) -> list[WorkItem]:
    """Everything waiting for this party, soonest deadline first (undated items last)."""
    items: list[WorkItem] = []
    for record in agreement_service.list_agreements(session=session, principal=principal):
        if record.status != "proposed":
            continue
        mine = (principal.role == "oem" and record.oem_signature is None) or (
            principal.role == "supplier" and record.supplier_signature is None
        )
        if mine:
            items.append(
                WorkItem("sign_agreement", record.template.template_id, f"/portal/agreements/{record.id}", None)
            )
    items.extend(_case_items(session, principal))
    if principal.role == "supplier":
        pending = session.scalars(
            select(Batch)
            .where(Batch.supplier_id == principal.party_id, Batch.status != "anchored")
            .order_by(Batch.created_at.desc())
            .limit(20)
        )
        items.extend(WorkItem("anchoring", b.lot_id or b.batch_id[:10], f"/portal/batches/{b.id}") for b in pending)
    return sorted(items, key=lambda i: (i.deadline is None, i.deadline or 0))


def _visible_cases(principal: Principal) -> Any:
    q = select(CaseRecord)
    if not principal.is_admin:
        pid = principal.party_id
        q = q.where(or_(CaseRecord.oem_id == pid, CaseRecord.supplier_id == pid, CaseRecord.lab_id == pid))
    return q


def _visible_batches(principal: Principal) -> Any:
    q = select(Batch)
    if principal.role == "supplier":
        return q.where(Batch.supplier_id == principal.party_id)
    if principal.role in ("oem", "admin"):
        # the batches service decides what an OEM may read; the feed only names ids it would also serve
        return (
            q.where(
                Batch.agreement_id.in_(
                    select(AgreementRecord.agreement_id).where(AgreementRecord.oem_id == principal.party_id)
                )
            )
            if principal.role == "oem"
            else q
        )
    return q.where(Batch.id.is_(None))


def changes_since(*, session: Session, principal: Principal, since: datetime) -> tuple[list[dict[str, Any]], datetime]:
    """Events for the live feed: batches anchored, analyses finished, cases changed since ``since``."""
    now = utcnow()
    # rows are stamped by other transactions that may commit a little after their timestamp: look back a bit
    floor = since - timedelta(seconds=2)
    events: list[dict[str, Any]] = []
    for b in session.scalars(_visible_batches(principal).where(Batch.updated_at >= floor).limit(200)):
        events.append({"type": "batch", "id": b.id, "status": b.status, "lot": b.lot_id, "tx": b.tx_hash})
    batch_ids = _visible_batches(principal).with_only_columns(Batch.id).scalar_subquery()
    jobs = select(AnalysisJob).where(AnalysisJob.updated_at >= floor, AnalysisJob.batch_pk.in_(batch_ids)).limit(200)
    for j in session.scalars(jobs):
        events.append({"type": "analysis", "id": j.batch_pk, "status": j.status, "outcome": j.outcome})
    for c in session.scalars(_visible_cases(principal).where(CaseRecord.updated_at >= floor).limit(200)):
        events.append({"type": "case", "id": c.id, "state": c.state})
    return events, now
