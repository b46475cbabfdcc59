"""Consortium parties: registration on chain and in the gateway, API keys."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.auth import Principal, issue_key
from app.chainctx import ChainContext
from app.db import Party, session_scope
from app.errors import Conflict, InvalidRequest, NotFound
from app.policy import party_scope
from app.schemas import PartyCreate

__all__ = [
    "certificate_fingerprint",
    "ensure_admin_party",
    "get_party",
    "list_parties",
    "register_party",
]


def ensure_admin_party(*, session_factory: sessionmaker[Session]) -> None:
    """The consortium admin exists as a party row so its actions are attributable."""
    with session_scope(session_factory) as session:
        if session.scalars(select(Party).where(Party.kind == "admin")).first() is None:
            session.add(Party(name="consortium admin", kind="admin"))


def register_party(*, session: Session, chain: ChainContext, party_in: PartyCreate) -> tuple[Party, str]:
    """Register a party on chain (admin key) and store it; suppliers also approve the gateway's relayer.

    The chain transaction runs before the database commit; if the commit then fails, repeating the call finds
    the party already on chain with the same kind and carries on.
    """
    if party_in.kind == "lab" and (not party_in.accreditation_id or party_in.accreditation_expires is None):
        raise InvalidRequest("a lab needs accreditation_id and accreditation_expires", field="accreditation_id")
    if party_in.kind != "lab" and party_in.certificate_pem:
        raise InvalidRequest("only labs register a report-signing certificate", field="certificate_pem")
    taken = session.scalars(select(Party).where(Party.account == party_in.account)).first()
    if taken is not None:
        raise Conflict(f"account {party_in.account} is already registered as party {taken.id} ({taken.name})")
    party = Party(
        name=party_in.name,
        kind=party_in.kind,
        account=party_in.account,
        accreditation_id=party_in.accreditation_id,
        accreditation_expires=party_in.accreditation_expires,
        certificate_pem=party_in.certificate_pem,
        certificate_sha256=certificate_fingerprint(party_in.certificate_pem) if party_in.certificate_pem else None,
    )
    session.add(party)
    session.flush()
    party.chain_tx = chain.register_party(
        kind=party_in.kind,
        account=party_in.account,
        name=party_in.name,
        accreditation_id=party_in.accreditation_id,
        accreditation_expires=party_in.accreditation_expires,
    )
    if party_in.kind == "supplier":
        chain.approve_relayer(supplier=party_in.account)
    key = issue_key(session=session, party=party, label="initial")
    return party, key


def certificate_fingerprint(pem: str) -> str:
    """SHA-256 of the certificate's DER bytes (lowercase hex), how signed reports are tied to a lab."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def list_parties(*, session: Session, principal: Principal) -> list[Party]:
    q = select(Party).where(party_scope(principal)).order_by(Party.id)
    return list(session.scalars(q))


def get_party(*, session: Session, principal: Principal, party_id: int) -> Party:
    party = session.scalars(select(Party).where(party_scope(principal), Party.id == party_id)).first()
    if party is None:
        raise NotFound(f"party {party_id} not found")
    return party
