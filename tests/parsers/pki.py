"""A test PKI built at test time (root CA, intermediate, lab certificates) and signers for DCC XML and PDF.

Certificates: ``root`` -> ``intermediate`` -> ``lab`` (valid), ``revoked`` (listed on the intermediate's CRL
since before the signing time), ``expired`` (validity ended before the signing time), ``expired_now`` (valid
at the signing time, expired today: a verifier must call its signature valid); ``stranger`` is issued by a root
outside the trust store.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import tsp  # noqa: F401 - registers the tst_info content type before any CMS is built or read
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

__all__ = [
    "NOW",
    "Pki",
    "add_signature_timestamp",
    "dss_bomb_pdf",
    "inflating_stream",
    "large_signed_dcc",
    "make_pki",
    "ocsp_response",
    "sign_dcc",
    "sign_dcc_part",
    "sign_pdf",
    "sign_pdf_lt",
    "time_stamp_authority",
]

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
_XADES = "http://uri.etsi.org/01903/v1.3.2#"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "qcn test PKI")]
    )


def _key_usage(ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Issued:
    key: Any  # EC P-256, RSA for the TSA (pyHanko's in-process TSA signs with RSA only)
    cert: x509.Certificate

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _issue(
    cn: str,
    issuer: Issued | None,
    *,
    ca: bool,
    not_before: dt.datetime,
    not_after: dt.datetime,
    rsa_key: bool = False,
) -> Issued:
    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if rsa_key
        else ec.generate_private_key(ec.SECP256R1())
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(_key_usage(ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.cert.public_key()), critical=False
        )
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(key, cert)


@dataclass
class Pki:
    root: Issued
    intermediate: Issued
    lab: Issued
    revoked: Issued
    expired: Issued
    expired_now: Issued
    stranger: Issued
    crl: x509.CertificateRevocationList
    revoked_at: dt.datetime
    extra: dict[str, Issued] = field(default_factory=dict)

    def trust_dir(self, path: Path, *, with_crl: bool = False) -> Path:
        """A trust dir as an operator would lay it out: the root as anchor, the intermediate, optionally the CRL."""
        path.mkdir(parents=True, exist_ok=True)
        (path / "root.pem").write_bytes(self.root.pem())
        (path / "intermediate.crt").write_bytes(self.intermediate.cert.public_bytes(serialization.Encoding.DER))
        if with_crl:
            (path / "intermediate.crl").write_bytes(self.crl.public_bytes(serialization.Encoding.PEM))
        return path


def make_pki() -> Pki:
    year = dt.timedelta(days=365)
    root = _issue("qcn Test Root CA", None, ca=True, not_before=NOW - 5 * year, not_after=NOW + 10 * year)
    inter = _issue("qcn Test Lab CA", root, ca=True, not_before=NOW - 4 * year, not_after=NOW + 5 * year)
    lab = _issue("Rhein Calibration Lab signer", inter, ca=False, not_before=NOW - year, not_after=NOW + year)
    revoked = _issue("Revoked Lab signer", inter, ca=False, not_before=NOW - year, not_after=NOW + year)
    expired = _issue("Expired Lab signer", inter, ca=False, not_before=NOW - 2 * year, not_after=NOW - year)
    expired_now = _issue(
        "Lab signer, expired since", inter, ca=False, not_before=NOW - 2 * year, not_after=NOW - dt.timedelta(days=30)
    )
    other_root = _issue("Somebody Else Root CA", None, ca=True, not_before=NOW - year, not_after=NOW + year)
    stranger = _issue("Unknown Lab signer", other_root, ca=False, not_before=NOW - year, not_after=NOW + year)
    revoked_at = NOW - dt.timedelta(days=10)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(inter.cert.subject)
        .last_update(NOW - dt.timedelta(days=1))
        .next_update(NOW + dt.timedelta(days=30))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revoked.cert.serial_number)
            .revocation_date(revoked_at)
            .build()
        )
        .sign(inter.key, hashes.SHA256())
    )
    return Pki(root, inter, lab, revoked, expired, expired_now, stranger, crl, revoked_at, {"other_root": other_root})


def sign_dcc(
    xml: bytes,
    signer: Issued,
    chain: list[x509.Certificate],
    *,
    signing_time: dt.datetime = NOW,
    embed_crl: x509.CertificateRevocationList | None = None,
    embed_ocsp: bytes | None = None,
) -> bytes:
    """XAdES-BES enveloped signature (signxml) with two references: the document and the signed properties.

    ``embed_crl`` adds ``xades:UnsignedProperties/.../RevocationValues`` (as an LT signature carries it).
    """
    from signxml import SignatureConstructionMethod
    from signxml.xades import XAdESSigner

    class _Signer(XAdESSigner):
        def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):  # type: ignore[no-untyped-def]
            el = etree.SubElement(signed_signature_properties, f"{{{_XADES}}}SigningTime")
            el.text = signing_time.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    root = etree.fromstring(xml)
    certs = [signer.cert, *chain]
    signed = _Signer(
        method=SignatureConstructionMethod.enveloped, signature_algorithm="ecdsa-sha256", digest_algorithm="sha256"
    ).sign(root, key=signer.key, cert=[c.public_bytes(serialization.Encoding.PEM).decode() for c in certs])
    if embed_crl is not None or embed_ocsp is not None:
        qp = signed.find(f".//{{{_XADES}}}QualifyingProperties")
        assert qp is not None
        unsigned = etree.SubElement(qp, f"{{{_XADES}}}UnsignedProperties")
        usp = etree.SubElement(unsigned, f"{{{_XADES}}}UnsignedSignatureProperties")
        rv = etree.SubElement(usp, f"{{{_XADES}}}RevocationValues")
        if embed_crl is not None:
            crls = etree.SubElement(rv, f"{{{_XADES}}}CRLValues")
            enc = etree.SubElement(crls, f"{{{_XADES}}}EncapsulatedCRLValue")
            enc.text = base64.b64encode(embed_crl.public_bytes(serialization.Encoding.DER)).decode()
        if embed_ocsp is not None:
            ocsps = etree.SubElement(rv, f"{{{_XADES}}}OCSPValues")
            enc = etree.SubElement(ocsps, f"{{{_XADES}}}EncapsulatedOCSPValue")
            enc.text = base64.b64encode(embed_ocsp).decode()
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def time_stamp_authority(pki: Pki) -> Issued:
    """A TSA certificate (extendedKeyUsage timeStamping) issued by the test root."""
    year = dt.timedelta(days=365)
    return _issue("qcn Test TSA", pki.root, ca=False, not_before=NOW - 3 * year, not_after=NOW + 3 * year, rsa_key=True)


def add_signature_timestamp(signed_xml: bytes, tsa: Issued, chain: list[x509.Certificate], at: dt.datetime) -> bytes:
    """Add a XAdES ``SignatureTimeStamp`` (RFC 3161 token from pyHanko's in-process TSA, time ``at``) over the
    canonicalised ``ds:SignatureValue`` (exclusive c14n), as a XAdES-T signature carries it."""
    import asyncio
    import hashlib

    from asn1crypto import keys as a_keys
    from asn1crypto import x509 as a_x509
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    def a_cert(c: x509.Certificate) -> a_x509.Certificate:
        return a_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

    root = etree.fromstring(signed_xml)
    ds = "http://www.w3.org/2000/09/xmldsig#"
    sig_value = root.find(f".//{{{ds}}}SignatureValue")
    assert sig_value is not None
    c14n = "http://www.w3.org/2001/10/xml-exc-c14n#"
    digest = hashlib.sha256(etree.tostring(sig_value, method="c14n", exclusive=True)).digest()
    key_der = tsa.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    stamper = DummyTimeStamper(
        tsa_cert=a_cert(tsa.cert),
        tsa_key=a_keys.PrivateKeyInfo.load(key_der),
        certs_to_embed=SimpleCertificateStore.from_certs([a_cert(c) for c in chain]),
        fixed_dt=at,
    )
    token = asyncio.run(stamper.async_timestamp(digest, "sha256")).dump()
    qp = root.find(f".//{{{_XADES}}}QualifyingProperties")
    assert qp is not None
    unsigned = qp.find(f"{{{_XADES}}}UnsignedProperties")
    if unsigned is None:
        unsigned = etree.SubElement(qp, f"{{{_XADES}}}UnsignedProperties")
    usp = unsigned.find(f"{{{_XADES}}}UnsignedSignatureProperties")
    if usp is None:
        usp = etree.SubElement(unsigned, f"{{{_XADES}}}UnsignedSignatureProperties")
    ts = etree.Element(f"{{{_XADES}}}SignatureTimeStamp")
    usp.insert(0, ts)
    etree.SubElement(ts, f"{{{ds}}}CanonicalizationMethod", Algorithm=c14n)
    etree.SubElement(ts, f"{{{_XADES}}}EncapsulatedTimeStamp").text = base64.b64encode(token).decode()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def ocsp_response(pki: Pki, subject: Issued, *, revoked: bool) -> bytes:
    """A basic OCSP response about ``subject``, signed by its issuing CA (the intermediate) itself."""
    from cryptography.x509 import ocsp

    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=subject.cert,
        issuer=pki.intermediate.cert,
        algorithm=hashes.SHA256(),
        cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
        this_update=NOW - dt.timedelta(hours=1),
        next_update=NOW + dt.timedelta(days=1),
        revocation_time=pki.revoked_at if revoked else None,
        revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
    )
    resp = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, pki.intermediate.cert).sign(
        pki.intermediate.key, hashes.SHA256()
    )
    return resp.public_bytes(serialization.Encoding.DER)


def sign_dcc_part(xml: bytes, signer: Issued, chain: list[x509.Certificate], element_id: str) -> bytes:
    """A plain XMLDSig enveloped signature whose only reference is ``#element_id`` (part of the document)."""
    from signxml import SignatureConstructionMethod, XMLSigner

    signed = XMLSigner(
        method=SignatureConstructionMethod.enveloped, signature_algorithm="ecdsa-sha256", digest_algorithm="sha256"
    ).sign(
        etree.fromstring(xml),
        key=signer.key,
        cert=[c.public_bytes(serialization.Encoding.PEM).decode() for c in (signer.cert, *chain)],
        reference_uri=f"#{element_id}",
    )
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def sign_pdf(pdf: bytes, signer: Issued, chain: list[x509.Certificate]) -> bytes:
    """A PAdES signature by pyHanko (signing time = now, the chain in the CMS certificates)."""
    from asn1crypto import keys as a_keys
    from asn1crypto import x509 as a_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    def a_cert(c: x509.Certificate) -> a_x509.Certificate:
        return a_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

    key_der = signer.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    simple = signers.SimpleSigner(
        signing_cert=a_cert(signer.cert),
        signing_key=a_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([a_cert(c) for c in chain]),
    )
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)), signers.PdfSignatureMetadata(field_name="Lab"), signer=simple
    )
    return out.getvalue()


def sign_pdf_lt(pdf: bytes, pki: Pki, signer: Issued) -> bytes:
    """A PAdES signature with its revocation information embedded (pyHanko ``embed_validation_info``: the
    intermediate's CRL in the signed revocation-info attribute / DSS), as an LT signature carries it."""
    from asn1crypto import crl as a_crl
    from asn1crypto import keys as a_keys
    from asn1crypto import x509 as a_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    def a_cert(c: x509.Certificate) -> a_x509.Certificate:
        return a_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

    key_der = signer.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    simple = signers.SimpleSigner(
        signing_cert=a_cert(signer.cert),
        signing_key=a_keys.PrivateKeyInfo.load(key_der),
        cert_registry=SimpleCertificateStore.from_certs([a_cert(pki.intermediate.cert)]),
    )
    context = ValidationContext(
        trust_roots=[a_cert(pki.root.cert)],
        other_certs=[a_cert(pki.intermediate.cert)],
        crls=[a_crl.CertificateList.load(pki.crl.public_bytes(serialization.Encoding.DER))],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    meta = signers.PdfSignatureMetadata(field_name="Lab", embed_validation_info=True, validation_context=context)
    return signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=simple).getvalue()


def inflating_stream(megabytes: int, noise_per_mib: int = 0) -> bytes:
    """A zlib stream of ``megabytes`` MiB, built without compressing it all: each MiB is zeros, or with
    ``noise_per_mib`` > 0 one random block of that size repeated (about that many bytes per MiB once compressed).
    After a sync flush every further identical MiB compresses to the same bytes."""
    import os
    import zlib

    if noise_per_mib:
        block = os.urandom(noise_per_mib)
        mib = (block * ((1 << 20) // noise_per_mib + 1))[: 1 << 20]
    else:
        mib = bytes(1 << 20)
    packer = zlib.compressobj(9)
    first = packer.compress(mib) + packer.flush(zlib.Z_SYNC_FLUSH)
    repeated = packer.compress(mib) + packer.flush(zlib.Z_SYNC_FLUSH)
    adler = 1
    for _ in range(megabytes):
        adler = zlib.adler32(mib, adler)
    return first + repeated * (megabytes - 1) + packer.flush()[:-4] + adler.to_bytes(4, "big")


def dss_bomb_pdf(pdf: bytes, inflated_mb: int, noise_per_mib: int = 0) -> bytes:
    """``pdf`` with a document security store whose CRL stream inflates to ``inflated_mb`` MiB
    (:func:`inflating_stream`), then signed by the test PKI's lab. Only a signature check keeps the DSS's
    inflated bytes (the text parse counts them and drops them)."""
    import io

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    crl = generic.StreamObject(
        generic.DictionaryObject({generic.NameObject("/Filter"): generic.NameObject("/FlateDecode")}),
        encoded_data=inflating_stream(inflated_mb, noise_per_mib),
    )
    writer.root[generic.NameObject("/DSS")] = generic.DictionaryObject(
        {generic.NameObject("/CRLs"): generic.ArrayObject([writer.add_object(crl)])}
    )
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    pki = make_pki()
    return sign_pdf(out.getvalue(), pki.lab, [pki.intermediate.cert])


def large_signed_dcc(xml: bytes, extra_contents: int) -> bytes:
    """``xml`` (a DCC with the software name "Notepad++ (32-bit)") with ``extra_contents`` more content elements
    in its software entry (about 43 bytes each), signed by a fresh test PKI's lab. 200,000 of them make an 8.7 MB
    DCC whose parse needs about 100 MiB and whose signature check (canonicalisation) 400-500 MiB."""
    anchor = b"<dcc:content>Notepad++ (32-bit)</dcc:content>"
    assert anchor in xml
    extra = b"".join(b'<dcc:content lang="en">x%d</dcc:content>' % i for i in range(extra_contents))
    pki = make_pki()
    return sign_dcc(xml.replace(anchor, anchor + extra, 1), pki.lab, [pki.intermediate.cert])
