"""Lab reports through the gateway: every format in one upload endpoint, parsed with provenance, signature
verdict tied to the registered lab, anchored twice (file bytes + canonical JSON of the parsed report)."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chain.canonical import canonical_bytes
from chain.proof import ProofDocument
from tests.app.conftest import ACCOUNTS, CSV_OK, Gateway
from tests.parsers.pki import dss_bomb_pdf, large_signed_dcc

pytestmark = pytest.mark.node

REPORTS = Path(__file__).resolve().parent.parent / "fixtures" / "reports"
INSPECTION = Path(__file__).resolve().parent.parent / "fixtures" / "inspection"


def _self_signed_lab(tmp_path: Path) -> tuple[Path, Path, bytes]:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Rheinland Test Lab signer")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_path, cert_path = tmp_path / "lab.key", tmp_path / "lab.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path.write_bytes(pem)
    return key_path, cert_path, pem


def _sign_pdf(pdf: bytes, key: Path, cert: Path) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    signer = signers.SimpleSigner.load(str(key), str(cert))
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)), signers.PdfSignatureMetadata(field_name="Lab"), signer=signer
    )
    return bytes(out.getvalue())


def _upload_files(gw: Gateway, files: list[tuple[str, bytes]], key: str | None = None) -> Any:
    headers = gw.auth("supplier") | ({"Idempotency-Key": key} if key else {})
    return gw.client.post("/v1/batches", files=[("files", (n, d, "application/octet-stream")) for n, d in files],
                          headers=headers)  # fmt: skip


def test_csv_with_pdf_and_dcc_reports_is_parsed_anchored_and_served_with_provenance(gateway: Gateway) -> None:
    pdf = (REPORTS / "tensile_iso6892_report.pdf").read_bytes()
    dcc = (REPORTS / "ptb" / "example.xml").read_bytes()
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), ("tensile.pdf", pdf), ("cert.xml", dcc)])
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    assert {f["format"]: f["kind"] for f in batch["files"]} == {"csv": "inspection", "pdf": "report", "dcc": "report"}
    assert batch["record_count"] == 4 + 2  # four measurements + one canonical-JSON leaf per report
    assert batch["leaf_count"] == 6 + 3  # plus the three files
    assert {f["signature_verdict"] for f in batch["files"] if f["kind"] == "report"} == {"unsigned"}
    # the 201 says what a read of the batch says (its files in upload order, no anchoring attempt yet)
    read = gateway.client.get(f"/v1/batches/{batch['id']}", headers=gateway.auth("supplier")).json()
    assert {**batch, "created": None} == {**read, "created": None}
    assert [f["filename"] for f in batch["files"]] == ["lot.csv", "tensile.pdf", "cert.xml"]
    assert batch["anchor_attempts"] == 0 and batch["anchor_error"] is None
    gateway.anchor_all()

    sha = hashlib.sha256(pdf).hexdigest()
    detail = gateway.client.get(f"/v1/batches/{batch['id']}/files/{sha}", headers=gateway.auth("supplier")).json()
    assert detail["anchored"] is True
    report = detail["report"]
    truth = json.loads((REPORTS / "tensile_iso6892_report.json").read_text())["fields"]
    assert report["report_id"]["value"] == truth["report_id"]
    assert report["lab"]["name"]["value"] == truth["lab.name"]
    prov = report["report_id"]["provenance"]
    assert prov["kind"] == "pdf" and prov["page"] == 1 and len(prov["bbox"]) == 4 and prov["file_sha256"] == sha

    # the parsed report's leaf proves the extracted content, the file leaf the exact bytes
    idx = detail["report_record_index"]
    proof = gateway.client.get(f"/v1/batches/{batch['id']}/records/{idx}/proof", headers=gateway.auth("supplier"))
    doc = ProofDocument.from_json(proof.json())
    assert doc.leaf.record is not None and doc.leaf.record["file_sha256"] == sha
    assert doc.leaf.sha256 == hashlib.sha256(canonical_bytes(doc.leaf.record)).digest()
    assert gateway.client.post("/v1/verify/proof", json=proof.json()).json()["ok"] is True
    files = {"file": ("tensile.pdf", pdf, "application/pdf")}
    ok = gateway.client.post("/v1/verify/file", files=files, data={"batch_id": batch["batch_id"]}).json()
    assert ok["ok"] is True

    dcc_detail = gateway.client.get(
        f"/v1/batches/{batch['id']}/files/{hashlib.sha256(dcc).hexdigest()}", headers=gateway.auth("supplier")
    ).json()
    assert dcc_detail["report"]["format"] == "dcc"
    assert dcc_detail["report"]["report_id"]["provenance"]["xpath"].startswith("/")


def test_signed_pdf_from_a_registered_lab_is_valid_tied_to_it_and_a_tampered_copy_refused(
    gateway: Gateway, tmp_path: Path
) -> None:
    key, cert, pem = _self_signed_lab(tmp_path)
    lab = gateway.client.post("/v1/parties", headers=gateway.auth("admin"), json={
        "name": "Rheinland Test Lab", "kind": "lab", "account": ACCOUNTS["oem2"], "accreditation_id": "D-PL-1",
        "accreditation_expires": "2030-01-01T00:00:00Z", "certificate_pem": pem.decode()})  # fmt: skip
    assert lab.status_code == 201, lab.text
    assert lab.json()["certificate_sha256"] == x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()
    signed = _sign_pdf((REPORTS / "coating_thickness_report.pdf").read_bytes(), key, cert)
    batch = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), ("coating.pdf", signed)]).json()
    detail = gateway.client.get(
        f"/v1/batches/{batch['id']}/files/{hashlib.sha256(signed).hexdigest()}", headers=gateway.auth("supplier")
    ).json()
    assert detail["signature_verdict"] == "valid", detail["report"]["signature"]
    assert detail["report"]["signature"]["lab_id"] == str(lab.json()["id"])

    before = gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json()
    pos = signed.find(b"coating_thickness_report")
    tampered = signed[:pos] + b"C" + signed[pos + 1 :]
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), ("coating.pdf", tampered)], key="tampered")
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert err["signature_verdict"] == "tampered" and "coating.pdf" in err["message"]
    assert gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json() == before


PYDCC = REPORTS / "dcc-public" / "pydcc"


def _register_pydcc_consortium_root(gateway: Gateway) -> None:
    """A registered lab's certificate is pinned as a trust anchor: here the public test PKI's root CA."""
    lab = gateway.client.post("/v1/parties", headers=gateway.auth("admin"), json={
        "name": "Calibration Community", "kind": "lab", "account": ACCOUNTS["oem2"], "accreditation_id": "D-K-1",
        "accreditation_expires": "2030-01-01T00:00:00Z",
        "certificate_pem": (PYDCC / "root.crt").read_text()})  # fmt: skip
    assert lab.status_code == 201, lab.text


def test_real_ptb_dcc_signed_with_revoked_certificate_refuses_the_batch(gateway: Gateway) -> None:
    """Regression (issue 11): a batch with a manipulated/revoked signed DCC was accepted (201)."""
    _register_pydcc_consortium_root(gateway)
    before = gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json()
    for name, verdict in (
        ("dcc_gp_temperature_typical_v12_v3.2.0_signed_lt_revoked.xml", "revoked"),
        ("dcc_gp_temperature_typical_v12_v3.2.0_signed_manipulated.xml", "tampered"),
    ):
        resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), (name, (PYDCC / name).read_bytes())], key=name)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["signature_verdict"] == verdict
    assert gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json() == before
    genuine = "dcc_gp_temperature_typical_v12_v3.2.0_signed_lt.xml"
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), (genuine, (PYDCC / genuine).read_bytes())])
    assert resp.status_code == 201, resp.text
    assert {f["signature_verdict"] for f in resp.json()["files"] if f["kind"] == "report"} == {"valid"}


def test_genuine_signed_dcc_is_stored_with_its_verdict(gateway: Gateway) -> None:
    name = "dcc_gp_temperature_typical_v12_v3.2.0_signed_lt.xml"
    data = (PYDCC / name).read_bytes()
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), (name, data)])
    assert resp.status_code == 201, resp.text
    detail = gateway.client.get(
        f"/v1/batches/{resp.json()['id']}/files/{hashlib.sha256(data).hexdigest()}", headers=gateway.auth("supplier")
    ).json()
    # the gateway's trust store here holds no anchor: intact but untrusted, and its timestamp's TSA is not
    # believed either, so the signed signing-time property is the time
    assert detail["signature_verdict"] == "untrusted"
    sig = detail["report"]["signature"]
    assert sig["signing_time_source"] == "signing-time" and sig["references_checked"] == 2
    assert "timestamp ignored" not in sig["reason"]  # an untrusted verdict's reason names the chain problem
    assert len(detail["report"]["results"]) == 15


def test_dcc_with_external_doctype_and_undeclared_entity_is_a_4xx_not_a_500(gateway: Gateway) -> None:
    """Regression (issue 11): external DOCTYPE + undeclared entity reference gave HTTP 500."""
    data = (REPORTS / "hostile" / "dcc_external_doctype_undeclared_entity.xml").read_bytes()
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), ("cert.xml", data)])
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "hostile_input"
    assert "external subset" in resp.json()["error"]["message"]


def test_a_signed_pdf_whose_signature_check_would_take_hundreds_of_mb_is_refused_and_nothing_stored(
    gateway: Gateway,
) -> None:
    """The signature check runs in a capped child process like the parse: a 3 MB signed PDF whose DSS CRL inflates
    to 190 MB (within the parse's max_uncompressed_bytes, which only counts it) made the check in the gateway
    process itself grow by 305 MB; a cap of 96 MB now refuses it naming the limit, and the gateway keeps serving."""
    settings = gateway.client.app.state.settings  # type: ignore[attr-defined]
    assert settings.parse_isolated  # the default
    settings.parse_max_memory_bytes = 96 * 1024 * 1024
    bomb = dss_bomb_pdf((REPORTS / "coating_thickness_report.pdf").read_bytes(), 190, noise_per_mib=24_000)
    before = gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json()
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), ("coating.pdf", bomb)])
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "limit_exceeded" and error["limit"] == "max_memory_bytes"
    assert "checking the signature" in error["message"]
    assert gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json() == before
    assert _upload_files(gateway, [("lot.csv", CSV_OK.encode())]).status_code == 201


def test_a_dcc_whose_signature_check_runs_out_of_memory_is_a_422_naming_the_file_not_a_500(gateway: Gateway) -> None:
    """Outside review: libxml2 out of memory in the signature check's child came back as a crash (500). An 8.7 MB
    signed DCC that parses within 192 MiB but whose check needs 400-500 MiB is a 422 naming the limit and the
    file among the uploads, and nothing is stored."""
    settings = gateway.client.app.state.settings  # type: ignore[attr-defined]
    settings.parse_max_memory_bytes = 192 * 1024 * 1024
    dcc = large_signed_dcc((REPORTS / "dcc-public" / "lutaml-dcc" / "valid.xml").read_bytes(), 200_000)
    before = gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json()
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), ("big-certificate.xml", dcc)])
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["limit"], error["location"]) == ("limit_exceeded", "max_memory_bytes",
                                                                  "big-certificate.xml")  # fmt: skip
    assert gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json() == before


def test_password_protected_pdf_is_refused_saying_so(gateway: Gateway) -> None:
    data = (REPORTS / "hostile" / "password_protected_user_password.pdf").read_bytes()
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), ("report.pdf", data)])
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "password_protected"
    assert "this PDF is password-protected" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "fmt"),
    [("xlsx/measurements_and_process_sheets.xlsx", "xlsx"), ("aqdef/kfield_values.dfq", "aqdef"),
     ("qif/QIF_Results_Sample.QIF", "qif"), ("json/batch_with_process.json", "json")],
)  # fmt: skip
def test_other_measurement_formats_are_accepted_by_the_same_endpoint(gateway: Gateway, path: str, fmt: str) -> None:
    # stored under a neutral name: the format is detected from the content
    resp = _upload_files(gateway, [("upload.bin", (INSPECTION / path).read_bytes())])
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    assert batch["files"][0]["format"] == fmt
    assert batch["record_count"] > 0


def test_unreadable_report_marks_the_batch_for_human_review(gateway: Gateway) -> None:
    # a scan read by OCR that yields no result rows is stored, but the batch says a person must look at it
    scanned = (REPORTS / "scanned_image_only.pdf").read_bytes()
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), ("scan.pdf", scanned)])
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    assert batch["review_required"] is True
    assert "scan.pdf: no result rows were found in the report" in batch["review_reasons"]
    status = gateway.client.get(f"/v1/batches/{batch['id']}", headers=gateway.auth("supplier")).json()
    assert status["review_required"] is True and status["review_reasons"] == batch["review_reasons"]
    report = gateway.client.get(
        f"/v1/batches/{batch['id']}/files/{hashlib.sha256(scanned).hexdigest()}", headers=gateway.auth("supplier")
    ).json()["report"]
    assert report["ocr_pages"] == [1] and report["review"]["required"] is True


def test_report_with_results_does_not_ask_for_review(gateway: Gateway) -> None:
    pdf = (REPORTS / "tensile_iso6892_report.pdf").read_bytes()
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), ("tensile.pdf", pdf)])
    assert resp.status_code == 201, resp.text
    assert resp.json()["review_required"] is False and resp.json()["review_reasons"] == []


def test_hostile_xml_report_is_refused(gateway: Gateway) -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<dcc:digitalCalibrationCertificate xmlns:dcc="https://ptb.de/dcc">&x;</dcc:digitalCalibrationCertificate>'
    )
    resp = _upload_files(gateway, [("lot.csv", CSV_OK.encode()), ("cert.xml", xxe)])
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "hostile_input"
    assert "root:" not in resp.text
