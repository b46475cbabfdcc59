"""``MerkleTree.leaf_hash_at`` and ``tree_from_texts``: a tree built from records the caller already holds as
RFC 8785 bytes (the upload path) is exactly the tree hashing the records again gives."""

from __future__ import annotations

import hashlib

from chain.canonical import canonical_bytes
from chain.merkle import build_batch_tree, leaf_hash, tree_from_texts


def test_stored_leaf_hashes_and_canonical_texts_match_a_fresh_computation() -> None:
    records = [{"sample": f"S{i}", "value": i / 7, "unit": "um", "note": None} for i in range(37)]
    texts = [canonical_bytes(r) for r in records]
    tree = tree_from_texts(texts, files=[b"raw file"], salts=[bytes([i]) * 32 for i in range(38)])
    assert [tree.leaf(i).digest for i in range(37)] == [hashlib.sha256(t).digest() for t in texts]
    for i in range(len(tree)):
        leaf = tree.leaf(i)
        assert tree.leaf_hash_at(i) == leaf_hash(leaf.salt, leaf.digest)
    same = build_batch_tree(records, files=[b"raw file"], salts=[bytes([i]) * 32 for i in range(38)])
    assert same.root == tree.root
