"""Webhooks: parties register endpoints and receive every case state change and quarterly evaluation.

Deliveries are written by the indexer in the same transaction as the event that causes them (one row per
subscription and event: ``uq_webhook_delivery``), so a notification is never lost nor duplicated by a
restart. :func:`deliver_due` (every worker pass) POSTs due rows and retries failures with exponential
backoff (``webhook_retry_base_s * 2**(attempts-1)``, capped) up to ``webhook_max_attempts``.

Every request carries::

    Content-Type: application/json
    X-QCN-Event: case.verdict_submitted
    X-QCN-Delivery: <delivery id>
    X-QCN-Timestamp: <unix seconds>
    X-QCN-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

A receiver recomputes the HMAC over the timestamp, a dot and the raw body (:func:`verify_signature`) and
rejects old timestamps, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.auth import Principal
from app.db import AgreementRecord, CaseRecord, ChainEventRecord, Party, WebhookDelivery, WebhookSubscription, utcnow
from app.errors import InvalidRequest, NotFound
from app.policy import webhook_scope
from app.settings import Settings

__all__ = [
    "create_subscription",
    "delete_subscription",
    "deliver_due",
    "enqueue_event",
    "event_type",
    "list_deliveries",
    "list_subscriptions",
    "sign_body",
    "verify_signature",
]

log = logging.getLogger("qcn.webhooks")

_CASE_EVENTS = {
    "CaseOpened": "case.opened",
    "SupplierResponded": "case.supplier_responded",
    "SupplierDefaulted": "case.supplier_defaulted",
    "VerdictSubmitted": "case.verdict_submitted",
    "VerdictAccepted": "case.verdict_accepted",
    "VerdictDisputed": "case.verdict_disputed",
    "LabDeadlineMissed": "case.lab_deadline_missed",
    "LabReassigned": "case.lab_reassigned",
    "CaseArbitrated": "case.arbitrated",
    "CaseSettled": "case.settled",
}
_AGREEMENT_EVENTS = {"Evaluated": "agreement.evaluated"}


def event_type(contract: str, name: str) -> str | None:
    """The webhook type of a contract event (None: not notified)."""
    if contract == "TracingCases":
        return _CASE_EVENTS.get(name)
    if contract == "AgreementRegistry":
        return _AGREEMENT_EVENTS.get(name)
    return None


def sign_body(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with ``secret`` over ``b"<timestamp>." + body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """Receiver side: True if ``signature`` is ours for this body and timestamp and the timestamp is fresh."""
    if not timestamp.isdigit() or abs((now if now is not None else time.time()) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign_body(secret, int(timestamp), body), signature)


# ------------------------------------------------------------------------------------------- subscriptions
def create_subscription(
    *, session: Session, principal: Principal, url: str, secret: str | None, events: list[str] | None
) -> WebhookSubscription:
    """Register an endpoint for the caller's party; a secret is generated when none is given."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidRequest(f"webhook url must be an absolute http(s) URL, got {url!r}", field="url")
    known = set(_CASE_EVENTS.values()) | set(_AGREEMENT_EVENTS.values())
    unknown = sorted(set(events or []) - known)
    if unknown:
        raise InvalidRequest(f"unknown event type(s) {unknown}; known: {sorted(known)}", field="events")
    if secret is not None and len(secret) < 16:
        raise InvalidRequest("a webhook secret needs at least 16 characters", field="secret")
    sub = WebhookSubscription(
        party_id=principal.party_id,
        url=url,
        secret=secret or secrets.token_urlsafe(32),
        events=json.dumps(sorted(events)) if events else None,
    )
    session.add(sub)
    session.flush()
    return sub


def _own(session: Session, principal: Principal, sub_id: int) -> WebhookSubscription:
    sub = session.scalars(
        select(WebhookSubscription).where(webhook_scope(principal), WebhookSubscription.id == sub_id)
    ).first()
    if sub is None:
        raise NotFound(f"webhook subscription {sub_id} not found")
    return sub


def list_subscriptions(*, session: Session, principal: Principal) -> list[WebhookSubscription]:
    """The caller's subscriptions (admin: all)."""
    q = select(WebhookSubscription).where(webhook_scope(principal)).order_by(WebhookSubscription.id)
    return list(session.scalars(q))


def delete_subscription(*, session: Session, principal: Principal, sub_id: int) -> None:
    """Deactivate a subscription (its delivery log is kept)."""
    _own(session, principal, sub_id).active = False


def list_deliveries(*, session: Session, principal: Principal, sub_id: int, limit: int = 100) -> list[WebhookDelivery]:
    """The delivery log of one of the caller's subscriptions, newest first."""
    sub = _own(session, principal, sub_id)
    q = (
        select(WebhookDelivery)
        .where(WebhookDelivery.subscription_id == sub.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return list(session.scalars(q))


# ------------------------------------------------------------------------------------------------ enqueue
def _recipients(session: Session, event: ChainEventRecord, case: CaseRecord | None) -> set[int]:
    parties: set[int] = set()
    if case is not None:
        parties |= {p for p in (case.oem_id, case.supplier_id, case.lab_id) if p is not None}
    elif event.agreement_id:
        agreement = session.scalars(
            select(AgreementRecord).where(AgreementRecord.agreement_id == event.agreement_id)
        ).first()
        if agreement is not None:
            parties |= {agreement.oem_id, agreement.supplier_id}
    admins = session.scalars(select(Party.id).where(Party.kind == "admin")).all()
    return parties | set(admins)


def enqueue_event(*, session: Session, event: ChainEventRecord, case: CaseRecord | None) -> int:
    """Queue deliveries of a freshly indexed event to the subscriptions of its parties; returns how many."""
    kind = event_type(event.contract, event.name)
    if kind is None:
        return 0
    recipients = _recipients(session, event, case)
    if not recipients:
        return 0
    body = {
        "id": f"evt_{event.id}",
        "type": kind,
        "created": event.block_time,
        "case": None
        if case is None
        else {
            "case_id": case.case_id,
            "state": case.state,
            "deadline": case.deadline,
            "batch_id": case.batch_id,
            "agreement_id": case.agreement_id,
            "verdict_hash": case.verdict_hash,
        },
        "event": {
            "contract": event.contract,
            "name": event.name,
            "args": json.loads(event.args),
            "tx_hash": event.tx_hash,
            "block_number": event.block_number,
            "block_time": event.block_time,
            "log_index": event.log_index,
        },
    }
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"))
    count = 0
    subs = session.scalars(
        select(WebhookSubscription).where(
            WebhookSubscription.party_id.in_(recipients), WebhookSubscription.active.is_(True)
        )
    ).all()
    for sub in subs:
        if sub.events is not None and kind not in json.loads(sub.events):
            continue
        session.add(WebhookDelivery(subscription_id=sub.id, event_key=f"evt_{event.id}", event_type=kind, body=raw))
        count += 1
    return count


# ------------------------------------------------------------------------------------------------ deliver
def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str | None]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - scheme checked at registration
            return int(resp.status), None
    except urllib.error.HTTPError as exc:
        return int(exc.code), f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def deliver_due(*, sessions: sessionmaker[Session], settings: Settings) -> int:
    """POST due deliveries (oldest first); returns how many were delivered in this pass."""
    with sessions() as s:
        due = s.execute(
            select(WebhookDelivery, WebhookSubscription)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow())
            .order_by(WebhookDelivery.id)
            .limit(settings.webhook_max_per_pass)
        ).all()
        work: list[tuple[int, str, str, str, str, bool]] = [
            (d.id, sub.url, sub.secret, d.event_type, d.body, sub.active) for d, sub in due
        ]
    delivered = 0
    for delivery_id, url, secret, kind, body, active in work:
        raw = body.encode()
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "qcn-webhooks/1",
            "X-QCN-Event": kind,
            "X-QCN-Delivery": str(delivery_id),
            "X-QCN-Timestamp": str(ts),
            "X-QCN-Signature": sign_body(secret, ts, raw),
        }
        code, error = (
            (None, "subscription deactivated") if not active else _post(url, raw, headers, settings.webhook_timeout_s)
        )
        ok = code is not None and 200 <= code < 300
        with sessions() as s, s.begin():
            d = s.get(WebhookDelivery, delivery_id)
            if d is None:
                continue
            d.attempts += 1
            d.last_status_code = code
            if ok:
                d.status, d.delivered_at, d.last_error = "delivered", utcnow(), None
                delivered += 1
                continue
            d.last_error = error or f"HTTP {code}"
            if not active or d.attempts >= settings.webhook_max_attempts:
                d.status = "failed"
            else:
                delay = min(settings.webhook_retry_max_s, settings.webhook_retry_base_s * 2 ** (d.attempts - 1))
                d.next_attempt_at = utcnow() + timedelta(seconds=delay)
        if not ok:
            log.info("webhook delivery %s to %s failed: %s", delivery_id, url, error or code)
    return delivered


def public_delivery(d: WebhookDelivery) -> dict[str, Any]:
    """A delivery log row as the API shows it."""
    return {
        "id": d.id,
        "event_type": d.event_type,
        "event_key": d.event_key,
        "status": d.status,
        "attempts": d.attempts,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "next_attempt_at": d.next_attempt_at.isoformat() if d.status == "pending" else None,
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
        "created_at": d.created_at.isoformat(),
        "body": json.loads(d.body),
    }
