"""Cross-verification with @openzeppelin/merkle-tree 1.0.8 (runs chain/ozjs/merkle_tool.mjs with node).

(a) trees and proofs built in Python load and verify in the JS library;
(b) the JS library builds the same root, dump and proofs from the same values, and they verify here;
plus the batch-header commitment computed independently with @metamask/abi-utils + keccak.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from chain.merkle import EmptyTreeError, MerkleTree, SaltedLeaf, verify
from chain.proof import BatchHeader, header_commitment

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "chain" / "ozjs" / "merkle_tool.mjs"
FIXTURES = REPO / "tests" / "fixtures" / "merkle"

pytestmark = pytest.mark.skipif(
    (shutil.which("node") is None or not (REPO / "node_modules" / "@openzeppelin" / "merkle-tree").is_dir())
    and not os.environ.get("CI"),  # in CI a missing toolchain is a failure, not a skip
    reason="needs node and npm packages (npm ci)",
)


def oz(command: str, payload: Any, *, check: bool = True) -> dict[str, Any]:
    proc = subprocess.run(
        ["node", str(TOOL), command, "-"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    out = json.loads(proc.stdout)
    if check:
        assert proc.returncode == 0, out
    return out


def _b(h: str) -> bytes:
    return bytes.fromhex(h[2:])


def _hex(proof: list[bytes]) -> list[str]:
    return ["0x" + p.hex() for p in proof]


def _random_leaves(n: int) -> list[SaltedLeaf]:
    return [SaltedLeaf(os.urandom(32), os.urandom(32)) for _ in range(n)]


def _python_tree_verified_by_js(tree: MerkleTree) -> dict[str, Any]:
    payload = {
        "dump": tree.dump(),
        "root": "0x" + tree.root.hex(),
        "proofs": [_hex(tree.proof(i)) for i in range(len(tree))],
    }
    return oz("verify", payload)


def test_fixed_vector_python_to_js() -> None:
    vector = json.loads((FIXTURES / "vector_v1.json").read_text(encoding="utf-8"))
    out = oz("verify", {"dump": vector["dump"], "root": vector["root"], "proofs": vector["proofs"]})
    assert out["root"] == vector["root"]
    assert out["treeVerify"] == [True] * len(vector["values"])
    assert out["staticVerify"] == [True] * len(vector["values"])


def test_fixed_vector_js_to_python() -> None:
    vector = json.loads((FIXTURES / "vector_v1.json").read_text(encoding="utf-8"))
    out = oz("build", vector["values"])
    assert out["root"] == vector["root"]
    assert out["proofs"] == vector["proofs"]
    tree = MerkleTree.load(out["dump"])
    for i, value in enumerate(vector["values"]):
        leaf = SaltedLeaf(_b(value[0]), _b(value[1]))
        assert verify(_b(out["root"]), leaf, [_b(p) for p in out["proofs"][i]])
        assert tree.leaf(i) == leaf


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 17, 64, 100])
def test_python_trees_verify_in_js(n: int) -> None:
    tree = MerkleTree.build(_random_leaves(n))
    out = _python_tree_verified_by_js(tree)
    assert out["root"] == "0x" + tree.root.hex()
    assert out["treeVerify"] == [True] * n
    assert out["staticVerify"] == [True] * n


@pytest.mark.parametrize("n", [1, 2, 3, 6, 33, 100])
def test_js_trees_match_python(n: int) -> None:
    leaves = _random_leaves(n)
    out = oz("build", [leaf.to_json() for leaf in leaves])
    tree = MerkleTree.build(leaves)
    assert out["root"] == "0x" + tree.root.hex()
    assert out["dump"] == tree.dump()
    assert out["proofs"] == [_hex(tree.proof(i)) for i in range(n)]
    for i, leaf in enumerate(leaves):
        assert verify(tree.root, leaf, [_b(p) for p in out["proofs"][i]])


def test_duplicate_leaves_agree_with_js() -> None:
    a, b = _random_leaves(2)
    leaves = [a, b, a, a]
    out = oz("build", [leaf.to_json() for leaf in leaves])
    tree = MerkleTree.build(leaves)
    assert out["dump"] == tree.dump()
    assert _python_tree_verified_by_js(tree)["treeVerify"] == [True] * 4


def test_js_rejects_tampered_python_proof() -> None:
    """The JS leg can say no: a flipped sibling fails there too (so the passes above mean something)."""
    tree = MerkleTree.build(_random_leaves(8))
    proofs = [_hex(tree.proof(i)) for i in range(8)]
    proofs[3][1] = "0x" + "00" * 32
    out = oz("verify", {"dump": tree.dump(), "root": "0x" + tree.root.hex(), "proofs": proofs})
    assert out["treeVerify"][3] is False and out["staticVerify"][3] is False
    assert out["treeVerify"].count(True) == 7


def test_js_rejects_tampered_python_dump() -> None:
    dump = MerkleTree.build(_random_leaves(4)).dump()
    dump["tree"][1] = "0x" + "00" * 32
    out = oz("verify", {"dump": dump, "root": dump["tree"][0], "proofs": [[]] * 4}, check=False)
    assert "error" in out


def test_empty_tree_rejected_by_both() -> None:
    out = oz("build", [], check=False)
    assert out["error"] == "Expected non-zero number of leaves"
    with pytest.raises(EmptyTreeError):
        MerkleTree.build([])


def test_header_commitment_matches_independent_js_abi_encoding() -> None:
    header = BatchHeader(
        root=os.urandom(32),
        report_hash=os.urandom(32),
        agreement_id=os.urandom(32),
        supplier="0x" + os.urandom(20).hex(),
        record_count=2**32 - 1,
        verdict=255,
        anchored_at=2**64 - 1,
        supersedes=os.urandom(32),
    )
    payload = header.model_dump(mode="json", by_alias=True)
    # Decimal strings: JSON.parse would round 2**64-1 to a double before BigInt sees it.
    payload = {k: str(v) if isinstance(v, int) else v for k, v in payload.items()}
    out = oz("commitment", payload)
    assert out["commitment"] == "0x" + header_commitment(header).hex()
