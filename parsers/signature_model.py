"""The signature verdict a lab report carries (see :mod:`parsers.signatures` for how it is reached).

==========================  ===================================================================
``valid``                   every reference digest and the signature value verify, the signer
                            chains to a trust anchor, every certificate of the chain was valid
                            at the signing time and none was revoked by then
``tampered``                a ``ds:Reference`` digest (or the PDF byte range / CMS message
                            digest) does not match, or the signature value does not verify
``revoked``                 a certificate of the chain is revoked (embedded LT/LTA revocation
                            data or a CRL of the trust store) at the signing time
``untrusted``               intact, but the chain does not reach a trust anchor
``expired-at-signing``      a certificate of the chain was not valid at the signing time
``unsigned``                the file carries no signature
``malformed``               a signature is there but cannot be read (no certificate, bad
                            encoding, unsupported structure)
==========================  ===================================================================
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["SignatureInfo", "SignatureVerdict", "SigningTimeSource"]

SignatureVerdict = Literal["valid", "tampered", "revoked", "untrusted", "expired-at-signing", "unsigned", "malformed"]
SigningTimeSource = Literal["timestamp", "signing-time", "verification-time"]


class SignatureInfo(BaseModel):
    """Outcome of the digital-signature check: the verdict, its reason and the facts it rests on."""

    verdict: SignatureVerdict = "unsigned"
    reason: str | None = None
    kind: Literal["xades", "xmldsig", "pades", "cms"] | None = None
    signer_subject: str | None = None
    signer_sha256: str | None = None  # SHA-256 fingerprint of the signer certificate (lowercase hex)
    lab_id: str | None = None  # registered lab bound to the fingerprint, when trusted_signers matched
    signing_time: str | None = None  # ISO 8601, UTC
    signing_time_source: SigningTimeSource | None = None
    references_checked: int = 0
    chain: list[str] = []  # subjects from the signer up to the trust anchor
    revocation_checked: list[str] = []  # which revocation data was consulted ("embedded CRL of <issuer>", ...)
