"""Digital-signature verdicts for lab reports: PDF (pyHanko) and DCC XML (signxml, XMLDSig).

Verdict vocabulary (``SignatureInfo.verdict``):

==========================  ===================================================================
``unsigned``                no signature in the file
``intact``                  signature valid, signed content unchanged, signer chains to a trust root
                            (and, when ``trusted_signers`` is given, its fingerprint is registered)
``modified_after_signing``  signed bytes altered, or changes appended after signing that the
                            signature does not cover (beyond form filling / annotations)
``untrusted_signer``        cryptographically intact, but the signer does not chain to a trust root
                            or its fingerprint is not in ``trusted_signers``
``invalid``                 the signature itself does not verify / is malformed
==========================  ===================================================================

``trusted_signers`` maps signer-certificate SHA-256 fingerprints (lowercase hex, no colons) to registered
lab ids; a match is reported as ``lab_id``. Everything runs offline: no OCSP/CRL/AIA fetching.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from parsers._safe import parse_xml
from parsers.errors import MalformedInput
from parsers.limits import Limits
from parsers.report_model import LabReport, SignatureInfo

__all__ = ["attach_signature", "verify_dcc_signature", "verify_pdf_signature"]

_DS = "http://www.w3.org/2000/09/xmldsig#"


def _fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _load_roots(trust_roots: Sequence[bytes | x509.Certificate]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for root in trust_roots:
        if isinstance(root, x509.Certificate):
            out.append(root)
        elif root.lstrip().startswith(b"-----BEGIN"):
            out.append(x509.load_pem_x509_certificate(root))
        else:
            out.append(x509.load_der_x509_certificate(root))
    return out


def _registry(info: SignatureInfo, trusted_signers: Mapping[str, str] | None) -> SignatureInfo:
    """Apply the fingerprint registry to an otherwise intact verdict."""
    if info.signer_sha256 is None or trusted_signers is None:
        return info
    lab_id = trusted_signers.get(info.signer_sha256)
    if lab_id is not None:
        return info.model_copy(update={"lab_id": lab_id})
    if info.verdict == "intact":
        return info.model_copy(
            update={
                "verdict": "untrusted_signer",
                "detail": "signer certificate fingerprint is not registered to any lab",
            }
        )
    return info


def verify_pdf_signature(
    data: bytes,
    *,
    trust_roots: Sequence[bytes | x509.Certificate] = (),
    trusted_signers: Mapping[str, str] | None = None,
) -> SignatureInfo:
    """Verdict for the last signature of a PDF, validated with pyHanko against ``trust_roots`` (PEM/DER)."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        sigs = reader.embedded_signatures
    except Exception as exc:  # pyHanko/pdf errors translated once, here
        raise MalformedInput(f"PDF cannot be read for signature validation: {exc}") from exc
    if not sigs:
        return SignatureInfo(verdict="unsigned")
    sig = sigs[-1]
    roots = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in _load_roots(trust_roots)]
    ctx = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    try:
        status = validate_pdf_signature(sig, ctx)
    except Exception as exc:
        return SignatureInfo(verdict="invalid", detail=f"signature cannot be validated: {exc}")
    cert = status.signing_cert
    subject = cert.subject.human_friendly if cert is not None else None
    fp = _fingerprint(cert.dump()) if cert is not None else None
    base = SignatureInfo(verdict="intact", signer_subject=subject, signer_sha256=fp)
    if not status.intact:
        return base.model_copy(
            update={"verdict": "modified_after_signing", "detail": "signed byte range does not match the signed digest"}
        )
    if not status.valid:
        return base.model_copy(update={"verdict": "invalid", "detail": "cryptographic signature does not verify"})
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    modified = status.coverage != SignatureCoverageLevel.ENTIRE_FILE and (
        status.modification_level is None or status.modification_level.name not in {"NONE", "LTA_UPDATES"}
    )
    if modified:
        return base.model_copy(
            update={
                "verdict": "modified_after_signing",
                "detail": f"content appended after signing ({status.modification_level})",
            }
        )
    if not status.trusted:
        return _registry(
            base.model_copy(update={"verdict": "untrusted_signer", "detail": "signer does not chain to a trust root"}),
            trusted_signers,
        )
    return _registry(base, trusted_signers)


def verify_dcc_signature(
    data: bytes,
    *,
    trust_roots: Sequence[bytes | x509.Certificate] = (),
    trusted_signers: Mapping[str, str] | None = None,
    limits: Limits | None = None,
) -> SignatureInfo:
    """Verdict for an enveloped XMLDSig signature in a DCC (signer certificate from ``ds:X509Certificate``)."""
    from signxml import XMLVerifier
    from signxml.exceptions import InvalidDigest, InvalidInput, InvalidSignature

    tree = parse_xml(data, limits=limits or Limits(), what="DCC XML")  # refuses entities before signxml
    cert_el = tree.getroot().find(f".//{{{_DS}}}Signature//{{{_DS}}}X509Certificate")
    if tree.getroot().find(f".//{{{_DS}}}Signature") is None:
        return SignatureInfo(verdict="unsigned")
    if cert_el is None or not (cert_el.text or "").strip():
        return SignatureInfo(verdict="invalid", detail="signature carries no X.509 signer certificate")
    try:
        der = base64.b64decode("".join((cert_el.text or "").split()))
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        return SignatureInfo(verdict="invalid", detail=f"signer certificate unreadable: {exc}")
    base = SignatureInfo(
        verdict="intact", signer_subject=cert.subject.rfc4514_string(), signer_sha256=_fingerprint(der)
    )
    try:
        XMLVerifier().verify(data, x509_cert=cert)
    except InvalidDigest as exc:
        return base.model_copy(update={"verdict": "modified_after_signing", "detail": str(exc)})
    except (InvalidSignature, InvalidInput) as exc:
        return base.model_copy(update={"verdict": "invalid", "detail": str(exc)})
    if not _chains_to(cert, _load_roots(trust_roots)):
        return _registry(
            base.model_copy(update={"verdict": "untrusted_signer", "detail": "signer does not chain to a trust root"}),
            trusted_signers,
        )
    return _registry(base, trusted_signers)


def _chains_to(cert: x509.Certificate, roots: list[x509.Certificate]) -> bool:
    """True when ``cert`` is a trust root or directly issued (and signed) by one."""
    return any(cert == root or _issued_by(cert, root) for root in roots)


def _issued_by(cert: x509.Certificate, root: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):  # other issuer / bad signature / unsupported key
        return False
    return True


def attach_signature(report: LabReport, info: SignatureInfo) -> LabReport:
    """Return a copy of ``report`` carrying the signature verdict."""
    return report.model_copy(update={"signature": info})
