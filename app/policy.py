"""Tenant isolation in one place: what a principal may see and do.

Every query of a tenant-owned table goes through one of the ``*_scope`` filters here, so a new endpoint
cannot forget a party check by writing its own ``WHERE``. Seeing is decided by the filter (an object the
caller may not see does not exist for it: 404, never 403, so ids are no oracle); doing, on an object the
caller sees, by the ``require_*`` checks (403 naming the role needed).

Who sees what:

==========  ============================================================================================
admin       everything
OEM         its templates and agreements; the batches delivered under its agreements; their cases
supplier    its own batches; the agreements it is party to and their templates; its cases
lab         the agreements naming it and their templates; the batches of the cases assigned to it
==========  ============================================================================================

Rescoring a batch (a new analysis version, which may open a case on chain) is for the OEM of the batch's
agreement or the admin. The analysis models are shared by every supplier of a process profile and learned
from all of their clean batches, so only the consortium admin refreshes them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true

from app.auth import Principal
from app.db import AgreementRecord, Batch, CaseRecord, Party, TemplateRecord, WebhookSubscription
from app.errors import Forbidden

__all__ = [
    "agreement_scope",
    "batch_scope",
    "case_scope",
    "party_scope",
    "require_model_admin",
    "require_rescore",
    "template_scope",
    "webhook_scope",
]


def _own_agreement_ids(principal: Principal) -> Any:
    return select(AgreementRecord.agreement_id).where(AgreementRecord.oem_id == principal.party_id)


def batch_scope(principal: Principal) -> ColumnElement[bool]:
    """Filter on :class:`Batch` rows the principal may see."""
    if principal.is_admin:
        return true()
    if principal.role == "supplier":
        return Batch.supplier_id == principal.party_id
    if principal.role == "oem":
        return Batch.agreement_id.in_(_own_agreement_ids(principal))
    if principal.role == "lab":
        cases = select(CaseRecord.batch_pk).where(
            CaseRecord.lab_id == principal.party_id, CaseRecord.batch_pk.is_not(None)
        )
        return Batch.id.in_(cases)
    return false()


def case_scope(principal: Principal) -> ColumnElement[bool]:
    """Filter on :class:`CaseRecord` rows: the case's OEM, supplier and lab (and the admin)."""
    if principal.is_admin:
        return true()
    pid = principal.party_id
    return or_(CaseRecord.oem_id == pid, CaseRecord.supplier_id == pid, CaseRecord.lab_id == pid)


def agreement_scope(principal: Principal) -> ColumnElement[bool]:
    """Filter on :class:`AgreementRecord` rows: its OEM, supplier or lab (and the admin)."""
    if principal.is_admin:
        return true()
    column = {"oem": AgreementRecord.oem_id, "supplier": AgreementRecord.supplier_id, "lab": AgreementRecord.lab_id}
    if principal.role not in column:
        return false()
    return column[principal.role] == principal.party_id


def template_scope(principal: Principal) -> ColumnElement[bool]:
    """Filter on :class:`TemplateRecord` rows: the OEM's own; suppliers and labs those of their agreements."""
    if principal.is_admin:
        return true()
    if principal.role == "oem":
        return TemplateRecord.oem_id == principal.party_id
    if principal.role in ("supplier", "lab"):
        return TemplateRecord.id.in_(select(AgreementRecord.template_pk).where(agreement_scope(principal)))
    return false()


def webhook_scope(principal: Principal) -> ColumnElement[bool]:
    """Filter on :class:`WebhookSubscription` rows: the party's own (admin: all)."""
    if principal.is_admin:
        return true()
    return WebhookSubscription.party_id == principal.party_id


def party_scope(principal: Principal) -> ColumnElement[bool]:
    """Filter on :class:`Party` rows: the admin sees every party, everyone else only itself."""
    if principal.is_admin:
        return true()
    return Party.id == principal.party_id


def require_rescore(*, session: Any, principal: Principal, batch: Batch) -> None:
    """Only the OEM of the batch's agreement (or the admin) may analyse it again: 403 otherwise."""
    if principal.is_admin:
        return
    if principal.role == "oem":
        owner = session.scalar(select(AgreementRecord.oem_id).where(AgreementRecord.agreement_id == batch.agreement_id))
        if owner == principal.party_id:
            return
    raise Forbidden("only the OEM of the batch's agreement or the admin may rescore it", role=principal.role)


def require_model_admin(principal: Principal) -> None:
    """The shared analysis models are refreshed by the consortium admin only (403 otherwise)."""
    if not principal.is_admin:
        raise Forbidden(
            "the analysis models are shared by all suppliers of a profile: only the consortium admin refreshes them",
            role=principal.role,
        )
