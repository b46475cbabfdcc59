"""Digital signatures of lab reports judged the way a verifier would: XAdES/XMLDSig (DCC), PAdES (PDF), CMS (.p7m).

Verdicts and their meaning: :mod:`parsers.signature_model`. Every check runs offline (no OCSP/CRL/AIA
fetching); what a verifier needs must be in the file (LT/LTA revocation values, certificate values) or in
the trust store (:func:`load_trust_dir`: anchors, intermediates, CRLs).

The order of the checks is the order of the verdicts' precedence:

1. no signature -> ``unsigned``; unreadable signature/certificate -> ``malformed``;
2. every ``ds:Reference`` digest and the signature value (signxml, with ``expect_references=True``:
   XAdES signatures carry two or more references) / the PDF byte range / the CMS message digest ->
   ``tampered`` on any mismatch;
3. the signing time: a signature timestamp whose imprint covers this signature value (XAdES
   ``SignatureTimeStamp``, CMS/PAdES timestamp token), else the signed signing-time property
   (``xades:SigningTime``, CMS ``signingTime``), else the verification time (said in the reason);
4. a chain from the signer to a trust anchor, every link's signature checked -> ``untrusted``;
5. revocation of any certificate of the chain at the signing time, from embedded CRLs/OCSP responses
   and the trust store's CRLs -> ``revoked``. A revocation *after* the signing time counts only when the
   signing time is proven by a timestamp; a self-asserted signing time does not outrun a revocation;
6. every certificate of the chain valid at the signing time -> else ``expired-at-signing``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import tsp  # imported first: it registers the tst_info content type for every later CMS parse
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from parsers._safe import parse_xml
from parsers.errors import MalformedInput
from parsers.limits import Limits
from parsers.report_model import LabReport
from parsers.signature_model import SignatureInfo, SigningTimeSource

__all__ = [
    "TrustStore",
    "attach_signature",
    "is_cms",
    "load_trust_dir",
    "unwrap_cms",
    "verify_cms_signature",
    "verify_dcc_signature",
    "verify_pdf_signature",
    "verify_report_signature",
    "verify_report_signature_from_der",
]

_DS = "http://www.w3.org/2000/09/xmldsig#"
_XADES = "http://uri.etsi.org/01903/v1.3.2#"
_NS = {"ds": _DS, "xades": _XADES}
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")  # DER of 1.2.840.113549.1.7.2


@dataclass(frozen=True)
class TrustStore:
    """The consortium's trust anchors, plus intermediates and CRLs a verifier may use."""

    anchors: tuple[x509.Certificate, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()

    @classmethod
    def of(cls, roots: Iterable[bytes | x509.Certificate]) -> TrustStore:
        """A store whose anchors are ``roots`` (PEM/DER bytes or certificates)."""
        return cls(anchors=tuple(_load_cert(r) for r in roots))

    def merged(self, other: TrustStore) -> TrustStore:
        return TrustStore(
            anchors=self.anchors + other.anchors,
            intermediates=self.intermediates + other.intermediates,
            crls=self.crls + other.crls,
        )

    def to_der(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[bytes, ...]]:
        """The store as DER bytes (anchors, intermediates, CRLs): what a child process is sent (the certificate
        objects themselves cannot be pickled)."""
        der = serialization.Encoding.DER
        return (
            tuple(c.public_bytes(der) for c in self.anchors),
            tuple(c.public_bytes(der) for c in self.intermediates),
            tuple(c.public_bytes(der) for c in self.crls),
        )

    @classmethod
    def from_der(cls, parts: tuple[Sequence[bytes], Sequence[bytes], Sequence[bytes]]) -> TrustStore:
        """The inverse of :meth:`to_der`."""
        anchors, intermediates, crls = parts
        return cls(
            anchors=tuple(map(x509.load_der_x509_certificate, anchors)),
            intermediates=tuple(map(x509.load_der_x509_certificate, intermediates)),
            crls=tuple(map(x509.load_der_x509_crl, crls)),
        )


def _load_cert(data: bytes | x509.Certificate) -> x509.Certificate:
    if isinstance(data, x509.Certificate):
        return data
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def load_trust_dir(path: Path) -> TrustStore:
    """Read a trust directory: certificates (``.pem .crt .cer .der``; self-signed ones are anchors, the others
    intermediates; a PEM file may hold several) and CRLs (``.crl``, PEM or DER).

    Raises :class:`ValueError` naming the file that cannot be read.
    """
    anchors: list[x509.Certificate] = []
    inter: list[x509.Certificate] = []
    crls: list[x509.CertificateRevocationList] = []
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        data = f.read_bytes()
        suffix = f.suffix.lower()
        try:
            if suffix == ".crl":
                crls.append(
                    x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data)
                )
                continue
            if suffix not in (".pem", ".crt", ".cer", ".der"):
                continue
            certs = (
                x509.load_pem_x509_certificates(data)
                if data.lstrip().startswith(b"-----")
                else [x509.load_der_x509_certificate(data)]
            )
        except ValueError as exc:
            raise ValueError(f"trust dir file {f} cannot be read: {exc}") from exc
        for cert in certs:
            (anchors if cert.issuer == cert.subject else inter).append(cert)
    return TrustStore(anchors=tuple(anchors), intermediates=tuple(inter), crls=tuple(crls))


def _store(trust: TrustStore | None, trust_roots: Sequence[bytes | x509.Certificate]) -> TrustStore:
    base = trust or TrustStore()
    return base.merged(TrustStore.of(trust_roots)) if trust_roots else base


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# ----------------------------------------------------------------------------------------------- judging


@dataclass(frozen=True)
class _Timestamp:
    """An RFC 3161 token over the signature value: its time, its TSA and the certificates it carries."""

    gen_time: dt.datetime
    tsa: x509.Certificate
    certs: tuple[x509.Certificate, ...]


@dataclass
class _Evidence:
    """What a signature gave us, before the certificate-path part of the judgement."""

    kind: str
    signer: x509.Certificate
    certs: list[x509.Certificate] = field(default_factory=list)
    timestamp: _Timestamp | None = None  # a signature timestamp whose imprint covers this signature
    claimed_time: dt.datetime | None = None  # the signed signing-time property (asserted by the signer)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    ocsp: list[_Ocsp] = field(default_factory=list)
    references: int = 0
    notes: list[str] = field(default_factory=list)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer.public_bytes() != issuer.subject.public_bytes():
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _build_chain(
    signer: x509.Certificate, pool: list[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> tuple[list[x509.Certificate], bool]:
    """``(chain, reached_anchor)``: the signer, its issuers found in ``pool`` (each link verified), up to an anchor."""
    anchor_fps = {_fingerprint(a) for a in anchors}
    chain: list[x509.Certificate] = [signer]
    current = signer
    for _ in range(12):
        if _fingerprint(current) in anchor_fps:
            return chain, True
        anchor = next((a for a in anchors if _issued_by(current, a)), None)
        if anchor is not None:
            chain.append(anchor)
            return chain, True
        seen = {_fingerprint(c) for c in chain}
        nxt = next((c for c in pool if _fingerprint(c) not in seen and _issued_by(current, c)), None)
        if nxt is None:
            return chain, False
        chain.append(nxt)
        current = nxt
    return chain, False


def _revocation(
    cert: x509.Certificate, issuer: x509.Certificate, ev: _Evidence, store: TrustStore
) -> tuple[dt.datetime | None, str | None, list[str]]:
    """``(revocation time or None, source, consulted)`` for ``cert`` from CRLs and OCSP responses we hold."""
    consulted: list[str] = []
    for source, crls in (("embedded CRL", ev.crls), ("trust-store CRL", list(store.crls))):
        for crl in crls:
            if crl.issuer.public_bytes() != issuer.subject.public_bytes():
                continue
            try:
                if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                    continue
            except (TypeError, UnsupportedAlgorithm):
                continue
            consulted.append(f"{source} of {_subject(issuer)} ({_iso(crl.last_update_utc)})")
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None:
                return entry.revocation_date_utc, f"{source} of {_subject(issuer)}", consulted
    for resp in ev.ocsp:
        for serial, name_hash, hash_name, status, revoked_at in resp.singles:
            if serial != cert.serial_number or hash_name not in _HASHES:
                continue
            if name_hash != _name_hash(issuer, _HASHES[hash_name]()) or not resp.signed_for(issuer):
                continue
            consulted.append(f"embedded OCSP response ({_iso(resp.produced_at)})")
            if status == "revoked" and revoked_at is not None:
                return revoked_at, "embedded OCSP response", consulted
    return None, None, consulted


def _name_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(issuer.subject.public_bytes())
    return h.finalize()


def _verify_with(public_key: Any, signature: bytes, data: bytes, hash_alg: hashes.HashAlgorithm | None) -> bool:
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            assert hash_alg is not None
            public_key.verify(signature, data, padding.PKCS1v15(), hash_alg)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            assert hash_alg is not None
            public_key.verify(signature, data, ec.ECDSA(hash_alg))
        else:
            public_key.verify(signature, data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@dataclass
class _Ocsp:
    """A basic OCSP response as far as the judgement needs it, read by asn1crypto (tolerates responder
    certificates that cryptography's strict parser refuses)."""

    singles: list[tuple[int, bytes, str, str, dt.datetime | None]]  # serial, issuer name hash, hash, status, time
    produced_at: dt.datetime
    tbs: bytes
    signature: bytes
    hash_name: str
    certs: list[x509.Certificate]

    @classmethod
    def load(cls, der: bytes) -> _Ocsp:
        """From an ``OCSPResponse`` or a ``BasicOCSPResponse`` (DER); raises ``ValueError`` when unreadable."""
        from asn1crypto import ocsp as a_ocsp

        try:
            try:
                resp = a_ocsp.OCSPResponse.load(der)
                if resp["response_status"].native != "successful":
                    raise ValueError(f"OCSP response status {resp['response_status'].native}")
                basic = resp["response_bytes"]["response"].parsed
            except (ValueError, KeyError, TypeError):
                basic = a_ocsp.BasicOCSPResponse.load(der)
            data = basic["tbs_response_data"]
            singles = []
            for single in data["responses"]:
                cert_id = single["cert_id"]
                status = single["cert_status"]
                revoked_at = status.chosen["revocation_time"].native if status.name == "revoked" else None
                singles.append(
                    (
                        cert_id["serial_number"].native,
                        cert_id["issuer_name_hash"].native,
                        cert_id["hash_algorithm"]["algorithm"].native,
                        status.name,
                        revoked_at,
                    )
                )
            certs: list[x509.Certificate] = []
            for c in basic["certs"] or []:
                try:
                    certs.append(x509.load_der_x509_certificate(c.dump()))
                except ValueError:
                    certs.append(_LaxCertificate(c))  # type: ignore[arg-type]
            return cls(
                singles=singles,
                produced_at=data["produced_at"].native,
                tbs=data.dump(),
                signature=basic["signature"].native,
                hash_name=basic["signature_algorithm"].hash_algo,
                certs=certs,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"OCSP response cannot be read: {exc}") from exc

    def signed_for(self, issuer: x509.Certificate) -> bool:
        """Signed by the issuer itself or by a responder certificate the issuer signed."""
        if self.hash_name not in _HASHES:
            return False
        signers = [issuer, *(c for c in self.certs if _issued_by(c, issuer))]
        return any(_verify_with(s.public_key(), self.signature, self.tbs, _HASHES[self.hash_name]()) for s in signers)


def _signing_time(ev: _Evidence, store: TrustStore) -> tuple[dt.datetime | None, SigningTimeSource | None]:
    """The timestamp's time when its TSA chains to a trust anchor and was valid then; else the claimed time."""
    ts = ev.timestamp
    if ts is not None:
        chain, trusted = _build_chain(ts.tsa, [*ts.certs, *ev.certs, *store.intermediates], store.anchors)
        valid = all(c.not_valid_before_utc <= ts.gen_time <= c.not_valid_after_utc for c in chain)
        if trusted and valid:
            return ts.gen_time, "timestamp"
        why = "does not chain to a trust anchor" if not trusted else "was not valid at the time it stamped"
        ev.notes.append(f"signature timestamp ignored: its TSA {_subject(ts.tsa)!r} {why}")
    if ev.claimed_time is not None:
        return ev.claimed_time, "signing-time"
    return None, None


def _judge(
    ev: _Evidence, store: TrustStore, trusted_signers: Mapping[str, str] | None, now: dt.datetime | None
) -> SignatureInfo:
    signer = ev.signer
    fp = _fingerprint(signer)
    t, source = _signing_time(ev, store)
    if t is None:
        t, source = (now or dt.datetime.now(dt.UTC)), "verification-time"
    base = SignatureInfo(
        verdict="valid",
        kind=ev.kind,  # type: ignore[arg-type]
        signer_subject=_subject(signer),
        signer_sha256=fp,
        lab_id=trusted_signers.get(fp) if trusted_signers else None,
        signing_time=_iso(t),
        signing_time_source=source,
        references_checked=ev.references,
    )
    pool = [*ev.certs, *store.intermediates]
    chain, trusted = _build_chain(signer, pool, store.anchors)
    base = base.model_copy(update={"chain": [_subject(c) for c in chain]})
    if not trusted:
        last = chain[-1]
        return base.model_copy(
            update={
                "verdict": "untrusted",
                "reason": f"the certificate chain does not reach a trust anchor: it ends at {_subject(last)!r}, "
                f"issued by {last.issuer.rfc4514_string()!r}, which is not in the trust store",
            }
        )
    consulted_all: list[str] = []
    for cert, issuer in itertools.pairwise(chain):
        revoked_at, where, consulted = _revocation(cert, issuer, ev, store)
        consulted_all += consulted
        if revoked_at is None:
            continue
        if revoked_at <= t or source != "timestamp":
            when = "before" if revoked_at <= t else "after"
            proof = "" if revoked_at <= t else " (the signing time is only self-asserted, no timestamp proves it)"
            return base.model_copy(
                update={
                    "verdict": "revoked",
                    "revocation_checked": consulted_all,
                    "reason": f"certificate {_subject(cert)!r} was revoked at {_iso(revoked_at)} ({where}), "
                    f"{when} the signing time {_iso(t)}{proof}",
                }
            )
    base = base.model_copy(update={"revocation_checked": consulted_all})
    for cert in chain:
        if not (cert.not_valid_before_utc <= t <= cert.not_valid_after_utc):
            return base.model_copy(
                update={
                    "verdict": "expired-at-signing",
                    "reason": f"certificate {_subject(cert)!r} is valid {_iso(cert.not_valid_before_utc)} .. "
                    f"{_iso(cert.not_valid_after_utc)}, not at the signing time {_iso(t)} ({source})",
                }
            )
    notes = "; ".join(ev.notes)
    how = {"timestamp": "a signature timestamp", "signing-time": "the signed signing-time property"}.get(
        source or "", "the verification time (the signature states no signing time)"
    )
    reason = (
        f"{ev.references} reference(s) and the signature value verify; chain of {len(chain)} to a trust anchor; "
        f"certificates valid at {_iso(t)} from {how}; "
        + (f"revocation data checked: {len(consulted_all)}" if consulted_all else "no revocation data available")
    )
    return base.model_copy(update={"reason": reason + (f"; {notes}" if notes else "")})


def _bad(verdict: str, reason: str, kind: str, signer: x509.Certificate | None = None, refs: int = 0) -> SignatureInfo:
    return SignatureInfo(
        verdict=verdict,  # type: ignore[arg-type]
        reason=reason,
        kind=kind,  # type: ignore[arg-type]
        signer_subject=_subject(signer) if signer is not None else None,
        signer_sha256=_fingerprint(signer) if signer is not None else None,
        references_checked=refs,
    )


# ----------------------------------------------------------------------------------------------- XML


def _b64(el: etree._Element | None) -> bytes:
    return base64.b64decode("".join((el.text or "").split())) if el is not None else b""


def verify_dcc_signature(
    data: bytes | etree._ElementTree,
    *,
    trust_roots: Sequence[bytes | x509.Certificate] = (),
    trust: TrustStore | None = None,
    trusted_signers: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    now: dt.datetime | None = None,
) -> SignatureInfo:
    """Verdict for the enveloped XMLDSig/XAdES signature of a DCC (bytes, or a tree from :func:`parse_xml`).

    The XML is read by the one hardened reader (:func:`parsers._safe.parse_xml`); signxml verifies that same
    tree (every reference, any number of them).
    """
    tree = data if isinstance(data, etree._ElementTree) else parse_xml(data, limits=limits or Limits(), what="DCC XML")
    root = tree.getroot()
    sig = next(root.iterchildren(f"{{{_DS}}}Signature"), None)
    if sig is None:
        sig = root.find(f".//{{{_DS}}}Signature")
    if sig is None:
        return SignatureInfo(verdict="unsigned", reason="the DCC carries no ds:Signature")
    kind = "xades" if sig.find(f".//{{{_XADES}}}QualifyingProperties") is not None else "xmldsig"
    cert_els = sig.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS)
    if not cert_els:
        return _bad("malformed", "the signature carries no X.509 signer certificate (ds:X509Certificate)", kind)
    try:
        certs = [x509.load_der_x509_certificate(_b64(c)) for c in cert_els]
    except ValueError as exc:
        return _bad("malformed", f"a ds:X509Certificate cannot be read: {exc}", kind)
    refs = sig.findall("ds:SignedInfo/ds:Reference", _NS)
    signer = _xades_signer(sig, certs) or certs[0]
    from signxml import SignatureConfiguration, XMLVerifier
    from signxml.exceptions import InvalidDigest, InvalidInput, InvalidSignature, SignXMLException

    # signxml checks the certificate's validity at ``verification_time``; the time judgement is ours (at the
    # signing time, after the chain), so signxml is asked about a moment the certificate certainly covers.
    config = SignatureConfiguration(expect_references=True, verification_time=signer.not_valid_before_utc)
    try:
        XMLVerifier().verify(root, x509_cert=signer, expect_config=config)
    except InvalidDigest as exc:
        return _bad(
            "tampered", f"a ds:Reference digest does not match the signed content: {exc}", kind, signer, len(refs)
        )
    except InvalidSignature as exc:
        return _bad(
            "tampered", f"the signature value does not verify over ds:SignedInfo: {exc}", kind, signer, len(refs)
        )
    except (InvalidInput, SignXMLException, ValueError) as exc:
        return _bad("malformed", f"the signature cannot be processed: {exc}", kind, signer, len(refs))
    uris = [r.get("URI") for r in refs]
    root_ids = {root.get(a) for a in ("id", "Id", "ID") if root.get(a)}
    if not any(u in ("", "#xpointer(/)") or (u and u.startswith("#") and u[1:] in root_ids) for u in uris):
        # every digest matches, but what is signed is not the certificate: its results could be changed freely
        return _bad(
            "malformed",
            f"the signature does not cover the certificate: its references ({', '.join(map(repr, uris))}) sign only "
            'part of the document, not the whole DCC (URI="")',
            kind,
            signer,
            len(refs),
        )
    ev = _Evidence(kind=kind, signer=signer, certs=certs, references=len(refs))
    _xades_evidence(sig, ev)
    return _judge(ev, _store(trust, trust_roots), trusted_signers, now)


def _xades_signer(sig: etree._Element, certs: list[x509.Certificate]) -> x509.Certificate | None:
    """The certificate named by ``xades:SigningCertificate(V2)`` (the others in KeyInfo are the chain)."""
    digests = sig.findall(".//xades:SigningCertificate/xades:Cert/xades:CertDigest", _NS) + sig.findall(
        ".//xades:SigningCertificateV2/xades:Cert/xades:CertDigest", _NS
    )
    for d in digests:
        method = d.find("ds:DigestMethod", _NS)
        algo = (method.get("Algorithm") or "") if method is not None else ""
        name = (
            "sha512" if "sha512" in algo else "sha384" if "sha384" in algo else "sha1" if "sha1" in algo else "sha256"
        )
        want = _b64(d.find("ds:DigestValue", _NS))
        for c in certs:
            if hashlib.new(name, c.public_bytes(serialization.Encoding.DER)).digest() == want:
                return c
    return certs[0] if len(certs) == 1 else None


def _xades_evidence(sig: etree._Element, ev: _Evidence) -> None:
    """Signing time (timestamp, else SigningTime), embedded certificates and revocation values of a XAdES signature."""
    for el in sig.findall(".//xades:CertificateValues/xades:EncapsulatedX509Certificate", _NS):
        try:
            ev.certs.append(x509.load_der_x509_certificate(_b64(el)))
        except ValueError:
            ev.notes.append("an embedded certificate value is unreadable and was ignored")
    for el in sig.findall(".//xades:RevocationValues/xades:CRLValues/xades:EncapsulatedCRLValue", _NS):
        try:
            ev.crls.append(x509.load_der_x509_crl(_b64(el)))
        except ValueError:
            ev.notes.append("an embedded CRL is unreadable and was ignored")
    for el in sig.findall(".//xades:RevocationValues/xades:OCSPValues/xades:EncapsulatedOCSPValue", _NS):
        try:
            ev.ocsp.append(_Ocsp.load(_b64(el)))
        except ValueError:
            ev.notes.append("an embedded OCSP response is unreadable and was ignored")
    sig_value = sig.find("ds:SignatureValue", _NS)
    for ts in sig.findall(".//xades:SignatureTimeStamp", _NS):
        token = ts.find("xades:EncapsulatedTimeStamp", _NS)
        if token is None or sig_value is None:
            continue
        c14n = ts.find("ds:CanonicalizationMethod", _NS)
        covered = _c14n(sig_value, c14n.get("Algorithm") if c14n is not None else None)
        stamp, problem = _timestamp_time(_b64(token), covered)
        if stamp is not None:
            ev.timestamp = stamp
            break
        ev.notes.append(f"signature timestamp ignored: {problem}")
    st = sig.find(".//xades:SignedProperties//xades:SigningTime", _NS)
    if st is not None and st.text:
        try:
            claimed = dt.datetime.fromisoformat(st.text.strip().replace("Z", "+00:00"))
        except ValueError:
            ev.notes.append(f"xades:SigningTime {st.text.strip()!r} is not a date-time and was ignored")
            return
        ev.claimed_time = claimed if claimed.tzinfo is not None else claimed.replace(tzinfo=dt.UTC)


def _c14n(el: etree._Element, algorithm: str | None) -> bytes:
    algorithm = algorithm or "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    exclusive = "xml-exc-c14n" in algorithm
    with_comments = algorithm.endswith("#WithComments")
    return etree.tostring(el, method="c14n", exclusive=exclusive, with_comments=with_comments)


# ----------------------------------------------------------------------------------------------- CMS


def is_cms(data: bytes) -> bool:
    """True when ``data`` is a DER CMS ContentInfo of type signedData (a ``.p7m``)."""
    return data[:1] == b"\x30" and _OID_SIGNED_DATA in data[:32]


def unwrap_cms(data: bytes) -> bytes:
    """The encapsulated content of a CMS signedData (``.p7m``); raises :class:`MalformedInput` if there is none."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            raise MalformedInput(f"CMS content is {info['content_type'].native!r}, not signed data")
        content = info["content"]["encap_content_info"]["content"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedInput(f"CMS (.p7m) structure cannot be read: {exc}") from exc
    if not content:
        raise MalformedInput("CMS (.p7m) is a detached signature: it carries no content to parse")
    return bytes(content)


_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# BSI TR-03111 plain ECDSA (r || s): ecdsa-plain-SHA256 etc.
_PLAIN_ECDSA = {"0.4.0.127.0.7.1.1.4.1.2": "sha224", "0.4.0.127.0.7.1.1.4.1.3": "sha256",
                "0.4.0.127.0.7.1.1.4.1.4": "sha384", "0.4.0.127.0.7.1.1.4.1.5": "sha512"}  # fmt: skip


def _signer_info_ok(signer_info: Any, cert: x509.Certificate, content: bytes) -> tuple[bool, str | None]:
    """Check message digest (``tampered`` when wrong) and the signature over the signed attributes."""
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        return False, f"unsupported digest algorithm {digest_name}"
    h = hashes.Hash(_HASHES[digest_name]())
    h.update(content)
    signed_attrs = signer_info["signed_attrs"]
    if signed_attrs.native is not None and len(signed_attrs):
        md = next((a["values"][0].native for a in signed_attrs if a["type"].native == "message_digest"), None)
        if md != h.finalize():
            return False, "the message digest does not match the signed content"
        # signed over the SET OF as received (never re-encoded: asn1crypto's re-encoding can differ), with the
        # universal SET tag instead of the [0] IMPLICIT one
        to_verify = b"\x31" + signed_attrs.dump()[1:]
    else:
        to_verify = content
    sig = signer_info["signature"].native
    algo = signer_info["signature_algorithm"]["algorithm"].dotted
    public_key = cert.public_key()
    hash_alg = _HASHES[digest_name]()
    if algo in _PLAIN_ECDSA:
        half = len(sig) // 2
        sig = encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))
        hash_alg = _HASHES[_PLAIN_ECDSA[algo]]()
    if isinstance(public_key, rsa.RSAPublicKey) and "pss" in signer_info["signature_algorithm"]["algorithm"].native:
        try:
            public_key.verify(sig, to_verify, padding.PSS(padding.MGF1(hash_alg), padding.PSS.AUTO), hash_alg)
        except InvalidSignature:
            return False, "the signature value does not verify"
        return True, None
    if not _verify_with(public_key, sig, to_verify, hash_alg):
        return False, "the signature value does not verify"
    return True, None


def _cms_signer(signed_data: Any, certs: list[x509.Certificate]) -> tuple[Any, x509.Certificate | None]:
    signer_info = signed_data["signer_infos"][0]
    sid = signer_info["sid"]
    for c in certs:
        if sid.name == "issuer_and_serial_number":
            if (
                c.serial_number == sid.chosen["serial_number"].native
                and c.issuer.public_bytes() == sid.chosen["issuer"].dump()
            ):  # DER comparison: works for strictly and laxly parsed certificates
                return signer_info, c
        else:
            try:
                ski = c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
            except x509.ExtensionNotFound:
                continue
            if ski == sid.chosen.native:
                return signer_info, c
    return signer_info, None


def _cms_certs(signed_data: Any) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for c in signed_data["certificates"] or []:
        if c.name == "certificate":
            try:
                out.append(x509.load_der_x509_certificate(c.chosen.dump()))
            except ValueError:  # e.g. NULL parameters after ecdsa-with-SHA256, which cryptography refuses
                out.append(_LaxCertificate(c.chosen))  # type: ignore[arg-type]
    return out


class _LaxCertificate:
    """The parts of :class:`x509.Certificate` the judgement uses, read by asn1crypto from a certificate that
    cryptography's strict DER parser refuses (real qualified certificates carry such encodings)."""

    def __init__(self, cert: Any) -> None:
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        self._cert = cert
        self._der = cert.dump()
        tbs = cert["tbs_certificate"]
        self.serial_number = tbs["serial_number"].native
        self.subject = _LaxName(tbs["subject"])
        self.issuer = _LaxName(tbs["issuer"])
        self.not_valid_before_utc = tbs["validity"]["not_before"].native
        self.not_valid_after_utc = tbs["validity"]["not_after"].native
        self._key = load_der_public_key(tbs["subject_public_key_info"].dump())
        self.extensions = x509.Extensions([])

    def public_key(self) -> Any:
        return self._key

    def fingerprint(self, algorithm: hashes.HashAlgorithm) -> bytes:
        h = hashes.Hash(algorithm)
        h.update(self._der)
        return h.finalize()

    def public_bytes(self, encoding: serialization.Encoding) -> bytes:
        return self._der

    def verify_directly_issued_by(self, issuer: x509.Certificate) -> None:
        algo = self._cert["signature_algorithm"]
        hash_name = algo.hash_algo
        if hash_name not in _HASHES:
            raise UnsupportedAlgorithm(hash_name)
        tbs = self._cert["tbs_certificate"].dump()
        if not _verify_with(issuer.public_key(), self._cert["signature_value"].native, tbs, _HASHES[hash_name]()):
            raise InvalidSignature("certificate signature does not verify")


class _LaxName:
    """An X.509 name compared by its DER encoding, like :class:`x509.Name` (``rfc4514_string`` for messages)."""

    def __init__(self, name: Any) -> None:
        self._name = name
        self._der = name.dump()

    def public_bytes(self, backend: Any = None) -> bytes:
        return self._der

    def rfc4514_string(self) -> str:
        return self._name.human_friendly

    def __eq__(self, other: object) -> bool:
        public_bytes = getattr(other, "public_bytes", None)
        return public_bytes is not None and public_bytes() == self._der

    def __hash__(self) -> int:
        return hash(self._der)


def _timestamp_time(token: bytes, covered: bytes) -> tuple[_Timestamp | None, str | None]:
    """An RFC 3161 token whose imprint is the hash of ``covered`` and whose signature verifies (its TSA's trust is
    judged later, against the store: :func:`_signing_time`)."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(token)
        sd = info["content"]
        tst_bytes = sd["encap_content_info"]["content"].contents
        tst = tsp.TSTInfo.load(tst_bytes)
        imprint = tst["message_imprint"]
        algo = imprint["hash_algorithm"]["algorithm"].native
        if algo not in _HASHES:
            return None, f"unsupported imprint hash {algo}"
        h = hashes.Hash(_HASHES[algo]())
        h.update(covered)
        if imprint["hashed_message"].native != h.finalize():
            return None, "the timestamp imprint does not cover this signature value"
        certs = _cms_certs(sd)
        signer_info, tsa = _cms_signer(sd, certs)
        if tsa is None:
            return None, "the timestamp token does not carry its TSA certificate"
        ok, problem = _signer_info_ok(signer_info, tsa, tst_bytes)
        if not ok:
            return None, f"timestamp token: {problem}"
        return _Timestamp(gen_time=tst["gen_time"].native, tsa=tsa, certs=tuple(certs)), None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return None, f"unreadable timestamp token ({exc})"


def verify_cms_signature(
    data: bytes,
    *,
    trust_roots: Sequence[bytes | x509.Certificate] = (),
    trust: TrustStore | None = None,
    trusted_signers: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> SignatureInfo:
    """Verdict for a CMS signedData with encapsulated content (``.p7m``): digest, signature, time, chain, revocation.

    Signing time: the unsigned ``signatureTimeStampToken`` when its imprint covers the signature, else the
    signed ``signingTime`` attribute. Revocation: CRLs in the ``crls`` field and the CAdES
    ``revocationValues`` unsigned attribute (CRLs, basic OCSP responses).
    """
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(data)
        sd = info["content"]
        content = bytes(sd["encap_content_info"]["content"].native or b"")
        certs = _cms_certs(sd)
        signer_info, signer = _cms_signer(sd, certs)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return _bad("malformed", f"CMS signature cannot be read: {exc}", "cms")
    if signer is None:
        return _bad("malformed", "the CMS signature does not carry its signer certificate", "cms")
    ok, problem = _signer_info_ok(signer_info, signer, content)
    if not ok:
        verdict = "malformed" if problem and problem.startswith("unsupported") else "tampered"
        return _bad(verdict, f"CMS: {problem}", "cms", signer, 1)
    ev = _Evidence(kind="cms", signer=signer, certs=certs, references=1)
    for crl in sd["crls"] or []:
        if crl.name == "crl":
            ev.crls.append(x509.load_der_x509_crl(crl.chosen.dump()))
    for attr in signer_info["unsigned_attrs"] or []:
        oid = attr["type"].dotted
        if oid == "1.2.840.113549.1.9.16.2.14" and ev.timestamp is None:  # signatureTimeStampToken
            stamp, note = _timestamp_time(attr["values"][0].dump(), signer_info["signature"].native)
            if stamp is not None:
                ev.timestamp = stamp
            else:
                ev.notes.append(f"signature timestamp ignored: {note}")
        elif oid == "1.2.840.113549.1.9.16.2.24":  # revocationValues
            _cades_revocation_values(attr["values"][0], ev)
    for attr in signer_info["signed_attrs"] or []:
        if attr["type"].native == "signing_time":
            ev.claimed_time = attr["values"][0].native
    return _judge(ev, _store(trust, trust_roots), trusted_signers, now)


def _cades_revocation_values(value: Any, ev: _Evidence) -> None:
    """CAdES RevocationValues ::= SEQUENCE { crlVals [0] SEQUENCE OF CertificateList OPTIONAL, ocspVals [1]
    SEQUENCE OF BasicOCSPResponse OPTIONAL, ... } read from its DER (asn1crypto has no class for it)."""
    from asn1crypto import parser

    def items(der: bytes) -> list[bytes]:
        out, pos = [], 0
        while pos < len(der):
            _cls, _method, _tag, header, contents, trailer = parser.parse(der[pos:])[:6]
            out.append(header + contents + trailer)
            pos += len(header) + len(contents) + len(trailer)
        return out

    try:
        outer = parser.parse(value.dump())[4]
        for field_der in items(outer):
            _cls, _method, tag, _h, inner = parser.parse(field_der)[:5]
            seq_contents = parser.parse(inner)[4]  # [n] EXPLICIT SEQUENCE OF ...
            for raw in items(seq_contents):
                if tag == 0:
                    ev.crls.append(x509.load_der_x509_crl(raw))
                elif tag == 1:
                    ev.ocsp.append(_Ocsp.load(raw))
    except (ValueError, TypeError, KeyError) as exc:
        ev.notes.append(f"embedded revocation values unreadable ({exc})")


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


# ----------------------------------------------------------------------------------------------- PDF


def verify_pdf_signature(
    data: bytes,
    *,
    trust_roots: Sequence[bytes | x509.Certificate] = (),
    trust: TrustStore | None = None,
    trusted_signers: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> SignatureInfo:
    """Verdict for the last signature of a PDF (PAdES): pyHanko checks the byte range, the digest, the signature
    value and modifications after signing; the time/chain/revocation judgement is the same as for XML and CMS
    (timestamp token or signed signingTime; DSS / adbe-revocationInfoArchival revocation data).
    """
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted:
            raise MalformedInput("this PDF is password-protected: its signatures cannot be checked")
        sigs = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        raise MalformedInput(f"PDF cannot be read for signature validation: {exc}") from exc
    if not sigs:
        return SignatureInfo(verdict="unsigned", reason="the PDF carries no signature field with a signature")
    sig = sigs[-1]
    # pyHanko is asked only about integrity (byte range, digest, signature value, later modifications): the
    # signer itself is its trust root, so its path building does not fail (and log) on a chain we judge below
    # at the signing time, with our own anchors.
    own = sig.signer_cert
    try:
        ctx = ValidationContext(trust_roots=[own] if own is not None else [], allow_fetching=False)
        status = validate_pdf_signature(sig, ctx)
    except MemoryError:  # the guarded child's memory cap (parsers.guarded), not a verdict on the signature
        raise
    except Exception as exc:
        return _bad("malformed", f"the PDF signature cannot be processed: {exc}", "pades")
    signer_asn1 = status.signing_cert
    if signer_asn1 is None:
        return _bad("malformed", "the PDF signature carries no signer certificate", "pades")
    signer = x509.load_der_x509_certificate(signer_asn1.dump())
    if not status.intact:
        return _bad("tampered", "the signed byte range does not match the signed digest", "pades", signer, 1)
    if not status.valid:
        return _bad("tampered", "the signature value does not verify over the signed attributes", "pades", signer, 1)
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        level = status.modification_level.name if status.modification_level is not None else "unknown"
        if level not in ("NONE", "LTA_UPDATES"):
            return _bad(
                "tampered", f"content was changed after signing (modification level {level})", "pades", signer, 1
            )
    signed_data = sig.signed_data
    ev = _Evidence(kind="pades", signer=signer, certs=_cms_certs(signed_data), references=1)
    signer_info = signed_data["signer_infos"][0]
    for attr in signer_info["unsigned_attrs"] or []:
        if attr["type"].dotted == "1.2.840.113549.1.9.16.2.14":
            stamp, note = _timestamp_time(attr["values"][0].dump(), signer_info["signature"].native)
            if stamp is not None:
                ev.timestamp = stamp
            else:
                ev.notes.append(f"signature timestamp ignored: {note}")
    ev.claimed_time = status.signer_reported_dt
    try:
        for attr in signer_info["signed_attrs"] or []:
            if attr["type"].native == "adobe_revocation_info_archival":
                archival = attr["values"][0]
                for c in archival["crl"] or []:
                    ev.crls.append(x509.load_der_x509_crl(c.dump()))
                for o in archival["ocsp"] or []:
                    ev.ocsp.append(_Ocsp.load(o.dump()))
        _pdf_dss(reader, ev)
    except (ValueError, KeyError, TypeError) as exc:  # revocation data we cannot read is not revocation data
        ev.notes.append(f"embedded revocation data unreadable and ignored ({exc})")
    return _judge(ev, _store(trust, trust_roots), trusted_signers, now)


def _pdf_dss(reader: Any, ev: _Evidence) -> None:
    """Certificates, CRLs and OCSP responses of the document security store (PAdES LT/LTA)."""
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except MemoryError:  # a DSS inflating past the guarded child's memory cap: refused, never silently skipped
        raise
    except Exception:  # pyHanko's own decode limits included: a DSS we cannot read is not revocation data
        return
    for c in dss.certs.values():
        ev.certs.append(x509.load_der_x509_certificate(c.dump()))
    for c in dss.crls:
        ev.crls.append(x509.load_der_x509_crl(c.get_object().data))
    for o in dss.ocsps:
        ev.ocsp.append(_Ocsp.load(o.get_object().data))


# ----------------------------------------------------------------------------------------------- dispatch


def verify_report_signature(
    data: bytes,
    fmt: str,
    *,
    trust: TrustStore | None = None,
    trust_roots: Sequence[bytes | x509.Certificate] = (),
    trusted_signers: Mapping[str, str] | None = None,
    limits: Limits | None = None,
    now: dt.datetime | None = None,
) -> SignatureInfo:
    """The verdict for a report file of format ``fmt`` (``pdf`` or ``dcc``; a ``.p7m`` DCC is judged on its CMS)."""
    kw: dict[str, Any] = {"trust": trust, "trust_roots": trust_roots, "trusted_signers": trusted_signers, "now": now}
    if fmt == "pdf":
        return verify_pdf_signature(data, **kw)
    if is_cms(data):
        return verify_cms_signature(data, **kw)
    return verify_dcc_signature(data, limits=limits, **kw)


def verify_report_signature_from_der(
    data: bytes,
    *,
    fmt: str,
    trust_der: tuple[Sequence[bytes], Sequence[bytes], Sequence[bytes]],
    trusted_signers: Mapping[str, str],
    limits: Limits,
) -> SignatureInfo:
    """:func:`verify_report_signature` with the trust store as :meth:`TrustStore.to_der` bytes: the body of
    :func:`parsers.guarded.verify_signature_guarded`'s child process."""
    return verify_report_signature(
        data, fmt, trust=TrustStore.from_der(trust_der), trusted_signers=trusted_signers, limits=limits
    )


def attach_signature(report: LabReport, info: SignatureInfo) -> LabReport:
    """Return a copy of ``report`` carrying the signature verdict."""
    return report.model_copy(update={"signature": info})
