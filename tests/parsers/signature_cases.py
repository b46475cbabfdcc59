"""Every signature case with the verdict a verifier must reach: real public signed DCCs and the test PKI's files.

Shared by ``tests/parsers/test_signatures.py`` and the benchmark (``signature_verdicts_correct`` /
``signature_cases`` in ``bench/results/parsers.json``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import cms
from cryptography import x509

from parsers.signatures import TrustStore, load_trust_dir
from tests.parsers.pki import (
    NOW,
    add_signature_timestamp,
    make_pki,
    ocsp_response,
    sign_dcc,
    sign_dcc_part,
    sign_pdf,
    sign_pdf_lt,
    time_stamp_authority,
)

__all__ = ["PUBLIC", "SignatureCase", "all_cases", "pki_cases", "public_cases"]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
PUBLIC = FIXTURES / "dcc-public"


@dataclass(frozen=True)
class SignatureCase:
    name: str
    data: bytes
    fmt: str  # "dcc" or "pdf"
    trust: TrustStore
    expected: str
    now: dt.datetime | None = None  # verification time, for signatures without a signing time


def _pydcc_trust() -> TrustStore:
    # the consortium's CA plus the root of the time-stamping authority its LT signatures use (DFN, T-TeleSec)
    return load_trust_dir_files(PUBLIC / "pydcc", ("root.crt", "sub.crt", "tsa-root-T-TeleSec-GlobalRoot-Class-2.crt"))


def load_trust_dir_files(folder: Path, names: tuple[str, ...]) -> TrustStore:
    store = TrustStore()
    for n in names:
        cert = x509.load_pem_x509_certificate((folder / n).read_bytes())
        part = TrustStore(anchors=(cert,)) if cert.issuer == cert.subject else TrustStore(intermediates=(cert,))
        store = store.merged(part)
    return store


def _telesec_root(p7m: bytes) -> TrustStore:
    """The qualified root the .p7m's chain ends at (TeleSec qualified Root CA 1, a public root certificate)."""
    sd = cms.ContentInfo.load(p7m)["content"]
    roots = [c.chosen for c in sd["certificates"] if c.chosen.subject == c.chosen.issuer]
    return TrustStore(anchors=tuple(x509.load_der_x509_certificate(r.dump()) for r in roots))


def public_cases() -> list[SignatureCase]:
    """Real signed DCCs from public repositories (sources in tests/fixtures/reports/dcc-public/SOURCES.md)."""
    pydcc = _pydcc_trust()
    p = PUBLIC / "pydcc"
    lut = PUBLIC / "lutaml-dcc"
    lut_trust = TrustStore.of([(lut / "ca.pem").read_bytes()])
    p7m = (p / "examples_siliziumkugel___.xml.p7m").read_bytes()
    # the dcclib samples state no signing time: judged at a fixed moment inside the certificate's validity
    lut_now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    out = [
        SignatureCase("pydcc 3.1.1 signed", (p / "dcc_gp_temperature_typical_v12_signed.xml").read_bytes(), "dcc",
                      pydcc, "valid"),
        SignatureCase("pydcc 3.1.1 signed, manipulated",
                      (p / "dcc_gp_temperature_typical_v12_signed_manipulated.xml").read_bytes(), "dcc", pydcc,
                      "tampered"),
        SignatureCase("pydcc 3.2.0 signed", (p / "dcc_gp_temperature_typical_v12_v3.2.0_signed.xml").read_bytes(),
                      "dcc", pydcc, "valid"),
        SignatureCase("pydcc 3.2.0 signed LT (timestamp, CRLs)",
                      (p / "dcc_gp_temperature_typical_v12_v3.2.0_signed_lt.xml").read_bytes(), "dcc", pydcc, "valid"),
        SignatureCase("pydcc 3.2.0 signed LT, signer revoked",
                      (p / "dcc_gp_temperature_typical_v12_v3.2.0_signed_lt_revoked.xml").read_bytes(), "dcc", pydcc,
                      "revoked"),
        SignatureCase("pydcc 3.2.0 signed, manipulated",
                      (p / "dcc_gp_temperature_typical_v12_v3.2.0_signed_manipulated.xml").read_bytes(), "dcc", pydcc,
                      "tampered"),
        SignatureCase("pydcc 3.2.0 signed, no anchor in the trust store",
                      (p / "dcc_gp_temperature_typical_v12_v3.2.0_signed.xml").read_bytes(), "dcc", TrustStore(),
                      "untrusted"),
        SignatureCase("pydcc unsigned", (p / "dcc_gp_temperature_typical_v12.xml").read_bytes(), "dcc", pydcc,
                      "unsigned"),
        SignatureCase("PTB siliziumkugel .p7m (CMS, qualified signature, signer certificate expired since)", p7m,
                      "dcc", _telesec_root(p7m), "valid"),
        SignatureCase("dcclib valid_signature", (lut / "valid_signature.xml").read_bytes(), "dcc", lut_trust,
                      "valid", lut_now),
        SignatureCase("dcclib invalid_signature", (lut / "invalid_signature.xml").read_bytes(), "dcc", lut_trust,
                      "tampered", lut_now),
    ]  # fmt: skip
    return out


def pki_cases(tmp: Path) -> list[SignatureCase]:
    """DCC XML (XAdES, two+ references) and PDF (PAdES) signed by the test PKI, one or more per verdict."""
    pki = make_pki()
    trust = load_trust_dir(pki.trust_dir(tmp / "trust"))
    trust_crl = load_trust_dir(pki.trust_dir(tmp / "trust-crl", with_crl=True))
    xml = (PUBLIC / "lutaml-dcc" / "valid.xml").read_bytes()
    pdf = (FIXTURES / "coating_thickness_report.pdf").read_bytes()
    chain = [pki.intermediate.cert]
    stranger_chain = [pki.extra["other_root"].cert]
    good = sign_dcc(xml, pki.lab, chain)
    signed_pdf = sign_pdf(pdf, pki.lab, chain)
    pos = signed_pdf.find(b"coating_thickness_report")
    # revoked 10 days ago, signed (and stamped) 20 days ago: only a trusted timestamp proves "before"
    before = NOW - dt.timedelta(days=20)
    revoked_later = sign_dcc(xml, pki.revoked, chain, signing_time=before, embed_crl=pki.crl)
    tsa = time_stamp_authority(pki)
    other = make_pki()
    no_cert = re.sub(rb"<ds:X509Data>.*?</ds:X509Data>", b"", good, flags=re.DOTALL)
    bad_cert = re.sub(rb"(<ds:X509Certificate>)[^<]{20}", rb"\1!!!!notbase64!!!!!!", good, count=1)
    return [
        SignatureCase("PKI XML valid", good, "dcc", trust, "valid"),
        SignatureCase("PKI XML value changed after signing", good.replace(b"306.248", b"306.249"), "dcc", trust,
                      "tampered"),
        SignatureCase("PKI XML signed properties changed (2nd reference)",
                      re.sub(rb"(<xades:SigningTime>)\d{4}", rb"\g<1>1999", good), "dcc", trust, "tampered"),
        SignatureCase("PKI XML signer revoked (embedded CRL, LT)", sign_dcc(xml, pki.revoked, chain,
                      embed_crl=pki.crl), "dcc", trust, "revoked"),
        SignatureCase("PKI XML signer revoked (embedded OCSP response)", sign_dcc(xml, pki.revoked, chain,
                      embed_ocsp=ocsp_response(pki, pki.revoked, revoked=True)), "dcc", trust, "revoked"),
        SignatureCase("PKI XML signer good (embedded OCSP response)", sign_dcc(xml, pki.lab, chain,
                      embed_ocsp=ocsp_response(pki, pki.lab, revoked=False)), "dcc", trust, "valid"),
        SignatureCase("PKI XML signer revoked after a trusted timestamp (XAdES-T)",
                      add_signature_timestamp(revoked_later, tsa, [pki.root.cert], before), "dcc", trust, "valid"),
        SignatureCase("PKI XML signer revoked after its self-asserted signing time, no timestamp", revoked_later,
                      "dcc", trust, "revoked"),
        SignatureCase("PKI XML timestamp by a TSA outside the trust store", add_signature_timestamp(
                      revoked_later, time_stamp_authority(other), [other.root.cert], before), "dcc", trust, "revoked"),
        SignatureCase("PKI XML signer revoked (trust-dir CRL)", sign_dcc(xml, pki.revoked, chain), "dcc", trust_crl,
                      "revoked"),
        SignatureCase("PKI XML signer expired before signing", sign_dcc(xml, pki.expired, chain), "dcc", trust,
                      "expired-at-signing"),
        SignatureCase("PKI XML signer valid at signing, expired today",
                      sign_dcc(xml, pki.expired_now, chain, signing_time=NOW - dt.timedelta(days=60)), "dcc", trust,
                      "valid"),
        SignatureCase("PKI XML signer from another PKI", sign_dcc(xml, pki.stranger, stranger_chain), "dcc", trust,
                      "untrusted"),
        SignatureCase("PKI XML signature without certificate", no_cert, "dcc", trust, "malformed"),
        SignatureCase("PKI XML signature covering only the software element, results then changed",
                      sign_dcc_part(xml.replace(b"<dcc:software>", b'<dcc:software id="sw">', 1), pki.lab, chain,
                      "sw").replace(b"306.248", b"999.999"), "dcc", trust, "malformed"),
        SignatureCase("PKI XML signature with a broken certificate", bad_cert, "dcc", trust, "malformed"),
        SignatureCase("PKI PDF valid", signed_pdf, "pdf", trust, "valid"),
        SignatureCase("PKI PDF byte changed after signing", signed_pdf[:pos] + b"C" + signed_pdf[pos + 1 :], "pdf",
                      trust, "tampered"),
        SignatureCase("PKI PDF LT (revocation info embedded), signer good", sign_pdf_lt(pdf, pki, pki.lab), "pdf",
                      trust, "valid"),
        SignatureCase("PKI PDF LT, signer revoked (embedded CRL)", sign_pdf_lt(pdf, pki, pki.revoked), "pdf", trust,
                      "revoked"),
        SignatureCase("PKI PDF signer revoked (trust-dir CRL)", sign_pdf(pdf, pki.revoked, chain), "pdf", trust_crl,
                      "revoked"),
        SignatureCase("PKI PDF signer expired before signing", sign_pdf(pdf, pki.expired, chain), "pdf", trust,
                      "expired-at-signing"),
        SignatureCase("PKI PDF signer from another PKI", sign_pdf(pdf, pki.stranger, stranger_chain), "pdf", trust,
                      "untrusted"),
        SignatureCase("PKI PDF unsigned", pdf, "pdf", trust, "unsigned"),
    ]  # fmt: skip


def all_cases(tmp: Path) -> list[SignatureCase]:
    return public_cases() + pki_cases(tmp)
