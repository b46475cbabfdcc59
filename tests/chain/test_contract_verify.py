"""The contract's ``verify``: header commitment + OpenZeppelin StandardMerkleTree leaf
``keccak256(bytes.concat(keccak256(abi.encode(salt, digest))))`` under the root. The 4-leaf tree is
built here by hand (sorted-pair keccak) so the test does not depend on chain.merkle."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from chain.clients import BatchIn, supplier_batch_id

T0 = 1_767_225_600


def leaf(salt: bytes, digest: bytes) -> bytes:
    return keccak(keccak(abi_encode(["bytes32", "bytes32"], [salt, digest])))


def node(a: bytes, b: bytes) -> bytes:
    return keccak(min(a, b) + max(a, b))


@pytest.fixture
def tree(chain):
    salts = [keccak(text=f"salt{i}") for i in range(4)]
    digests = [keccak(text=f"record{i}") for i in range(4)]
    leaves = [leaf(s, d) for s, d in zip(salts, digests, strict=True)]
    n01, n23 = node(leaves[0], leaves[1]), node(leaves[2], leaves[3])
    root = node(n01, n23)
    proofs = [[leaves[1], n23], [leaves[0], n23], [leaves[3], n01], [leaves[2], n01]]
    chain.set_time(T0)
    batch = BatchIn(
        batch_id=supplier_batch_id(chain.addr("supplier"), "batch:verify"),
        supplier=chain.addr("supplier"),
        root=root,
        record_count=4,
        report_hash=keccak(text="report.pdf"),
    )
    receipt = chain.anchors().anchor(batch)
    return {"salts": salts, "digests": digests, "proofs": proofs, "batch": batch, "header": receipt.header}


def test_every_leaf_verifies(chain, tree):
    client, bid, header = chain.anchors(), tree["batch"].batch_id, tree["header"]
    for salt, digest, proof in zip(tree["salts"], tree["digests"], tree["proofs"], strict=True):
        assert client.verify(bid, header, salt, digest, proof)


def test_wrong_leaf_data_or_proof_fails(chain, tree):
    client, bid, header = chain.anchors(), tree["batch"].batch_id, tree["header"]
    salts, digests, proofs = tree["salts"], tree["digests"], tree["proofs"]
    assert not client.verify(bid, header, salts[0], digests[1], proofs[0])  # edited record
    assert not client.verify(bid, header, salts[1], digests[0], proofs[0])  # wrong salt
    assert not client.verify(bid, header, salts[0], digests[0], proofs[1])  # wrong path
    assert not client.verify(bid, header, salts[0], digests[0], proofs[0][:1])  # truncated path
    # a single-hashed leaf (64-byte-leaf attack shape) is not accepted as a leaf
    inner = keccak(abi_encode(["bytes32", "bytes32"], [salts[0], digests[0]]))
    assert not client.verify(bid, header, inner, digests[0], proofs[0])


def test_header_must_match_the_anchored_commitment(chain, tree):
    client, bid, header = chain.anchors(), tree["batch"].batch_id, tree["header"]
    args = (tree["salts"][0], tree["digests"][0], tree["proofs"][0])
    for changed in (
        {"record_count": 5},
        {"anchored_at": T0 + 1},
        {"report_hash": keccak(text="other.pdf")},
        {"supplier": chain.addr("supplier2")},
    ):
        assert not client.verify(bid, header.__class__(**{**header.__dict__, **changed}), *args), changed
    assert not client.verify(keccak(text="batch:unknown"), header, *args)
    assert client.verify(bid, header, *args)


def test_root_altered_with_matching_proof_fails(chain, tree):
    # a header whose root is the proven leaf's own sub-root: valid Merkle path, wrong commitment
    leaves = [leaf(s, d) for s, d in zip(tree["salts"], tree["digests"], strict=True)]
    fake = tree["header"].__class__(**{**tree["header"].__dict__, "root": node(leaves[0], leaves[1])})
    assert not chain.anchors().verify(tree["batch"].batch_id, fake, tree["salts"][0], tree["digests"][0], [leaves[1]])
