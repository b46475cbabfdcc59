"""The fixed cross-language vector on chain: trees built by our Python code AND by @openzeppelin/merkle-tree
(committed in tests/fixtures/merkle/) are anchored and every one of their proofs passes the contract's
``verify``; the contract's header commitment equals the vector's. (The JS library checking our proofs and
vice versa is tests/chain/test_ozjs_cross.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chain.clients import BatchIn, supplier_batch_id
from chain.merkle import MerkleTree
from chain.proof import BatchHeader, header_commitment

VECTORS = Path(__file__).resolve().parent.parent / "fixtures" / "merkle"
T0 = 1_767_225_600


def _b(x: str) -> bytes:
    return bytes.fromhex(x.removeprefix("0x"))


@pytest.fixture(scope="module")
def vector() -> dict:
    return json.loads((VECTORS / "vector_v1.json").read_text())


@pytest.mark.parametrize("source", ["python", "ozjs"])
def test_every_proof_of_the_fixed_vector_verifies_on_chain(chain, vector: dict, source: str) -> None:
    if source == "python":
        root, proofs = _b(vector["root"]), [[_b(p) for p in proof] for proof in vector["proofs"]]
        # our tree, rebuilt from the committed values, reproduces the committed root and proofs
        tree = MerkleTree.build([(_b(s), _b(d)) for s, d in zip(vector["salts"], vector["digests"], strict=True)])
        assert tree.root == root
        assert [tree.proof(i) for i in range(len(tree))] == proofs
    else:
        oz = json.loads((VECTORS / "oz_js_build_v1.json").read_text())
        root, proofs = _b(oz["root"]), [[_b(p) for p in proof] for proof in oz["proofs"]]
        assert root == _b(vector["root"])  # both libraries built the same tree
    chain.set_time(T0)
    batch = BatchIn(
        batch_id=supplier_batch_id(chain.addr("supplier"), f"batch:cross:{source}"),
        supplier=chain.addr("supplier"),
        root=root,
        record_count=len(proofs),
    )
    header = chain.anchors().anchor(batch).header
    for salt, digest, proof in zip(vector["salts"], vector["digests"], proofs, strict=True):
        assert chain.anchors().verify(batch.batch_id, header, _b(salt), _b(digest), proof)
    # a proof for one leaf does not verify another leaf's data
    assert not chain.anchors().verify(
        batch.batch_id, header, _b(vector["salts"][0]), _b(vector["digests"][1]), proofs[0]
    )


def test_committed_header_commitment_matches_the_contract(chain) -> None:
    fixture = json.loads((VECTORS / "header_v1.json").read_text())
    header = BatchHeader.model_validate(fixture["header"])
    assert header_commitment(header) == _b(fixture["commitment"])
    assert chain.anchors().onchain_commitment(header) == _b(fixture["commitment"])
