"""Salted OZ standard-v1 Merkle trees: fixed vectors, tree shape, proofs, dump/load, edge cases."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from eth_utils import keccak as eth_keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.canonical import ProofError, record_digest
from chain.merkle import (
    EmptyTreeError,
    InvalidNodeError,
    InvalidTreeDumpError,
    LeafNotFoundError,
    MerkleError,
    MerkleTree,
    SaltedLeaf,
    build_batch_tree,
    file_digest,
    leaf_hash,
    node_hash,
    process_proof,
    verify,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "merkle"


def _b(h: str) -> bytes:
    return bytes.fromhex(h.removeprefix("0x"))


@pytest.fixture(scope="module")
def vector() -> dict:
    return json.loads((FIXTURES / "vector_v1.json").read_text(encoding="utf-8"))


def _vector_tree(vector: dict) -> MerkleTree:
    files = [_b(f["hex"]) for f in vector["files"]]
    return build_batch_tree(vector["records"], files=files, salts=[_b(s) for s in vector["salts"]])


# -- independent reference (eth_utils keccak, textbook recursion over the OZ heap layout) ---


def _ref_root(leaf_hashes: list[bytes]) -> bytes:
    tree: list[bytes] = [b""] * (2 * len(leaf_hashes) - 1)
    for i, h in enumerate(sorted(leaf_hashes)):
        tree[len(tree) - 1 - i] = h

    def node(i: int) -> bytes:
        if 2 * i + 1 >= len(tree):
            return tree[i]
        a, b = sorted([node(2 * i + 1), node(2 * i + 2)])
        return eth_keccak(a + b)

    return node(0)


# -- fixed vectors -------------------------------------------------------------------------


def test_vector_rebuilds_to_the_committed_root_proofs_and_dump(vector: dict) -> None:
    tree = _vector_tree(vector)
    assert "0x" + tree.root.hex() == vector["root"]
    assert [["0x" + p.hex() for p in tree.proof(i)] for i in range(len(tree))] == vector["proofs"]
    assert tree.dump() == vector["dump"]
    assert ["0x" + leaf.hash.hex() for leaf in tree.leaves] == vector["leafHashes"]


def test_vector_digests_are_sha256_of_canonical_json_and_files(vector: dict) -> None:
    for record, canonical, digest in zip(vector["records"], vector["canonical"], vector["digests"], strict=False):
        assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == digest[2:]
        assert record_digest(record).hex() == digest[2:]
    files = vector["files"]
    assert [file_digest(_b(f["hex"])).hex() for f in files] == [d[2:] for d in vector["digests"][-len(files) :]]


def test_javascript_library_output_is_reproduced(vector: dict) -> None:
    """Known answer produced by @openzeppelin/merkle-tree 1.0.8 (tests/fixtures/merkle/oz_js_build_v1.json)."""
    oz = json.loads((FIXTURES / "oz_js_build_v1.json").read_text(encoding="utf-8"))
    tree = MerkleTree.load(oz["dump"])
    assert "0x" + tree.root.hex() == oz["root"]
    for i, proof in enumerate(oz["proofs"]):
        assert tree.proof(i) == [_b(p) for p in proof]
        assert verify(_b(oz["root"]), tree.leaf(i), [_b(p) for p in proof])
    assert _vector_tree(vector).dump() == oz["dump"]


def test_leaf_and_node_hash_match_the_solidity_formulas() -> None:
    salt, digest = os.urandom(32), os.urandom(32)
    assert leaf_hash(salt, digest) == eth_keccak(eth_keccak(salt + digest))
    a, b = os.urandom(32), os.urandom(32)
    lo, hi = sorted([a, b])
    assert node_hash(a, b) == node_hash(b, a) == eth_keccak(lo + hi)


# -- shape and proofs ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32)), min_size=1, max_size=70
    )
)
def test_root_matches_reference_and_every_proof_verifies(pairs: list[tuple[bytes, bytes]]) -> None:
    tree = MerkleTree.build(pairs)
    assert tree.root == _ref_root([eth_keccak(eth_keccak(s + d)) for s, d in pairs])
    for i, (s, d) in enumerate(pairs):
        proof = tree.proof(i)
        assert process_proof(leaf_hash(s, d), proof) == tree.root
        assert verify(tree.root, SaltedLeaf(s, d), proof)
    # Sorted-leaf heap: depth is floor/ceil of log2(n), so proofs are short.
    assert max(len(tree.proof(i)) for i in range(len(pairs))) == (2 * len(pairs) - 1).bit_length() - 1


def test_tampering_any_part_breaks_verification() -> None:
    leaves = [SaltedLeaf(os.urandom(32), os.urandom(32)) for _ in range(9)]
    tree = MerkleTree.build(leaves)
    proof = tree.proof(4)
    leaf = leaves[4]
    assert verify(tree.root, leaf, proof)
    flip = bytes([leaf.salt[0] ^ 1]) + leaf.salt[1:]
    assert not verify(tree.root, SaltedLeaf(flip, leaf.digest), proof)
    assert not verify(tree.root, SaltedLeaf(leaf.salt, flip), proof)
    assert not verify(tree.root, leaf, [proof[0][::-1], *proof[1:]])
    assert not verify(tree.root, leaf, proof[:-1])
    assert not verify(os.urandom(32), leaf, proof)


def test_single_leaf_tree_root_is_the_leaf_hash_with_empty_proof() -> None:
    leaf = SaltedLeaf(os.urandom(32), os.urandom(32))
    tree = MerkleTree.build([leaf])
    assert tree.root == leaf.hash
    assert tree.proof(0) == []
    assert verify(tree.root, leaf, [])
    assert tree.dump()["tree"] == ["0x" + leaf.hash.hex()]
    assert tree.dump()["values"] == [{"value": leaf.to_json(), "treeIndex": 0}]


def test_empty_tree_is_rejected_like_openzeppelin() -> None:
    with pytest.raises(EmptyTreeError, match="no leaves"):
        MerkleTree.build([])
    with pytest.raises(EmptyTreeError):
        build_batch_tree([])
    assert issubclass(EmptyTreeError, MerkleError)
    assert issubclass(MerkleError, ProofError)


def test_duplicate_leaves_are_kept_and_both_provable() -> None:
    dup = SaltedLeaf(os.urandom(32), os.urandom(32))
    other = SaltedLeaf(os.urandom(32), os.urandom(32))
    tree = MerkleTree.build([dup, other, dup])
    assert len(tree) == 3
    assert len(tree.dump()["tree"]) == 5
    assert tree.root == _ref_root([dup.hash, other.hash, dup.hash])
    for i in range(3):
        assert verify(tree.root, tree.leaf(i), tree.proof(i))
    assert tree.index_of(dup) == 2  # OZ's hash lookup keeps the last duplicate
    assert tree.proof_for(dup) == tree.proof(2)


def test_proof_for_unknown_leaf_and_bad_index() -> None:
    tree = MerkleTree.build([SaltedLeaf(os.urandom(32), os.urandom(32)) for _ in range(3)])
    with pytest.raises(LeafNotFoundError, match="not in the tree"):
        tree.proof_for(SaltedLeaf(os.urandom(32), os.urandom(32)))
    with pytest.raises(LeafNotFoundError, match="out of range"):
        tree.proof(3)
    with pytest.raises(LeafNotFoundError):
        tree.proof(-1)


def test_index_of_ignores_matches_that_straddle_two_values() -> None:
    a = SaltedLeaf(b"\x01" * 32, b"\x02" * 32)
    b = SaltedLeaf(b"\x03" * 32, b"\x04" * 32)
    tree = MerkleTree.build([a, b])
    with pytest.raises(LeafNotFoundError):
        tree.index_of((b"\x02" * 32, b"\x03" * 32))  # digest of a + salt of b
    assert tree.index_of(b) == 1


@pytest.mark.parametrize(("salt", "digest"), [(b"\x00" * 31, b"\x00" * 32), (b"\x00" * 32, b"\x00" * 33), ("00", b"")])
def test_wrong_sized_leaf_parts_are_rejected(salt: object, digest: object) -> None:
    with pytest.raises(InvalidNodeError, match="must be 32 bytes"):
        MerkleTree.build([(salt, digest)])  # type: ignore[list-item]


def test_proof_element_of_wrong_size_is_rejected() -> None:
    with pytest.raises(InvalidNodeError, match="proof element 1"):
        process_proof(os.urandom(32), [os.urandom(32), os.urandom(20)])


# -- build_batch_tree ------------------------------------------------------------------------


def test_batch_tree_salts_records_then_files(tmp_path: Path) -> None:
    records = [{"sample": f"S{i}", "value": 12.3 + i} for i in range(5)]
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.7 fake" * 1000)
    salts = [bytes([i]) * 32 for i in range(7)]
    tree = build_batch_tree(records, files=[report, b"<xml/>"], salts=salts)
    assert len(tree) == 7
    assert tree.leaf(0) == SaltedLeaf(salts[0], record_digest(records[0]))
    assert tree.leaf(5).digest == file_digest(b"%PDF-1.7 fake" * 1000)
    assert tree.leaf(6).digest == file_digest(b"<xml/>")
    assert build_batch_tree(records, files=[report, b"<xml/>"], salts=salts).root == tree.root


def test_batch_tree_random_salts_hide_equal_records() -> None:
    records = [{"sample": "S1", "value": 1.0}] * 2
    t1, t2 = build_batch_tree(records), build_batch_tree(records)
    assert t1.root != t2.root
    assert t1.leaf(0).digest == t1.leaf(1).digest == t2.leaf(0).digest
    assert t1.leaf(0).salt != t1.leaf(1).salt


def test_batch_tree_salt_count_must_match() -> None:
    with pytest.raises(MerkleError, match="got 1 salts for 2 leaves"):
        build_batch_tree([{"a": 1}, {"a": 2}], salts=[b"\x00" * 32])
    with pytest.raises(MerkleError, match="got 3 salts for 2 leaves"):
        build_batch_tree([{"a": 1}, {"a": 2}], salts=[b"\x00" * 32] * 3)


# -- dump / load -----------------------------------------------------------------------------


def test_dump_load_round_trip_preserves_everything() -> None:
    tree = build_batch_tree([{"sample": f"S{i}"} for i in range(11)])
    loaded = MerkleTree.load(tree.dumps())
    assert loaded.root == tree.root
    assert loaded.leaves == tree.leaves
    assert [loaded.proof(i) for i in range(11)] == [tree.proof(i) for i in range(11)]
    assert loaded.dump() == tree.dump()


def test_load_rejects_tampered_or_foreign_dumps() -> None:
    dump = build_batch_tree([{"sample": f"S{i}"} for i in range(4)]).dump()
    bad_node = json.loads(json.dumps(dump))
    bad_node["tree"][2] = "0x" + "00" * 32
    with pytest.raises(InvalidTreeDumpError, match="do not match"):
        MerkleTree.load(bad_node)
    bad_value = json.loads(json.dumps(dump))
    bad_value["values"][0]["value"][1] = "0x" + "11" * 32
    with pytest.raises(InvalidTreeDumpError, match="do not match"):
        MerkleTree.load(bad_value)
    bad_index = json.loads(json.dumps(dump))
    bad_index["values"][0]["treeIndex"] = bad_index["values"][1]["treeIndex"]
    with pytest.raises(InvalidTreeDumpError, match="treeIndex"):
        MerkleTree.load(bad_index)
    with pytest.raises(InvalidTreeDumpError, match="unknown tree format 'simple-v1'"):
        MerkleTree.load({**dump, "format": "simple-v1"})
    with pytest.raises(InvalidTreeDumpError, match="leaf encoding"):
        MerkleTree.load({**dump, "leafEncoding": ["address", "uint256"]})
    with pytest.raises(InvalidTreeDumpError, match="32-byte hex"):
        MerkleTree.load({**dump, "values": [{"value": ["0x12", "0x34"], "treeIndex": 0}]})
    with pytest.raises(InvalidTreeDumpError, match="not JSON"):
        MerkleTree.load("{nope")
    with pytest.raises(EmptyTreeError):
        MerkleTree.load({**dump, "tree": [], "values": []})
