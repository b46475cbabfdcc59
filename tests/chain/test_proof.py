"""Portable qcn-proof documents: building, JSON round trip, schema, and the offline verifier's verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from eth_utils import keccak as eth_keccak

from chain.merkle import build_batch_tree
from chain.proof import (
    BatchHeader,
    FailureReason,
    ProofDocument,
    ProofError,
    ProofFormatError,
    UnsupportedProofError,
    header_commitment,
    make_proof,
    proof_json_schema,
    verify_file_against_proof,
    verify_proof,
)

SUPPLIER = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
BATCH_ID = bytes.fromhex("b7" * 32)
TX_HASH = bytes.fromhex("ab" * 32)
ANCHORED_AT = 1_717_243_200  # 2024-06-01T12:00:00Z

RECORDS = [
    {"batch": "B-7", "sample": f"S{i}", "characteristic": "thickness", "value": 12.3 + i / 100, "unit": "um"}
    for i in range(6)
]
REPORT = b"%PDF-1.7 lab report bytes"


class Chain:
    """In-memory stand-in for the registry's commitment storage (the injectable backend)."""

    def __init__(self) -> None:
        self.commitments: dict[bytes, bytes] = {}
        self.reads: list[bytes] = []

    def anchor(self, batch_id: bytes, header: BatchHeader) -> None:
        self.commitments[batch_id] = header_commitment(header)

    def fetch(self, batch_id: bytes) -> bytes | None:
        self.reads.append(batch_id)
        return self.commitments.get(batch_id)


@pytest.fixture
def setup() -> tuple[Any, BatchHeader, Chain]:
    tree = build_batch_tree(RECORDS, files=[REPORT])
    header = BatchHeader(
        root=tree.root,
        report_hash=eth_keccak(b"report"),
        agreement_id=eth_keccak(b"agreement-42"),
        supplier=SUPPLIER.lower(),
        record_count=len(RECORDS),
        verdict=1,
        anchored_at=ANCHORED_AT,
    )
    chain = Chain()
    chain.anchor(BATCH_ID, header)
    return tree, header, chain


def _proof(setup: tuple[Any, BatchHeader, Chain], index: int = 2) -> ProofDocument:
    tree, header, _ = setup
    return make_proof(
        tree=tree,
        index=index,
        chain_id=31337,
        registry=REGISTRY,
        batch_id=BATCH_ID,
        header=header,
        record=RECORDS[index],
        tx_hash=TX_HASH,
        block_number=17,
    )


def _tampered(doc: ProofDocument, edit: Any) -> str:
    data = json.loads(doc.to_json())
    edit(data)
    return json.dumps(data)


def _flip(hex32: str) -> str:
    return hex32[:-1] + ("0" if hex32[-1] != "0" else "1")


# -- header commitment ---------------------------------------------------------------------


def test_header_commitment_is_keccak_of_eight_abi_words(setup: tuple[Any, BatchHeader, Chain]) -> None:
    _, h, _ = setup
    words = (
        h.root
        + h.report_hash
        + h.agreement_id
        + bytes(12)
        + bytes.fromhex(SUPPLIER[2:])
        + h.record_count.to_bytes(32, "big")
        + h.verdict.to_bytes(32, "big")
        + h.anchored_at.to_bytes(32, "big")
        + h.supersedes
    )
    assert len(words) == 8 * 32
    assert header_commitment(h) == eth_keccak(words)
    assert header_commitment(h.model_copy(update={"verdict": 2})) != header_commitment(h)


def test_header_validation_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match=r"recordCount|record_count"):
        BatchHeader.model_validate(
            {
                "root": "0x" + "00" * 32,
                "reportHash": "0x" + "00" * 32,
                "agreementId": "0x" + "00" * 32,
                "supplier": SUPPLIER,
                "recordCount": 2**32,
                "verdict": 0,
                "anchoredAt": 0,
            }
        )


# -- document --------------------------------------------------------------------------------


def test_json_round_trip_and_wire_format(setup: tuple[Any, BatchHeader, Chain]) -> None:
    doc = _proof(setup)
    text = doc.to_json()
    data = json.loads(text)
    assert data["format"] == "qcn-proof" and data["version"] == 1
    assert data["chainId"] == 31337
    assert data["batchId"] == "0x" + "b7" * 32
    assert data["header"]["supplier"] == SUPPLIER  # checksummed
    assert data["header"]["anchoredAt"] == ANCHORED_AT
    assert data["leaf"]["kind"] == "record" and data["leaf"]["record"] == RECORDS[2]
    assert data["tx"] == {"hash": "0x" + "ab" * 32, "blockNumber": 17}
    assert ProofDocument.from_json(text) == doc


def test_document_validates_against_its_json_schema(setup: tuple[Any, BatchHeader, Chain]) -> None:
    schema = proof_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(_proof(setup).to_json())
    jsonschema.validate(data, schema)
    data["siblings"].append("0x1234")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_from_json_errors_are_specific(setup: tuple[Any, BatchHeader, Chain]) -> None:
    doc = _proof(setup)
    with pytest.raises(UnsupportedProofError, match="version 2"):
        ProofDocument.from_json(_tampered(doc, lambda d: d.update(version=2)))
    with pytest.raises(UnsupportedProofError, match="format 'other'"):
        ProofDocument.from_json(_tampered(doc, lambda d: d.update(format="other")))
    with pytest.raises(ProofFormatError) as info:
        ProofDocument.from_json(_tampered(doc, lambda d: d["header"].update(root="0x12", verdict="1")))
    assert any(e.startswith("header.root") for e in info.value.errors)
    assert any(e.startswith("header.verdict") for e in info.value.errors)
    with pytest.raises(ProofFormatError, match="comment: Extra inputs"):
        ProofDocument.from_json(_tampered(doc, lambda d: d.update(comment="hi")))
    with pytest.raises(ProofFormatError, match="not valid JSON"):
        ProofDocument.from_json("{")
    with pytest.raises(ProofFormatError, match="must be a JSON object"):
        ProofDocument.from_json("[1, 2]")
    assert issubclass(ProofFormatError, ProofError)


def test_make_proof_refuses_inconsistent_inputs(setup: tuple[Any, BatchHeader, Chain]) -> None:
    tree, header, _ = setup
    kwargs: dict[str, Any] = {"tree": tree, "chain_id": 1, "registry": REGISTRY, "batch_id": BATCH_ID}
    with pytest.raises(ProofError, match="not this tree's root"):
        make_proof(index=0, header=header.model_copy(update={"root": bytes(32)}), **kwargs)
    with pytest.raises(ProofError, match="does not match leaf 1"):
        make_proof(index=1, header=header, record=RECORDS[0], **kwargs)


# -- verification ----------------------------------------------------------------------------


def test_valid_record_proof_reports_every_check_and_who_when(setup: tuple[Any, BatchHeader, Chain]) -> None:
    chain = setup[2]
    result = verify_proof(_proof(setup).to_json(), chain.fetch)
    assert result.ok, result.message
    assert result.failure is None
    assert len(result.checks_passed) == 4
    assert result.checks_passed[0] == "format qcn-proof v1"
    assert "record digest" in result.checks_passed[1]
    assert "Merkle path" in result.checks_passed[2]
    assert "header commitment" in result.checks_passed[3]
    assert result.supplier == SUPPLIER
    assert result.anchored_at == "2024-06-01T12:00:00Z"
    assert result.tx_hash == "0x" + "ab" * 32 and result.block_number == 17
    assert result.batch_id == "0x" + "b7" * 32
    assert chain.reads == [BATCH_ID]
    assert result.summary().startswith("VALID")


def test_every_leaf_of_the_batch_verifies(setup: tuple[Any, BatchHeader, Chain]) -> None:
    for i in range(len(RECORDS)):
        assert verify_proof(_proof(setup, i), setup[2].fetch).ok


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda d: d["leaf"]["record"].update(value=99.9), FailureReason.RECORD_DIGEST_MISMATCH),
        (lambda d: d["leaf"].update(sha256=_flip(d["leaf"]["sha256"])), FailureReason.RECORD_DIGEST_MISMATCH),
        (lambda d: d["leaf"].update(salt=_flip(d["leaf"]["salt"])), FailureReason.PATH_MISMATCH),
        (lambda d: d["siblings"].__setitem__(0, _flip(d["siblings"][0])), FailureReason.PATH_MISMATCH),
        (lambda d: d["siblings"].pop(), FailureReason.PATH_MISMATCH),
        (lambda d: d["header"].update(root=_flip(d["header"]["root"])), FailureReason.ROOT_ALTERED),
        (lambda d: d["header"].update(verdict=2), FailureReason.COMMITMENT_MISMATCH),
        (lambda d: d["header"].update(recordCount=5), FailureReason.COMMITMENT_MISMATCH),
        (lambda d: d["header"].update(anchoredAt=ANCHORED_AT - 3600), FailureReason.COMMITMENT_MISMATCH),
        (lambda d: d.update(batchId="0x" + "00" * 32), FailureReason.NOT_ANCHORED),
        (lambda d: d.update(version=2), FailureReason.UNSUPPORTED_FORMAT),
        (lambda d: d.update(format="x-proof"), FailureReason.UNSUPPORTED_FORMAT),
        (lambda d: d["leaf"].update(kind="blob"), FailureReason.INVALID_DOCUMENT),
    ],
)
def test_each_tampering_fails_with_its_reason(
    setup: tuple[Any, BatchHeader, Chain], edit: Any, reason: FailureReason
) -> None:
    result = verify_proof(_tampered(_proof(setup), edit), setup[2].fetch)
    assert not result.ok
    assert result.failure == reason, result.message
    assert result.message
    assert result.summary().startswith(f"INVALID ({reason})")


def test_undisclosed_record_proves_only_its_hash(setup: tuple[Any, BatchHeader, Chain]) -> None:
    tree, header, chain = setup
    doc = make_proof(tree=tree, index=3, chain_id=31337, registry=REGISTRY, batch_id=BATCH_ID, header=header)
    result = verify_proof(doc, chain.fetch)
    assert result.ok
    assert len(result.checks_passed) == 3
    assert result.notes and "content not supplied" in result.notes[0]
    assert result.tx_hash is None


def test_record_with_nan_is_reported_not_raised(setup: tuple[Any, BatchHeader, Chain]) -> None:
    text = _proof(setup).to_json().replace('"value": 12.32', '"value": NaN')
    result = verify_proof(text, setup[2].fetch)
    assert result.failure == FailureReason.RECORD_NOT_CANONICAL
    assert "$.value" in result.message


def test_file_proof_checks_the_file_bytes(setup: tuple[Any, BatchHeader, Chain], tmp_path: Path) -> None:
    tree, header, chain = setup
    doc = make_proof(
        tree=tree,
        index=len(RECORDS),
        kind="file",
        chain_id=31337,
        registry=REGISTRY,
        batch_id=BATCH_ID,
        header=header,
        tx_hash=TX_HASH,
        block_number=17,
    )
    good = tmp_path / "report.pdf"
    good.write_bytes(REPORT)
    result = verify_file_against_proof(good, doc.to_json(), chain.fetch)
    assert result.ok, result.message
    assert "file sha256" in result.checks_passed[1]
    assert result.leaf_kind == "file"

    bad = tmp_path / "edited.pdf"
    bad.write_bytes(REPORT + b" ")
    result = verify_file_against_proof(bad, doc, chain.fetch)
    assert result.failure == FailureReason.FILE_DIGEST_MISMATCH
    assert "differs" in result.message

    result = verify_file_against_proof(good, _proof(setup), chain.fetch)
    assert result.failure == FailureReason.FILE_DIGEST_MISMATCH
    assert "for a record, not a file" in result.message


def test_file_leaf_cannot_carry_a_record(setup: tuple[Any, BatchHeader, Chain]) -> None:
    doc = _proof(setup)
    text = _tampered(doc, lambda d: d["leaf"].update(kind="file"))
    assert verify_proof(text, setup[2].fetch).failure == FailureReason.INVALID_DOCUMENT


def test_rpc_failures_propagate(setup: tuple[Any, BatchHeader, Chain]) -> None:
    def down(_: bytes) -> bytes | None:
        raise ConnectionError("node down")

    with pytest.raises(ConnectionError):
        verify_proof(_proof(setup), down)


def test_fixed_header_vector_commitment() -> None:
    """tests/fixtures/merkle/header_v1.json (also checked against a JS ABI encoding when generated)."""
    data = json.loads((Path(__file__).resolve().parents[1] / "fixtures/merkle/header_v1.json").read_text())
    header = BatchHeader.model_validate(data["header"])
    assert "0x" + header_commitment(header).hex() == data["commitment"]
    vector = json.loads((Path(__file__).resolve().parents[1] / "fixtures/merkle/vector_v1.json").read_text())
    assert data["header"]["root"] == vector["root"]
