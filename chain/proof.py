"""Portable, versioned proofs that one record or file was anchored in a batch, and their offline check.

A proof document (JSON, ``format: qcn-proof``, ``version: 1``) carries everything except chain
state: the chain id and registry address, the batch id, the full `BatchHeader`, the leaf (the
record itself or a file's SHA-256, plus its salt), the Merkle siblings and the anchoring tx.
`verify_proof` needs one more thing, the commitment the registry stores for the batch, which the
caller supplies as ``fetch_commitment(batch_id) -> bytes | None`` (an RPC call in ``qcn verify``).

Checks, in order, each with its own `FailureReason`:

1. document format and version (then strict schema validation);
2. the disclosed record's canonical SHA-256 (or the supplied file's SHA-256) equals ``leaf.sha256``;
3. ``salt``, ``sha256`` and ``siblings`` lead to ``header.root`` (OZ standard-v1 hashing);
4. ``header_commitment(header)`` equals the commitment anchored for ``batchId``.

Exception tree (``ProofError`` is defined in `chain.canonical`, apart from ``chain.errors.ChainError``: checking
a proof needs neither web3 nor a node)::

    ProofError
     +-- CanonicalizationError (ValueError)   chain.canonical
     +-- MerkleError (ValueError)             chain.merkle
     +-- ProofFormatError (ValueError)        a proof document is malformed
          +-- UnsupportedProofError           unknown `format` or `version`
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from eth_utils import to_checksum_address
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from chain.canonical import CanonicalizationError, ProofError, record_digest
from chain.merkle import MerkleTree, file_digest, keccak256, leaf_hash, process_proof

__all__ = [
    "HEADER_ABI_TYPES",
    "PROOF_FORMAT",
    "PROOF_VERSION",
    "BatchHeader",
    "FailureReason",
    "ProofDocument",
    "ProofError",
    "ProofFormatError",
    "ProofLeaf",
    "TxRef",
    "UnsupportedProofError",
    "VerificationResult",
    "header_commitment",
    "make_proof",
    "proof_json_schema",
    "verify_file_against_proof",
    "verify_proof",
]

PROOF_FORMAT = "qcn-proof"
PROOF_VERSION = 1
HEADER_ABI_TYPES: tuple[str, ...] = (
    "bytes32",  # root
    "bytes32",  # reportHash
    "bytes32",  # agreementId
    "address",  # supplier
    "uint32",  # recordCount
    "uint8",  # verdict
    "uint64",  # anchoredAt
    "bytes32",  # supersedes
)
ZERO32 = bytes(32)

FetchCommitment = Callable[[bytes], bytes | None]


class ProofFormatError(ProofError, ValueError):
    """A proof document is not valid JSON or violates the `qcn-proof` schema; `errors` lists why."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        self.errors = errors or []
        detail = "; ".join(self.errors[:10])
        super().__init__(f"{message}: {detail}" if detail else message)


class UnsupportedProofError(ProofFormatError):
    """The document's `format` or `version` is not one this verifier understands."""


# -- field types -----------------------------------------------------------------------

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_HEX20 = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _parse_bytes32(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray) and len(value) == 32:
        return bytes(value)
    if isinstance(value, str) and _HEX32.match(value):
        return bytes.fromhex(value[2:])
    raise ValueError("expected a 0x-prefixed 32-byte hex string")


def _parse_address(value: Any) -> str:
    if isinstance(value, bytes | bytearray) and len(value) == 20:
        value = "0x" + bytes(value).hex()
    if isinstance(value, str) and _HEX20.match(value):
        return str(to_checksum_address(value))
    raise ValueError("expected a 0x-prefixed 20-byte hex address")


Bytes32 = Annotated[
    bytes,
    BeforeValidator(_parse_bytes32),
    PlainSerializer(lambda b: "0x" + b.hex(), return_type=str),
    WithJsonSchema({"type": "string", "pattern": _HEX32.pattern}),
]
Address = Annotated[
    str,
    BeforeValidator(_parse_address),
    WithJsonSchema({"type": "string", "pattern": _HEX20.pattern}),
]
Uint8 = Annotated[StrictInt, Field(ge=0, le=2**8 - 1)]
Uint32 = Annotated[StrictInt, Field(ge=0, le=2**32 - 1)]
Uint64 = Annotated[StrictInt, Field(ge=0, le=2**64 - 1)]

_MODEL_CONFIG = ConfigDict(
    extra="forbid", frozen=True, alias_generator=to_camel, validate_by_name=True, validate_by_alias=True
)


class BatchHeader(BaseModel):
    """The batch header whose commitment the registry stores (one storage slot per batch).

    JSON uses the Solidity names (``reportHash``, ``recordCount``, ...); Python the snake_case ones.
    """

    model_config = _MODEL_CONFIG

    root: Bytes32
    report_hash: Bytes32
    agreement_id: Bytes32
    supplier: Address
    record_count: Uint32
    verdict: Uint8
    anchored_at: Uint64
    supersedes: Bytes32 = ZERO32

    def as_abi_tuple(self) -> tuple[bytes, bytes, bytes, str, int, int, int, bytes]:
        """Field values in Solidity struct order, ready for a web3 call of ``verify(...)``."""
        return (
            self.root,
            self.report_hash,
            self.agreement_id,
            self.supplier,
            self.record_count,
            self.verdict,
            self.anchored_at,
            self.supersedes,
        )

    def as_tuple(self) -> tuple[bytes, bytes, bytes, str, int, int, int, bytes]:
        """Alias of :meth:`as_abi_tuple` (what web3 takes for a ``BatchHeader`` argument)."""
        return self.as_abi_tuple()

    @property
    def anchored_at_iso(self) -> str:
        """`anchored_at` (block time, Unix seconds) as a UTC ISO-8601 string."""
        return datetime.fromtimestamp(self.anchored_at, tz=UTC).isoformat().replace("+00:00", "Z")


def header_commitment(header: BatchHeader) -> bytes:
    """``keccak256(abi.encode(root, reportHash, agreementId, supplier, recordCount, verdict,
    anchoredAt, supersedes))`` — each field one 32-byte ABI word, as the registry computes it."""
    from eth_abi import encode as abi_encode  # eth-abi loads on first use, not at start

    return keccak256(abi_encode(list(HEADER_ABI_TYPES), list(header.as_abi_tuple())))


class ProofLeaf(BaseModel):
    """The proven leaf: a record (optionally disclosed) or a file, by SHA-256, with its salt."""

    model_config = _MODEL_CONFIG

    kind: Literal["record", "file"]
    record: dict[str, Any] | None = None
    sha256: Bytes32
    salt: Bytes32

    @model_validator(mode="after")
    def _file_has_no_record(self) -> ProofLeaf:
        if self.kind == "file" and self.record is not None:
            raise ValueError("a file leaf cannot carry a record")
        return self


class TxRef(BaseModel):
    """The anchoring transaction."""

    model_config = _MODEL_CONFIG

    hash: Bytes32
    block_number: Annotated[StrictInt, Field(ge=0)]


class ProofDocument(BaseModel):
    """A `qcn-proof` v1 document; build with `make_proof`, read with `from_json`."""

    model_config = _MODEL_CONFIG

    format: Literal["qcn-proof"] = "qcn-proof"
    version: Literal[1] = 1
    chain_id: Annotated[StrictInt, Field(gt=0)]
    registry: Address
    batch_id: Bytes32
    header: BatchHeader
    leaf: ProofLeaf
    siblings: list[Bytes32]
    tx: TxRef | None = None

    def to_json(self, *, indent: int | None = 2) -> str:
        """JSON text of the document (camelCase keys, 0x-hex bytes)."""
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> ProofDocument:
        """Parse and strictly validate a document.

        Raises `UnsupportedProofError` for an unknown format/version and `ProofFormatError`
        (with one entry per schema violation in ``.errors``) for anything else malformed.
        """
        if isinstance(data, str | bytes | bytearray):
            try:
                raw = json.loads(data)
            except ValueError as exc:
                raise ProofFormatError("proof is not valid JSON", [str(exc)]) from exc
        elif isinstance(data, Mapping):
            raw = dict(data)
        else:
            raw = data
        if not isinstance(raw, dict):
            raise ProofFormatError("proof must be a JSON object")
        if raw.get("format") != PROOF_FORMAT:
            raise UnsupportedProofError(f"unknown proof format {raw.get('format')!r}, expected '{PROOF_FORMAT}'")
        if raw.get("version") != PROOF_VERSION:
            raise UnsupportedProofError(
                f"unsupported proof version {raw.get('version')!r}; this verifier reads version {PROOF_VERSION}"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            raise ProofFormatError("proof document is invalid", errors) from exc


def proof_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the `qcn-proof` v1 document, for other-language verifiers."""
    schema = ProofDocument.model_json_schema(by_alias=True)
    schema["$id"] = "https://qcn.example/schemas/qcn-proof-v1.json"
    schema["title"] = "qcn-proof v1"
    return schema


def make_proof(
    *,
    tree: MerkleTree,
    index: int,
    chain_id: int,
    registry: str,
    batch_id: bytes,
    header: BatchHeader,
    record: Mapping[str, Any] | None = None,
    kind: Literal["record", "file"] = "record",
    tx_hash: bytes | None = None,
    block_number: int | None = None,
) -> ProofDocument:
    """Build the proof for leaf `index` of `tree` (records first, then files, as in `build_batch_tree`).

    Pass `record` to disclose it (its digest must be the leaf's); omit it to prove only the hash.
    Raises `ProofError` if the header's root is not the tree's or the record does not match.
    """
    if header.root != tree.root:
        raise ProofError(f"header root 0x{header.root.hex()} is not this tree's root 0x{tree.root.hex()}")
    leaf = tree.leaf(index)
    if record is not None:
        if kind != "record":
            raise ProofError("a file leaf cannot disclose a record")
        if record_digest(dict(record)) != leaf.digest:
            raise ProofError(f"record digest does not match leaf {index} of the tree")
    tx = None
    if tx_hash is not None:
        tx = TxRef(hash=tx_hash, block_number=block_number if block_number is not None else 0)
    return ProofDocument(
        chain_id=chain_id,
        registry=registry,
        batch_id=batch_id,
        header=header,
        leaf=ProofLeaf(
            kind=kind, record=dict(record) if record is not None else None, sha256=leaf.digest, salt=leaf.salt
        ),
        siblings=tree.proof(index),
        tx=tx,
    )


# -- verification ----------------------------------------------------------------------


class FailureReason(StrEnum):
    """Why a proof failed; each check has its own reason(s)."""

    INVALID_DOCUMENT = "invalid_document"  # not JSON / violates the schema
    UNSUPPORTED_FORMAT = "unsupported_format"  # unknown format or version
    RECORD_NOT_CANONICAL = "record_not_canonical"  # disclosed record has NaN, huge ints, ...
    RECORD_DIGEST_MISMATCH = "record_digest_mismatch"  # record edited after anchoring
    FILE_DIGEST_MISMATCH = "file_digest_mismatch"  # the file is not the anchored one
    PATH_MISMATCH = "path_mismatch"  # salt / sha256 / siblings do not lead to header.root
    ROOT_ALTERED = "root_altered"  # path leads to the anchored root, but header.root was edited
    NOT_ANCHORED = "not_anchored"  # no commitment for batchId on this chain
    COMMITMENT_MISMATCH = "commitment_mismatch"  # header fields differ from what was anchored
    WRONG_DEPLOYMENT = "wrong_deployment"  # the proof names another chain or registry than the trusted one


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of `verify_proof`: `ok`, the checks passed in order, and who anchored what when."""

    ok: bool
    checks_passed: list[str]
    failure: FailureReason | None = None
    message: str = ""
    notes: list[str] = field(default_factory=list)
    chain_id: int | None = None
    registry: str | None = None
    batch_id: str | None = None
    leaf_kind: str | None = None
    supplier: str | None = None
    anchored_at: str | None = None  # UTC ISO-8601 from header.anchoredAt
    tx_hash: str | None = None
    block_number: int | None = None

    def summary(self) -> str:
        """Human-readable multi-line report (what ``qcn verify`` prints)."""
        lines = [("VALID" if self.ok else f"INVALID ({self.failure}): {self.message}")]
        lines += [f"  ok   {c}" for c in self.checks_passed]
        lines += [f"  note {n}" for n in self.notes]
        if self.supplier:
            lines.append(f"  supplier {self.supplier}, anchored {self.anchored_at}")
        if self.tx_hash:
            lines.append(f"  tx {self.tx_hash} in block {self.block_number}")
        return "\n".join(lines)


def verify_proof(
    proof: ProofDocument | str | bytes | Mapping[str, Any],
    fetch_commitment: FetchCommitment,
    *,
    file_sha256: bytes | None = None,
    expected_chain_id: int | None = None,
    expected_registry: str | None = None,
) -> VerificationResult:
    """Verify a proof offline against the commitment `fetch_commitment(batch_id)` returns.

    `file_sha256` (used by `verify_file_against_proof`) is the SHA-256 of the file the caller
    holds. `expected_chain_id` / `expected_registry` are the deployment the verifier trusts: a proof
    naming another chain or registry fails (`wrong_deployment`) before anything is fetched, since a
    registry chosen by the proof's author could return any commitment it likes.
    Never raises for a bad proof: the result says which check failed and why.
    Exceptions from `fetch_commitment` itself (e.g. RPC down) propagate unchanged.
    """
    passed: list[str] = []
    notes: list[str] = []

    def fail(reason: FailureReason, message: str, doc: ProofDocument | None = None) -> VerificationResult:
        return _result(False, passed, notes, doc, reason, message)

    # 1. format / version / schema
    if isinstance(proof, ProofDocument):
        doc = proof
    else:
        try:
            doc = ProofDocument.from_json(proof)
        except UnsupportedProofError as exc:
            return fail(FailureReason.UNSUPPORTED_FORMAT, str(exc))
        except ProofFormatError as exc:
            return fail(FailureReason.INVALID_DOCUMENT, str(exc))
    passed.append(f"format {doc.format} v{doc.version}")
    if expected_chain_id is not None and doc.chain_id != expected_chain_id:
        return fail(
            FailureReason.WRONG_DEPLOYMENT,
            f"the proof is for chain id {doc.chain_id}, the trusted deployment is on chain id {expected_chain_id}",
            doc,
        )
    if expected_registry is not None and doc.registry.lower() != expected_registry.lower():
        return fail(
            FailureReason.WRONG_DEPLOYMENT,
            f"the proof names registry {doc.registry}, but the anchor registry of chain {doc.chain_id} "
            f"is {expected_registry}",
            doc,
        )
    if expected_registry is not None:
        passed.append(f"registry {doc.registry} is the trusted anchor registry")

    # 2. the data itself
    leaf = doc.leaf
    if file_sha256 is not None:
        if leaf.kind != "file":
            return fail(FailureReason.FILE_DIGEST_MISMATCH, "this proof is for a record, not a file", doc)
        if file_sha256 != leaf.sha256:
            return fail(
                FailureReason.FILE_DIGEST_MISMATCH,
                f"file sha256 0x{file_sha256.hex()} differs from the proven 0x{leaf.sha256.hex()}",
                doc,
            )
        passed.append(f"file sha256 0x{leaf.sha256.hex()} matches")
    elif leaf.record is not None:
        try:
            digest = record_digest(leaf.record)
        except CanonicalizationError as exc:
            return fail(FailureReason.RECORD_NOT_CANONICAL, f"record cannot be canonicalised: {exc}", doc)
        if digest != leaf.sha256:
            return fail(
                FailureReason.RECORD_DIGEST_MISMATCH,
                f"record hashes to 0x{digest.hex()}, the proof says 0x{leaf.sha256.hex()}: it was altered",
                doc,
            )
        passed.append("record digest (RFC 8785 + SHA-256) matches leaf.sha256")
    else:
        notes.append(f"{leaf.kind} content not supplied: only its sha256 0x{leaf.sha256.hex()} is proven")

    # 3. Merkle path
    computed_root = process_proof(leaf_hash(leaf.salt, leaf.sha256), doc.siblings)
    if computed_root != doc.header.root:
        onchain = fetch_commitment(doc.batch_id)
        anchored_header = doc.header.model_copy(update={"root": computed_root})
        if onchain is not None and header_commitment(anchored_header) == onchain:
            return fail(
                FailureReason.ROOT_ALTERED,
                f"header.root 0x{doc.header.root.hex()} was altered: the path leads to the anchored root "
                f"0x{computed_root.hex()}",
                doc,
            )
        return fail(
            FailureReason.PATH_MISMATCH,
            f"salt, sha256 and {len(doc.siblings)} siblings lead to 0x{computed_root.hex()}, "
            f"not to header.root 0x{doc.header.root.hex()}",
            doc,
        )
    passed.append(f"Merkle path ({len(doc.siblings)} siblings) leads to header.root 0x{computed_root.hex()}")

    # 4. anchored commitment
    onchain = fetch_commitment(doc.batch_id)
    if onchain is None:
        return fail(
            FailureReason.NOT_ANCHORED,
            f"batch 0x{doc.batch_id.hex()} is not anchored on this chain (chain id {doc.chain_id}, "
            f"registry {doc.registry})",
            doc,
        )
    expected = header_commitment(doc.header)
    if expected != onchain:
        return fail(
            FailureReason.COMMITMENT_MISMATCH,
            f"header commitment 0x{expected.hex()} differs from the anchored 0x{bytes(onchain).hex()}: "
            "a header field was altered",
            doc,
        )
    passed.append(f"header commitment matches the one anchored for batch 0x{doc.batch_id.hex()}")
    return _result(True, passed, notes, doc, None, "")


def verify_file_against_proof(
    path: str | os.PathLike[str],
    proof: ProofDocument | str | bytes | Mapping[str, Any],
    fetch_commitment: FetchCommitment,
) -> VerificationResult:
    """Verify that the file at `path` is exactly the one the proof's leaf anchors."""
    return verify_proof(proof, fetch_commitment, file_sha256=file_digest(Path(path)))


def _result(
    ok: bool,
    passed: list[str],
    notes: list[str],
    doc: ProofDocument | None,
    reason: FailureReason | None,
    message: str,
) -> VerificationResult:
    if doc is None:
        return VerificationResult(ok=ok, checks_passed=passed, failure=reason, message=message, notes=notes)
    return VerificationResult(
        ok=ok,
        checks_passed=passed,
        failure=reason,
        message=message,
        notes=notes,
        chain_id=doc.chain_id,
        registry=doc.registry,
        batch_id="0x" + doc.batch_id.hex(),
        leaf_kind=doc.leaf.kind,
        supplier=doc.header.supplier,
        anchored_at=doc.header.anchored_at_iso,
        tx_hash="0x" + doc.tx.hash.hex() if doc.tx else None,
        block_number=doc.tx.block_number if doc.tx else None,
    )
