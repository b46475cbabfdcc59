"""Signature verdicts as a verifier reaches them: real public signed DCCs (XAdES, LT, .p7m) and a test PKI's
DCC XML (XAdES, several references) and PDF (PAdES) files, one or more per verdict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parsers import parse
from parsers.errors import LimitExceeded
from parsers.guarded import parse_guarded, verify_signature_guarded
from parsers.limits import Limits
from parsers.signatures import TrustStore, load_trust_dir, verify_report_signature
from tests.parsers.pki import dss_bomb_pdf, large_signed_dcc
from tests.parsers.signature_cases import PUBLIC, SignatureCase, all_cases

VENV_BIN = Path(sys.executable).parent
REPORTS = Path(__file__).resolve().parent.parent / "fixtures" / "reports"


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SignatureCase]:
    return {c.name: c for c in all_cases(tmp_path_factory.mktemp("pki"))}


def test_every_case_gets_the_verdict_a_verifier_reaches(cases: dict[str, SignatureCase]) -> None:
    got = {}
    for name, case in cases.items():
        info = verify_report_signature(case.data, case.fmt, trust=case.trust, now=case.now)
        assert info.reason, name  # every verdict says why
        got[name] = info.verdict
    assert got == {name: case.expected for name, case in cases.items()}


def test_every_verdict_is_covered(cases: dict[str, SignatureCase]) -> None:
    assert {c.expected for c in cases.values()} == {
        "valid", "tampered", "revoked", "untrusted", "expired-at-signing", "unsigned", "malformed",
    }  # fmt: skip


def test_genuine_xades_dcc_is_valid_at_its_signing_time_though_the_certificate_expired_since(
    cases: dict[str, SignatureCase],
) -> None:
    """Regression (issue 11): genuine signatures were called invalid (validity checked today, one reference)."""
    info = verify_report_signature(cases["pydcc 3.2.0 signed"].data, "dcc", trust=cases["pydcc 3.2.0 signed"].trust)
    assert info.verdict == "valid"
    assert info.references_checked == 2
    assert info.signing_time == "2023-03-27T15:14:30Z" and info.signing_time_source == "signing-time"
    assert info.chain == [
        "CN=Calibration Lab A1,O=Calibration A GmbH,C=DE",
        "CN=Calibration Community Sub CA 01,O=Calibration Community,C=DE",
        "CN=Calibration Community Root CA 01,O=Calibration Community,C=DE",
    ]


def test_lt_signature_uses_its_timestamp_and_embedded_crls(cases: dict[str, SignatureCase]) -> None:
    case = cases["pydcc 3.2.0 signed LT (timestamp, CRLs)"]
    info = verify_report_signature(case.data, "dcc", trust=case.trust)
    assert info.signing_time_source == "timestamp"
    assert info.signing_time == "2023-06-20T12:12:37Z"  # the TSA's genTime, 5 s before the claimed SigningTime
    assert len(info.revocation_checked) == 2 and all("embedded CRL" in r for r in info.revocation_checked)


def test_timestamp_of_a_tsa_outside_the_trust_store_is_not_believed(cases: dict[str, SignatureCase]) -> None:
    case = cases["pydcc 3.2.0 signed LT (timestamp, CRLs)"]
    no_tsa_root = TrustStore(anchors=case.trust.anchors[:1], intermediates=case.trust.intermediates)
    assert "T-TeleSec" not in str([a.subject for a in no_tsa_root.anchors])
    info = verify_report_signature(case.data, "dcc", trust=no_tsa_root)
    assert info.verdict == "valid"
    assert (info.signing_time, info.signing_time_source) == ("2023-06-20T12:12:42Z", "signing-time")
    assert "timestamp ignored: its TSA 'CN=PN: Zeitstempel 2022" in (info.reason or "")


def test_revoked_lt_signature_names_the_certificate_and_the_revocation_time(cases: dict[str, SignatureCase]) -> None:
    case = cases["pydcc 3.2.0 signed LT, signer revoked"]
    info = verify_report_signature(case.data, "dcc", trust=case.trust)
    assert info.verdict == "revoked"
    assert "Calibration Lab B1" in (info.reason or "") and "2023-06-15T10:58:20Z" in (info.reason or "")


def test_manipulated_dcc_is_tampered_not_expired(cases: dict[str, SignatureCase]) -> None:
    """Regression (issue 11): a manipulated signed DCC was reported as an expiry problem."""
    case = cases["pydcc 3.2.0 signed, manipulated"]
    info = verify_report_signature(case.data, "dcc", trust=case.trust)
    assert info.verdict == "tampered" and "Digest mismatch for reference 0" in (info.reason or "")


def test_p7m_is_unwrapped_parsed_and_its_cms_signature_checked(cases: dict[str, SignatureCase]) -> None:
    case = cases["PTB siliziumkugel .p7m (CMS, qualified signature, signer certificate expired since)"]
    parsed = parse(case.data, filename="examples_siliziumkugel___.xml.p7m")
    assert parsed.format == "dcc" and parsed.report is not None
    assert parsed.report.schema_check is not None and parsed.report.schema_check.version == "2.4.0"
    assert [r.value.value for r in parsed.report.results] == ["1.00007841", "431.055119"]
    info = verify_report_signature(case.data, "dcc", trust=case.trust)
    assert info.kind == "cms" and info.verdict == "valid"
    assert info.signing_time == "2021-04-20T07:18:11Z"
    # one changed byte of the encapsulated DCC breaks the CMS message digest
    i = case.data.find(b"431.055119")
    forged = case.data[:i] + b"5" + case.data[i + 1 :]
    assert verify_report_signature(forged, "dcc", trust=case.trust).verdict == "tampered"


def test_trust_dir_reads_anchors_intermediates_and_crls(tmp_path: Path) -> None:
    from tests.parsers.pki import make_pki

    pki = make_pki()
    store = load_trust_dir(pki.trust_dir(tmp_path, with_crl=True))
    assert [c.subject for c in store.anchors] == [pki.root.cert.subject]
    assert [c.subject for c in store.intermediates] == [pki.intermediate.cert.subject]
    assert len(store.crls) == 1
    (tmp_path / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match=r"broken\.pem"):
        load_trust_dir(tmp_path)


def test_registered_fingerprint_attributes_the_signature_to_its_lab(cases: dict[str, SignatureCase]) -> None:
    case = cases["pydcc 3.2.0 signed"]
    fp = verify_report_signature(case.data, "dcc", trust=case.trust).signer_sha256
    assert fp is not None
    info = verify_report_signature(case.data, "dcc", trust=case.trust, trusted_signers={fp: "lab-7"})
    assert info.lab_id == "lab-7" and info.verdict == "valid"
    assert verify_report_signature(case.data, "dcc", trust=TrustStore()).lab_id is None


def _qcn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "qcn"), *args], capture_output=True, text=True, timeout=120, check=False)


def test_cli_parse_verify_prints_the_verdict_with_the_trust_dir(tmp_path: Path) -> None:
    trust = tmp_path / "trust"
    trust.mkdir()
    for n in ("root.crt", "sub.crt"):
        (trust / n).write_bytes((PUBLIC / "pydcc" / n).read_bytes())
    f = PUBLIC / "pydcc" / "dcc_gp_temperature_typical_v12_v3.2.0_signed_lt_revoked.xml"
    out = _qcn("parse", str(f), "--verify", "--trust", str(trust))
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith("signature: revoked: certificate 'CN=Calibration Lab B1")
    import json

    report = json.loads(out.stdout)  # a lab report prints as a LabReport (docs/labreport.schema.json)
    assert report["signature"]["verdict"] == "revoked" and len(report["results"]) == 15
    plain = _qcn("parse", str(f))  # without --verify: the output shape is unchanged, no verdict computed
    assert json.loads(plain.stdout)["signature"]["verdict"] == "unsigned"
    untrusted = _qcn("parse", str(f), "--verify")
    assert untrusted.stderr.startswith("signature: untrusted:")


def test_the_guarded_check_in_a_child_process_reaches_the_same_verdict_and_facts(
    cases: dict[str, SignatureCase],
) -> None:
    """The gateway checks a lab report's signature in a memory- and time-capped child process (as it parses the
    file): the trust store crosses as DER (anchors, intermediates, CRLs) and the answer is the same, fact by fact,
    for every PKI case (their verification time is now)."""
    pki = {name: case for name, case in cases.items() if name.startswith("PKI ") and case.now is None}
    assert len(pki) >= 20 and any(c.trust.crls for c in pki.values())
    for name, case in pki.items():
        here = verify_report_signature(case.data, case.fmt, trust=case.trust, trusted_signers={})
        there = verify_signature_guarded(case.data, case.fmt, trust=case.trust, trusted_signers={})
        assert there.model_dump() == here.model_dump(), name
    # the signer is attributed to its lab in the child too
    valid = pki["PKI PDF valid"]
    signer = verify_report_signature(valid.data, "pdf", trust=valid.trust).signer_sha256
    assert signer is not None
    attributed = verify_signature_guarded(valid.data, "pdf", trust=valid.trust, trusted_signers={signer: "lab-7"})
    assert (
        attributed.verdict == "valid"
        and attributed.model_dump()
        == verify_report_signature(valid.data, "pdf", trust=valid.trust, trusted_signers={signer: "lab-7"}).model_dump()
    )


def test_a_signature_check_that_needs_more_memory_than_allowed_is_refused_naming_the_limit(
    cases: dict[str, SignatureCase],
) -> None:
    """The signature check ran in the gateway process itself, with no memory or time bound. pyHanko lets a CRL
    stream inflate to 50x its encoded size, so a signed 4 MB PDF whose DSS CRL inflates to 4 GB makes it decode
    about 200 MB (a 50 MB upload: 2.5 GB). In the guarded child that is a LimitExceeded naming max_memory_bytes;
    the same cap leaves an ordinary signed PDF its verdict."""
    bomb = dss_bomb_pdf((REPORTS / "coating_thickness_report.pdf").read_bytes(), 4000)
    assert len(bomb) < 5_000_000
    trust = cases["PKI PDF valid"].trust
    cap = Limits(max_memory_bytes=64 * 1024 * 1024)
    with pytest.raises(LimitExceeded) as exc:
        verify_signature_guarded(bomb, "pdf", trust=trust, trusted_signers={}, limits=cap)
    assert exc.value.limit == "max_memory_bytes" and exc.value.allowed == 64 * 1024 * 1024
    assert "checking the signature needed more memory" in exc.value.message
    ordinary = verify_signature_guarded(cases["PKI PDF valid"].data, "pdf", trust=trust, trusted_signers={},
                                        limits=cap)  # fmt: skip
    assert ordinary.verdict == "valid"


def test_a_dcc_signature_check_that_runs_libxml2_out_of_memory_is_the_memory_limit_not_a_crash() -> None:
    """Outside review: under the child's address-space cap libxml2 reports a failed allocation as its own error
    (XMLSyntaxError "unknown error", C14NError), not MemoryError; the gateway answered a 500. An 8.7 MB signed DCC
    parses within 192 MiB, but its signature check needs 400-500 MiB: LimitExceeded naming max_memory_bytes,
    and the default 1 GiB gives it its verdict."""
    data = large_signed_dcc((PUBLIC / "lutaml-dcc" / "valid.xml").read_bytes(), 200_000)
    capped = Limits(max_memory_bytes=192 * 1024 * 1024)
    assert parse_guarded(data, filename="big.xml", limits=capped).format == "dcc"
    with pytest.raises(LimitExceeded) as exc:
        verify_signature_guarded(data, "dcc", trust=TrustStore(), trusted_signers={}, limits=capped)
    assert exc.value.limit == "max_memory_bytes" and "checking the signature needed more memory" in exc.value.message
    ample = verify_signature_guarded(data, "dcc", trust=TrustStore(), trusted_signers={})
    assert ample.verdict == "untrusted" and ample.references_checked >= 2  # checked through; its PKI is not trusted
