"""Webhooks: parties register endpoints and receive every case state change and quarterly evaluation.

Deliveries are written by the indexer in the same transaction as the event that causes them (one row per
subscription and event: ``uq_webhook_delivery``), so a notification is never lost nor duplicated by a
restart. The ``webhooks`` queue of :mod:`app.jobs` claims due rows (at most
``webhook_max_concurrent_per_party`` in flight per party, so one party's dead endpoints cannot take every
delivery thread) and :func:`deliver_one` POSTs each with httpx: short timeouts, redirects never followed.
Failures retry with the queue's exponential backoff up to ``webhook_max_attempts``.

Destinations (server-side request forgery): the host is resolved and refused when any of its addresses is
not globally routable — loopback, link-local (169.254.169.254), private, shared, multicast, unspecified,
reserved, IPv4-mapped forms of those — whatever its spelling (``[::1]``, ``2130706433``, ``0x7f.1``, a name
resolving there), unless an operator opened it with ``QCN_WEBHOOK_ALLOW`` (CIDRs and host names). The check
runs when a subscription is created and again before every delivery, and the request goes to the address
that was checked (no second lookup: DNS rebinding cannot swap it). The delivery log shows coarse failure
classes only (refused destination, unresolvable, network failure, HTTP status of an answer), so it cannot
be used to tell closed from filtered ports.

Secrets: a subscription's HMAC secret is stored encrypted (Fernet, AES-128-CBC + HMAC-SHA256) under a key
derived from ``QCN_WEBHOOK_SECRET_KEY`` (default: derived from the admin API token); it is shown in clear
once, in the creation response. Rotating that key makes stored secrets unreadable: re-create subscriptions.

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

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.auth import Principal
from app.db import AgreementRecord, CaseRecord, ChainEventRecord, Party, WebhookDelivery, WebhookSubscription, utcnow
from app.errors import Conflict, InvalidRequest, NotFound
from app.policy import webhook_scope
from app.settings import Settings

__all__ = [
    "Destination",
    "DestinationRefused",
    "Fanout",
    "busy_parties_filter",
    "check_destination",
    "create_subscription",
    "decrypt_secret",
    "delete_subscription",
    "deliver_one",
    "encrypt_secret",
    "event_type",
    "list_deliveries",
    "list_subscriptions",
    "record_status",
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
    *,
    session: Session,
    principal: Principal,
    settings: Settings,
    url: str,
    secret: str | None,
    events: list[str] | None,
) -> tuple[WebhookSubscription, str]:
    """Register an endpoint for the caller's party; returns the row and the secret in clear (shown once).

    Refuses a destination that is not publicly routable (unless allow-listed) and more than
    ``webhook_max_subscriptions_per_party`` active subscriptions per party.
    """
    known = set(_CASE_EVENTS.values()) | set(_AGREEMENT_EVENTS.values())
    unknown = sorted(set(events or []) - known)
    if unknown:
        raise InvalidRequest(f"unknown event type(s) {unknown}; known: {sorted(known)}", field="events")
    if secret is not None and not 16 <= len(secret) <= 64:
        raise InvalidRequest("a webhook secret needs 16 to 64 characters", field="secret")
    try:
        check_destination(url, settings)
    except DestinationRefused as exc:
        raise InvalidRequest(f"webhook url refused: {exc}", field="url") from exc
    active = session.scalar(
        select(func.count())
        .select_from(WebhookSubscription)
        .where(WebhookSubscription.party_id == principal.party_id, WebhookSubscription.active.is_(True))
    )
    if (active or 0) >= settings.webhook_max_subscriptions_per_party:
        raise Conflict(
            f"your party has {active} active webhook subscriptions, the most allowed; delete one first",
            limit=settings.webhook_max_subscriptions_per_party,
        )
    clear = secret or secrets.token_urlsafe(32)
    sub = WebhookSubscription(
        party_id=principal.party_id,
        url=url,
        secret=encrypt_secret(settings, clear),
        events=json.dumps(sorted(events)) if events else None,
    )
    session.add(sub)
    session.flush()
    return sub, clear


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
class Fanout:
    """Webhook deliveries of the events indexed in one transaction (:meth:`enqueue`). The events share their
    agreements, the admin parties and the subscriptions: each is looked up once per transaction, not per event."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._admins: set[int] | None = None
        self._agreements: dict[str, set[int]] = {}
        self._subs: dict[frozenset[int], list[WebhookSubscription]] = {}

    def recipients(self, event: ChainEventRecord, case: CaseRecord | None) -> set[int]:
        parties: set[int] = set()
        if case is not None:
            parties |= {p for p in (case.oem_id, case.supplier_id, case.lab_id) if p is not None}
        elif event.agreement_id:
            if event.agreement_id not in self._agreements:
                agreement = self.session.scalars(
                    select(AgreementRecord).where(AgreementRecord.agreement_id == event.agreement_id)
                ).first()
                self._agreements[event.agreement_id] = (
                    {agreement.oem_id, agreement.supplier_id} if agreement is not None else set()
                )
            parties |= self._agreements[event.agreement_id]
        if self._admins is None:
            self._admins = set(self.session.scalars(select(Party.id).where(Party.kind == "admin")).all())
        return parties | self._admins

    def subscriptions(self, recipients: set[int]) -> list[WebhookSubscription]:
        key = frozenset(recipients)
        if key not in self._subs:
            self._subs[key] = list(
                self.session.scalars(
                    select(WebhookSubscription).where(
                        WebhookSubscription.party_id.in_(recipients), WebhookSubscription.active.is_(True)
                    )
                ).all()
            )
        return self._subs[key]

    def enqueue(self, event: ChainEventRecord, case: CaseRecord | None) -> int:
        """Queue deliveries of a freshly indexed event to the subscriptions of its parties; returns how many."""
        kind = event_type(event.contract, event.name)
        if kind is None:
            return 0
        recipients = self.recipients(event, case)
        subscriptions = self.subscriptions(recipients) if recipients else []
        if not subscriptions:
            return 0
        session = self.session
        if event.id is None:
            session.flush()  # the event's id names the delivery
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
        for sub in subscriptions:
            if sub.events is not None and kind not in json.loads(sub.events):
                continue
            session.add(WebhookDelivery(subscription_id=sub.id, event_key=f"evt_{event.id}", event_type=kind, body=raw))
            count += 1
        return count


# ------------------------------------------------------------------------------------------------ secrets
_SECRET_PREFIX = "fernet1:"  # noqa: S105 - a format tag, not a secret


def _fernet(settings: Settings) -> Fernet:
    material = settings.webhook_secret_key.get_secret_value() if settings.webhook_secret_key else None
    if not material:
        material = "qcn-webhook-secrets:" + settings.api_admin_token.get_secret_value()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest()))


def encrypt_secret(settings: Settings, clear: str) -> str:
    """The stored form of a webhook secret."""
    return _SECRET_PREFIX + _fernet(settings).encrypt(clear.encode()).decode()


def decrypt_secret(settings: Settings, stored: str) -> str:
    """The secret in clear; rows written before secrets were encrypted hold it in clear and are read as is."""
    if not stored.startswith(_SECRET_PREFIX):
        return stored
    try:
        return _fernet(settings).decrypt(stored[len(_SECRET_PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise DestinationRefused("the subscription's secret cannot be decrypted (key rotated?)") from exc


# ------------------------------------------------------------------------------------------- destinations
class DestinationRefused(Exception):
    """A webhook destination the gateway will not call (the message is safe to show its owner)."""


@dataclass(frozen=True)
class Destination:
    """A checked destination: where to connect (``address``) and what to say (``host`` for Host and TLS)."""

    url: str
    host: str
    port: int
    address: str

    def request_url(self) -> str:
        """The URL with the checked address in place of the name (no second DNS lookup)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return urlunsplit((parts.scheme, f"{literal}:{self.port}", parts.path or "/", parts.query, ""))


def _allow_list(settings: Settings) -> tuple[list[ipaddress.IPv4Network | ipaddress.IPv6Network], set[str]]:
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    names: set[str] = set()
    for item in (x.strip() for x in settings.webhook_allow.split(",")):
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            names.add(item.lower().rstrip("."))
    return nets, names


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if embedded is not None and not _public(embedded):
                return False
    return ip.is_global and not (ip.is_multicast or ip.is_unspecified or ip.is_reserved or ip.is_loopback)


def check_destination(url: str, settings: Settings) -> Destination:
    """Resolve ``url``'s host and return the address to connect to; raise :class:`DestinationRefused` when it
    is not an absolute http(s) URL, cannot be resolved, or any address is not public and not allow-listed."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise DestinationRefused(f"not a valid URL: {exc}") from None
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        raise DestinationRefused("the URL must be absolute http(s) with a host")
    if parts.username or parts.password:
        raise DestinationRefused("credentials in the URL are not allowed")
    nets, names = _allow_list(settings)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise DestinationRefused(f"host {host!r} cannot be resolved") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise DestinationRefused(f"host {host!r} cannot be resolved")
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
        allowed = host in names or any(ip in net for net in nets if net.version == ip.version)
        if not allowed and not _public(ip):
            # one refusal message for every internal address: the answer must not map the inside network
            raise DestinationRefused(
                f"host {host!r} resolves to a non-public address; ask the operator to allow it (QCN_WEBHOOK_ALLOW)"
            )
    return Destination(url=url, host=host, port=port, address=addresses[0].split("%", 1)[0])


# ------------------------------------------------------------------------------------------------ deliver
def busy_parties_filter(settings: Settings) -> Any:
    """Claim filter of the webhooks queue: skip deliveries of parties that already have
    ``webhook_max_concurrent_per_party`` deliveries in flight (claimed and not expired)."""

    def where(now: datetime) -> list[Any]:
        in_flight = (
            select(WebhookSubscription.party_id)
            .join(WebhookDelivery, WebhookDelivery.subscription_id == WebhookSubscription.id)
            .where(WebhookDelivery.claimed_until > now)
            .group_by(WebhookSubscription.party_id)
            .having(func.count() >= settings.webhook_max_concurrent_per_party)
        )
        busy_subs = select(WebhookSubscription.id).where(WebhookSubscription.party_id.in_(in_flight))
        return [WebhookDelivery.subscription_id.not_in(busy_subs)]

    return where


class DeliveryFailed(Exception):
    """A delivery attempt that got no 2xx; ``status_code`` is the answer's status when there was one."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _post(dest: Destination, body: bytes, headers: dict[str, str], settings: Settings) -> int:
    import httpx  # loaded by the first delivery, not at the gateway's start

    timeout = httpx.Timeout(settings.webhook_timeout_s, connect=min(2.0, settings.webhook_timeout_s))
    host_header = dest.host if dest.port in (80, 443) else f"{dest.host}:{dest.port}"
    extensions = {"sni_hostname": dest.host} if urlsplit(dest.url).scheme == "https" else {}
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        try:
            resp = client.post(
                dest.request_url(),
                content=body,
                headers=headers | {"Host": host_header},
                extensions=extensions,
            )
        except httpx.HTTPError:
            # connection refused, reset, timeout, TLS: one class, so the log cannot map ports
            raise DeliveryFailed("network failure: no HTTP answer") from None
    return resp.status_code


def deliver_one(*, sessions: sessionmaker[Session], settings: Settings, delivery_id: int) -> bool:
    """POST one claimed delivery. True: delivered (row updated). Raises :class:`DeliveryFailed` (or
    :class:`app.jobs.Retry`) for the queue to record as a failed attempt with its backoff."""
    from app.jobs import Retry

    with sessions() as s:
        row = s.execute(
            select(WebhookDelivery, WebhookSubscription)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(WebhookDelivery.id == delivery_id)
        ).first()
        if row is None or row[0].status != "pending":
            return False
        d, sub = row
        url, stored, kind, body, active = sub.url, sub.secret, d.event_type, d.body, sub.active
    if not active:
        raise Retry("subscription deactivated", permanent=True)
    try:
        dest = check_destination(url, settings)
        secret = decrypt_secret(settings, stored)
    except DestinationRefused as exc:
        raise DeliveryFailed(f"destination refused: {exc}") from None
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
    code = _post(dest, raw, headers, settings)
    if not 200 <= code < 300:
        reason = "redirect not followed" if 300 <= code < 400 else f"HTTP {code}"
        raise DeliveryFailed(reason, status_code=code)
    with sessions() as s, s.begin():
        done = s.get(WebhookDelivery, delivery_id)
        if done is not None:
            done.attempts += 1
            done.last_status_code = code
            done.status, done.delivered_at, done.last_error = "delivered", utcnow(), None
    return True


def record_status(*, sessions: sessionmaker[Session], delivery_id: int, exc: BaseException) -> None:
    """Keep the HTTP status of a failed attempt (the queue records the attempt and its error)."""
    code = exc.status_code if isinstance(exc, DeliveryFailed) else None
    with sessions() as s, s.begin():
        d = s.get(WebhookDelivery, delivery_id)
        if d is not None:
            d.last_status_code = code


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
