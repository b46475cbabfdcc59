"""Signature verdicts: PDF via pyHanko, DCC via signxml; certificates generated at test time."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from parsers.signatures import verify_dcc_signature, verify_pdf_signature

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "qcn test")]
    )


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(cn: str, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict:
    ca_key, ca = _ca("qcn Test Root CA")
    lab_key, lab = _leaf("Rhein Materials Testing GmbH signer", ca_key, ca)
    rogue_ca_key, rogue_ca = _ca("Rogue CA")
    rogue_key, rogue = _leaf("Rogue signer", rogue_ca_key, rogue_ca)
    d = tmp_path_factory.mktemp("pki")
    out = {"ca": ca, "lab": lab, "rogue": rogue, "dir": d}
    for name, key, cert in (("lab", lab_key, lab), ("rogue", rogue_key, rogue)):
        (d / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (d / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[f"{name}_key"] = key
    out["ca_pem"] = ca.public_bytes(serialization.Encoding.PEM)
    out["lab_fp"] = lab.fingerprint(hashes.SHA256()).hex()
    return out


def _sign_pdf(pdf: bytes, pki: dict, who: str) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    signer = signers.SimpleSigner.load(str(pki["dir"] / f"{who}.key"), str(pki["dir"] / f"{who}.crt"))
    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    out = signers.sign_pdf(w, signers.PdfSignatureMetadata(field_name="LabSignature"), signer=signer)
    return out.getvalue()


@pytest.fixture(scope="module")
def signed_pdf(pki: dict) -> bytes:
    return _sign_pdf((FIXTURES / "coating_thickness_report.pdf").read_bytes(), pki, "lab")


def test_unsigned_pdf_is_unsigned() -> None:
    info = verify_pdf_signature((FIXTURES / "coating_thickness_report.pdf").read_bytes())
    assert info.verdict == "unsigned"
    assert info.signer_sha256 is None


def test_signed_pdf_is_intact_and_tied_to_registered_lab(pki: dict, signed_pdf: bytes) -> None:
    info = verify_pdf_signature(signed_pdf, trust_roots=[pki["ca_pem"]], trusted_signers={pki["lab_fp"]: "lab-7"})
    assert info.verdict == "intact", info.detail
    assert info.signer_sha256 == pki["lab_fp"]
    assert "Rhein Materials Testing GmbH signer" in (info.signer_subject or "")
    assert info.lab_id == "lab-7"


def test_signed_pdf_with_unregistered_fingerprint_is_untrusted(pki: dict, signed_pdf: bytes) -> None:
    info = verify_pdf_signature(signed_pdf, trust_roots=[pki["ca_pem"]], trusted_signers={"00" * 32: "lab-1"})
    assert info.verdict == "untrusted_signer"
    assert info.lab_id is None


def test_pdf_signed_by_unknown_ca_is_untrusted(pki: dict) -> None:
    rogue = _sign_pdf((FIXTURES / "coating_thickness_report.pdf").read_bytes(), pki, "rogue")
    info = verify_pdf_signature(rogue, trust_roots=[pki["ca_pem"]])
    assert info.verdict == "untrusted_signer"
    assert info.signer_sha256 == pki["rogue"].fingerprint(hashes.SHA256()).hex()


def test_tampered_signed_pdf_is_modified_after_signing(pki: dict, signed_pdf: bytes) -> None:
    # change a result value inside the signed byte range ("86.4" -> "96.4" in the content stream is
    # compressed, so flip a byte of the uncompressed /Title in the info dict instead)
    pos = signed_pdf.find(b"coating_thickness_report")
    assert pos > 0
    tampered = signed_pdf[:pos] + b"C" + signed_pdf[pos + 1 :]
    info = verify_pdf_signature(tampered, trust_roots=[pki["ca_pem"]])
    assert info.verdict == "modified_after_signing"


def test_pdf_with_content_appended_after_signing_is_modified(pki: dict, signed_pdf: bytes) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    w = IncrementalPdfFileWriter(io.BytesIO(signed_pdf))
    page = w.root["/Pages"]["/Kids"][0].get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 100 100 Td (FORGED 99.9) Tj ET")
    page["/Contents"] = w.add_object(stream)
    w.update_container(page)
    out = io.BytesIO()
    w.write(out)
    info = verify_pdf_signature(out.getvalue(), trust_roots=[pki["ca_pem"]])
    assert info.verdict == "modified_after_signing"


def _sign_dcc(pki: dict, who: str) -> bytes:
    from lxml import etree
    from signxml import XMLSigner, methods

    root = etree.fromstring((FIXTURES / "ptb" / "example.xml").read_bytes())
    key_pem = pki[f"{who}_key"].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = pki[who].public_bytes(serialization.Encoding.PEM)
    signed = XMLSigner(method=methods.enveloped, signature_algorithm="ecdsa-sha256", digest_algorithm="sha256").sign(
        root, key=key_pem, cert=[cert_pem]
    )
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def test_dcc_signature_verdicts(pki: dict) -> None:
    signed = _sign_dcc(pki, "lab")
    ok = verify_dcc_signature(signed, trust_roots=[pki["ca_pem"]], trusted_signers={pki["lab_fp"]: "lab-7"})
    assert ok.verdict == "intact", ok.detail
    assert ok.lab_id == "lab-7"
    assert ok.signer_sha256 == pki["lab_fp"]

    tampered = signed.replace(b"PTB - 11044 17", b"PTB - 11044 18", 1)
    assert tampered != signed
    assert verify_dcc_signature(tampered, trust_roots=[pki["ca_pem"]]).verdict == "modified_after_signing"

    rogue = _sign_dcc(pki, "rogue")
    assert verify_dcc_signature(rogue, trust_roots=[pki["ca_pem"]]).verdict == "untrusted_signer"


def test_unsigned_dcc_is_unsigned() -> None:
    info = verify_dcc_signature((FIXTURES / "ptb" / "example.xml").read_bytes())
    assert info.verdict == "unsigned"
