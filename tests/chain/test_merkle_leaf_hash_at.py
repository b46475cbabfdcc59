"""``MerkleTree.leaf_hash_at`` and ``build_batch_tree(canonical_out=...)``: what the upload path stores
without hashing or canonicalising twice is exactly what hashing again gives."""

from __future__ import annotations

from chain.canonical import canonical_bytes
from chain.merkle import build_batch_tree, leaf_hash


def test_stored_leaf_hashes_and_canonical_texts_match_a_fresh_computation() -> None:
    records = [{"sample": f"S{i}", "value": i / 7, "unit": "um", "note": None} for i in range(37)]
    texts: list[bytes] = []
    tree = build_batch_tree(records, files=[b"raw file"], salts=[bytes([i]) * 32 for i in range(38)],
                            canonical_out=texts)  # fmt: skip
    assert texts == [canonical_bytes(r) for r in records]
    for i in range(len(tree)):
        leaf = tree.leaf(i)
        assert tree.leaf_hash_at(i) == leaf_hash(leaf.salt, leaf.digest)
    same = build_batch_tree(records, files=[b"raw file"], salts=[bytes([i]) * 32 for i in range(38)])
    assert same.root == tree.root
