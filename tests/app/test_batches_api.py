"""Upload -> store -> anchor -> proof, through the HTTP API on SQLite and PostgreSQL with a real anvil node."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import func, select

from app.db import Batch, BatchFile, Blob, OutboxItem, RecordChunk
from chain.clients import supplier_batch_id
from chain.merkle import leaf_hash
from chain.proof import ProofDocument, verify_proof
from tests.app.conftest import ACCOUNTS, CSV_OK, Gateway

pytestmark = pytest.mark.node


def _counts(gw: Gateway) -> dict[str, int]:
    factory = gw.client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as s:
        return {t.__name__: s.scalar(select(func.count()).select_from(t)) or 0
                for t in (Batch, RecordChunk, BatchFile, Blob, OutboxItem)}  # fmt: skip


def test_upload_is_stored_pending_then_anchored_with_receipt_and_verifiable_proof(gateway: Gateway) -> None:
    resp = gateway.upload("supplier", CSV_OK, key="LOT-1")
    assert resp.status_code == 201, resp.text
    batch = resp.json()
    assert batch["status"] == "pending"
    assert batch["record_count"] == 4
    assert batch["leaf_count"] == 5  # four records + the CSV file itself
    assert batch["supplier_account"] == ACCOUNTS["supplier"]
    assert batch["receipt"] is None
    # the on-chain id is bound to the supplier (the registry anchors it for no one else) and to the key
    assert batch["batch_id"] == "0x" + supplier_batch_id(ACCOUNTS["supplier"], "LOT-1").hex()
    assert batch["batch_id"][:42] == ACCOUNTS["supplier"].lower()

    assert gateway.anchor_all() == 1
    got = gateway.client.get(f"/v1/batches/{batch['id']}", headers=gateway.auth("supplier")).json()
    assert got["status"] == "anchored"
    receipt = got["receipt"]
    assert receipt["tx_hash"].startswith("0x") and len(receipt["tx_hash"]) == 66
    assert receipt["block_number"] >= 1
    assert receipt["chain_id"] == 31337

    records = gateway.client.get(f"/v1/batches/{batch['id']}/records", headers=gateway.auth("supplier")).json()
    assert [r["record"]["characteristic"] for r in records] == ["thickness", "width", "thickness", "width"]
    assert records[0]["record"]["value"] == 12.31 and records[0]["record"]["unit"] == "um"

    proof = gateway.client.get(f"/v1/batches/{batch['id']}/records/2/proof", headers=gateway.auth("supplier")).json()
    doc = ProofDocument.from_json(proof)
    assert doc.leaf.record is not None and doc.leaf.record["sample"] == "S2"
    chain = gateway.client.app.state.chain_holder.get()  # type: ignore[attr-defined]
    result = verify_proof(doc, chain.fetch_commitment)
    assert result.ok, result.message
    assert result.supplier == ACCOUNTS["supplier"]

    # the same checks through the public endpoint, and a tampered value fails with its reason
    ok = gateway.client.post("/v1/verify/proof", json=proof).json()
    assert ok["ok"] is True
    proof["leaf"]["record"]["value"] = 99.0
    bad = gateway.client.post("/v1/verify/proof", json=proof).json()
    assert bad["ok"] is False and bad["failure"].startswith("record_digest_mismatch")


def test_uploaded_file_verifies_and_another_file_does_not(gateway: Gateway) -> None:
    batch = gateway.upload("supplier", CSV_OK, key="LOT-F").json()
    gateway.anchor_all()
    files = {"file": ("lot.csv", CSV_OK.encode(), "text/csv")}
    ok = gateway.client.post("/v1/verify/file", files=files, data={"batch_id": batch["batch_id"]}).json()
    assert ok["ok"] is True, ok
    other = {"file": ("lot.csv", CSV_OK.replace("12.31", "12.32").encode(), "text/csv")}
    bad = gateway.client.post("/v1/verify/file", files=other, data={"batch_id": batch["batch_id"]}).json()
    assert bad["ok"] is False and "file_digest_mismatch" in bad["failure"]
    # a file of several read chunks is hashed as it streams in, never held whole: the digest named is its own
    big = bytes(range(256)) * (3 * 4096 + 7)
    other = {"file": ("big.bin", big, "application/octet-stream")}
    bad = gateway.client.post("/v1/verify/file", files=other, data={"batch_id": batch["batch_id"]}).json()
    assert bad["ok"] is False and f"sha256 {hashlib.sha256(big).hexdigest()} is not a file" in bad["failure"]


def test_same_upload_twice_is_one_batch_and_key_reuse_with_other_content_conflicts(gateway: Gateway) -> None:
    first = gateway.upload("supplier", CSV_OK, key="LOT-2")
    again = gateway.upload("supplier", CSV_OK, key="LOT-2")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    no_key_1 = gateway.upload("supplier", CSV_OK)
    no_key_2 = gateway.upload("supplier", CSV_OK)
    assert no_key_1.json()["id"] == no_key_2.json()["id"]  # without a key the content hash is the key
    before = _counts(gateway)
    clash = gateway.upload("supplier", CSV_OK.replace("4.02", "4.03"), key="LOT-2")
    assert clash.status_code == 409
    assert "LOT-2" in clash.json()["error"]["message"]
    assert _counts(gateway) == before
    assert gateway.anchor_all() == 2


@pytest.mark.parametrize(
    ("content", "name", "status", "code", "mentions"),
    [
        ("sample_id,characteristic,value\nS1,thickness,12.3\n", "lot.csv", 422, "missing_field", "unit"),
        ("sample_id,characteristic,value,unit,colour\nS1,t,1,um,red\n", "lot.csv", 422, "unexpected_field", "colour"),
        ("sample_id,characteristic,value,unit\nS1,thickness,twelve,um\n", "lot.csv", 422, "invalid_value", "twelve"),
        ("sample_id,characteristic,value,unit\n", "lot.csv", 422, "empty_input", ""),
        ('{"measurements": [{"sample_id": "S1", "characteristic": "t", "value": 1.0}', "lot.json", 422, "", ""),
        ('{"measurements": []}', "lot.json", 422, "empty_input", ""),
        ("sample_id,characteristic,value,unit\nS1,thickness,1.0,um,extra\n", "lot.csv", 422, "malformed_input", "row"),
    ],
    ids=["missing-column", "extra-column", "non-numeric", "empty-csv", "truncated-json", "empty-json", "ragged-row"],
)
def test_bad_input_is_a_4xx_naming_the_problem_and_nothing_is_stored(
    gateway: Gateway, content: str, name: str, status: int, code: str, mentions: str
) -> None:
    before = _counts(gateway)
    resp = gateway.upload("supplier", content, name=name)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    if code:
        assert error["code"] == code
    assert mentions.lower() in json.dumps(error).lower()
    assert _counts(gateway) == before


def test_oversized_upload_is_413_naming_the_limit(gateway: Gateway) -> None:
    gateway.client.app.state.settings.max_upload_bytes = 1000  # type: ignore[attr-defined]
    big = CSV_OK + "".join(f"S{i},thickness,12.3,um,0.05\n" for i in range(3, 200))
    before = _counts(gateway)
    resp = gateway.upload("supplier", big)
    assert resp.status_code == 413
    assert "1000" in resp.json()["error"]["message"]
    assert _counts(gateway) == before


def test_no_file_is_a_clear_error(gateway: Gateway) -> None:
    resp = gateway.client.post("/v1/batches", headers=gateway.auth("supplier"))
    assert resp.status_code == 422
    assert "files" in resp.json()["error"]["message"]


_JSON_OK = json.dumps(
    {"measurements": [{"sample_id": "S1", "characteristic": "thickness", "value": 12.3, "unit": "um"}]}
)


@pytest.mark.parametrize(
    ("content", "name", "inline_max_bytes"),
    [(CSV_OK, "lot.csv", 0), (_JSON_OK, "lot.json", 2 * 1024 * 1024)],
    ids=["csv-all-isolated", "json-always-isolated"],
)
def test_memory_limit_per_file_is_enforced_in_the_parsing_child_and_named(
    gateway: Gateway, content: str, name: str, inline_max_bytes: int
) -> None:
    settings = gateway.client.app.state.settings  # type: ignore[attr-defined]
    settings.parse_isolated = True
    settings.parse_inline_max_bytes = inline_max_bytes
    settings.parse_max_memory_bytes = 1024  # 1 KiB more than the child's own size: parsing cannot fit
    before = _counts(gateway)
    resp = gateway.upload("supplier", content, name=name)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "limit_exceeded" and error["limit"] == "max_memory_bytes"
    assert _counts(gateway) == before


def test_a_small_csv_parses_in_the_request_process_and_a_large_one_in_the_child(gateway: Gateway) -> None:
    """CSV up to parse_inline_max_bytes skips the child process (a fork and a busy core-second per upload); a
    larger one still gets the child's memory cap, which 1 KiB cannot hold."""
    settings = gateway.client.app.state.settings  # type: ignore[attr-defined]
    settings.parse_isolated = True
    settings.parse_max_memory_bytes = 1024
    settings.parse_inline_max_bytes = len(CSV_OK)
    resp = gateway.upload("supplier", CSV_OK, key="inline")
    assert resp.status_code == 201, resp.text
    records = gateway.client.get(f"/v1/batches/{resp.json()['id']}/records", headers=gateway.auth("supplier"))
    assert [r["record"]["value"] for r in records.json()] == [12.31, 4.02, 12.29, 4.01]
    bigger = CSV_OK + "S3,thickness,12.30,um,0.05\n"
    resp = gateway.upload("supplier", bigger, key="isolated")
    assert resp.status_code == 422 and resp.json()["error"]["limit"] == "max_memory_bytes", resp.text


def test_the_same_files_with_another_lot_size_are_a_conflict_not_a_silent_drop(gateway: Gateway) -> None:
    first = gateway.upload("supplier", CSV_OK)
    assert first.status_code == 201
    again = gateway.client.post(
        "/v1/batches",
        files=[("files", ("lot.csv", CSV_OK.encode(), "text/plain"))],
        data={"lot_size": "5000"},
        headers=gateway.auth("supplier"),
    )
    assert again.status_code == 409, again.text
    assert "lot size None (this request: 5000)" in again.json()["error"]["message"]
    # the stored batch is untouched, and an honest retry of the first request still gets it back
    stored = gateway.client.get(f"/v1/batches/{first.json()['id']}", headers=gateway.auth("supplier")).json()
    assert stored["lot_size"] is None
    retry = gateway.upload("supplier", CSV_OK)
    assert retry.status_code == 200 and retry.json()["id"] == first.json()["id"]


def test_records_and_proofs_read_across_storage_chunks(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records are stored several to a row: pages that start, end or straddle a row boundary list exactly the
    records asked for, with the leaf hash the proof commits to, and every record's proof verifies, also once
    the number of records per row has changed."""
    from app.services import batches

    monkeypatch.setattr(batches, "RECORDS_PER_CHUNK", 3)  # 10 records -> rows of 3, 3, 3 and 1
    csv = "sample_id,characteristic,value,unit\n" + "".join(f"S{i},thickness,{10 + i / 8},um\n" for i in range(10))
    resp = gateway.upload("supplier", csv, key="LOT-CHUNKS")
    assert resp.status_code == 201, resp.text
    ref = resp.json()["id"]
    with gateway.client.app.state.session_factory() as s:  # type: ignore[attr-defined]
        rows = s.scalars(select(RecordChunk).where(RecordChunk.batch_pk == ref).order_by(RecordChunk.first)).all()
        assert [(r.first, r.count, len(r.leaves)) for r in rows] == [(0, 3, 192), (3, 3, 192), (6, 3, 192), (9, 1, 64)]
    # a later release storing more records per row still reads these (each row says where it starts)
    monkeypatch.setattr(batches, "RECORDS_PER_CHUNK", 4096)
    assert gateway.anchor_all() == 1
    chain = gateway.client.app.state.chain_holder.get()  # type: ignore[attr-defined]
    leaf_hashes = {}
    for i in range(10):
        proof = gateway.client.get(f"/v1/batches/{ref}/records/{i}/proof", headers=gateway.auth("supplier")).json()
        doc = ProofDocument.from_json(proof)
        assert doc.leaf.record is not None and doc.leaf.record["sample"] == f"S{i}"
        assert verify_proof(doc, chain.fetch_commitment).ok
        leaf_hashes[i] = "0x" + leaf_hash(doc.leaf.salt, doc.leaf.sha256).hex()
    for offset, limit in [(0, 10), (0, 3), (2, 2), (3, 3), (2, 5), (8, 100), (9, 1), (10, 5), (4, 1)]:
        page = gateway.client.get(
            f"/v1/batches/{ref}/records", params={"offset": offset, "limit": limit}, headers=gateway.auth("supplier")
        ).json()
        want = list(range(offset, min(offset + limit, 10)))
        assert [r["index"] for r in page] == want
        assert [r["record"]["sample"] for r in page] == [f"S{i}" for i in want]
        assert [r["leaf_hash"] for r in page] == [leaf_hashes[i] for i in want]
    missing = gateway.client.get(f"/v1/batches/{ref}/records/10/proof", headers=gateway.auth("supplier"))
    assert missing.status_code == 404 and "has no record 10" in missing.json()["error"]["message"]


def test_the_anchoring_check_reads_a_groups_commitments_in_one_batch_request(gateway: Gateway) -> None:
    """Before sending, the worker asks the node (one JSON-RPC batch on a real node) which batches of a group are
    already anchored: every anchored batch answers its stored commitment, an unknown id None, in order asked."""
    refs = [gateway.upload("supplier", CSV_OK.replace("12.31", f"12.3{i}"), key=f"LOT-C{i}").json() for i in range(3)]
    assert gateway.anchor_all() == 3
    chain = gateway.client.app.state.chain_holder.get()  # type: ignore[attr-defined]
    unknown = "0x" + "ab" * 32
    ids = [refs[2]["batch_id"], unknown, refs[0]["batch_id"], refs[1]["batch_id"]]
    got = chain.commitments(ids)
    stored = {
        r["batch_id"]: gateway.client.get(f"/v1/batches/{r['id']}", headers=gateway.auth("supplier")).json()
        for r in refs
    }
    assert got[unknown] is None
    for r in refs:
        assert got[r["batch_id"]] == stored[r["batch_id"]]["receipt"]["commitment"] is not None
    assert hasattr(chain.anchors.w3.provider, "make_batch_request")  # the batch path, not the one-by-one fallback
