"""Salted Merkle trees compatible with OpenZeppelin's StandardMerkleTree (`standard-v1`).

Every leaf is the pair ``[salt, digest]`` with leaf encoding ``["bytes32", "bytes32"]``::

    leaf_hash = keccak256(keccak256(abi.encode(salt, digest)))   # abi.encode = salt || digest
    node_hash = keccak256(min(a, b) || max(a, b))                # sorted pairs

The tree has the exact shape of ``@openzeppelin/merkle-tree`` 1.0.8: leaf hashes sorted
ascending, stored reversed at the end of a heap-ordered array of ``2n - 1`` nodes, node ``i``
hashing children ``2i+1`` and ``2i+2``. Roots, proofs and ``dump()`` documents therefore agree
with the JS library and with OZ ``MerkleProof.verify`` on chain (tests/chain/test_ozjs_cross.py).

Example::

    tree = build_batch_tree([{"sample": "S1", "value": 12.31}])
    proof = tree.proof(0)
    assert verify(tree.root, tree.leaf(0), proof)
"""

from __future__ import annotations

import hashlib
import json
import os
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from chain.canonical import ProofError, record_digests

try:  # safe-pysha3: native keccak, ~6x faster per call than pycryptodome's ctypes binding
    from _pysha3 import keccak_256 as _keccak_new
except ImportError:  # pragma: no cover - exercised only where safe-pysha3 is missing
    from Crypto.Hash import keccak as _pycryptodome_keccak

    def _keccak_new(data: bytes = b"") -> Any:
        return _pycryptodome_keccak.new(data=data, digest_bits=256)


__all__ = [
    "LEAF_ENCODING",
    "EmptyTreeError",
    "InvalidNodeError",
    "InvalidTreeDumpError",
    "LeafNotFoundError",
    "MerkleError",
    "MerkleTree",
    "SaltedLeaf",
    "build_batch_tree",
    "file_digest",
    "keccak256",
    "leaf_hash",
    "node_hash",
    "process_proof",
    "tree_from_texts",
    "verify",
]

LEAF_ENCODING: tuple[str, str] = ("bytes32", "bytes32")
_FORMAT = "standard-v1"


class MerkleError(ProofError, ValueError):
    """A Merkle tree, leaf or proof is malformed or does not contain what was asked for."""


class EmptyTreeError(MerkleError):
    """A tree needs at least one leaf (OpenZeppelin rejects empty trees too)."""

    def __init__(self) -> None:
        super().__init__("cannot build a Merkle tree with no leaves")


class InvalidNodeError(MerkleError):
    """A salt, digest, node or proof element is not exactly 32 bytes."""

    def __init__(self, what: str, value: object) -> None:
        shown = value.hex() if isinstance(value, bytes | bytearray) else repr(value)
        size = len(value) if isinstance(value, bytes | bytearray) else "?"
        super().__init__(f"{what} must be 32 bytes, got {size}: {shown[:80]}")
        self.what = what


class LeafNotFoundError(MerkleError):
    """The requested leaf (or index) is not in the tree."""


class InvalidTreeDumpError(MerkleError):
    """A `standard-v1` dump document is malformed or inconsistent with its own hashes."""


def keccak256(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's, not NIST SHA3-256) of `data`."""
    return _keccak_new(data).digest()


def _check32(what: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InvalidNodeError(what, value)
    return bytes(value)


class SaltedLeaf(NamedTuple):
    """One leaf value: a random 32-byte salt and the SHA-256 digest of a record or file."""

    salt: bytes
    digest: bytes

    @property
    def hash(self) -> bytes:
        """The OZ standard leaf hash of this value."""
        return leaf_hash(self.salt, self.digest)

    def to_json(self) -> list[str]:
        """OZ dump form: ``["0x<salt>", "0x<digest>"]``."""
        return ["0x" + self.salt.hex(), "0x" + self.digest.hex()]


def leaf_hash(salt: bytes, digest: bytes) -> bytes:
    """``keccak256(keccak256(abi.encode(bytes32 salt, bytes32 digest)))``."""
    data = _check32("salt", salt) + _check32("digest", digest)
    return _keccak_new(_keccak_new(data).digest()).digest()


def node_hash(a: bytes, b: bytes) -> bytes:
    """Sorted-pair internal node hash ``keccak256(min(a, b) || max(a, b))``."""
    return _keccak_new(a + b if a < b else b + a).digest()


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Root reached from `leaf` (a leaf hash) by folding `proof` with sorted-pair hashing."""
    h = _check32("leaf hash", leaf)
    k = _keccak_new
    for i, sibling in enumerate(proof):
        if len(sibling) != 32:
            raise InvalidNodeError(f"proof element {i}", sibling)
        h = k(h + sibling if h < sibling else sibling + h).digest()
    return h


def verify(root: bytes, leaf: SaltedLeaf, proof: Sequence[bytes]) -> bool:
    """True when `proof` shows that `leaf` (salt, digest) is in the tree with root `root`."""
    return process_proof(leaf_hash(leaf.salt, leaf.digest), proof) == _check32("root", root)


def _hex32(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise InvalidTreeDumpError(f"{what} must be a 0x-prefixed 32-byte hex string, got {value!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise InvalidTreeDumpError(f"{what} is not hex: {value!r}") from None


@dataclass(frozen=True, slots=True, eq=False)
class MerkleTree:
    """An immutable salted `standard-v1` tree.

    Index arguments are *value* indexes: the position of the leaf in the sequence given to
    `build` (OZ's ``getProof(i)``), not positions in the sorted tree.
    """

    _nodes: bytes  # 32-byte nodes in OZ heap order, concatenated (memory: 64 bytes per leaf)
    _values: bytes  # salt || digest per value, in insertion order
    _tree_index: array  # value index -> heap index

    # -- construction -------------------------------------------------------------------

    @classmethod
    def build(cls, leaves: Iterable[SaltedLeaf | tuple[bytes, bytes]]) -> MerkleTree:
        """Build the tree over `leaves` (in this order; duplicates are kept, as in OZ)."""
        values = []
        for i, (salt, digest) in enumerate(leaves):
            values.append(_check32(f"salt of leaf {i}", salt) + _check32(f"digest of leaf {i}", digest))
        return cls._from_values(values)

    @classmethod
    def _from_values(cls, values: list[bytes]) -> MerkleTree:
        k = _keccak_new
        return cls._from_hashed(b"".join(values), [k(k(v).digest()).digest() for v in values])

    @classmethod
    def _from_hashed(cls, values: bytes, hashes: list[bytes]) -> MerkleTree:
        """Build from the concatenated 64-byte values and their leaf hashes (same order)."""
        n = len(hashes)
        if n == 0:
            raise EmptyTreeError
        k = _keccak_new
        order = sorted(range(n), key=hashes.__getitem__)
        size = 2 * n - 1
        tree: list[bytes] = [b""] * size
        # Sorted leaf j sits at heap index size-1-j, i.e. the tail of the array, reversed.
        tree[n - 1 :] = [hashes[i] for i in reversed(order)]
        tree_index = array("q", bytes(8 * n))
        for sorted_pos, value_index in enumerate(order):
            tree_index[value_index] = size - 1 - sorted_pos
        del order  # 1M ints for a 1M-leaf tree: free them before the internal nodes exist
        hi = n - 1  # internal nodes are 0 .. n-2; fill them one heap level at a time
        while hi > 0:
            lo = (1 << (hi.bit_length() - 1)) - 1  # first heap index of the level holding hi-1
            lefts = tree[2 * lo + 1 : 2 * hi + 1 : 2]
            rights = tree[2 * lo + 2 : 2 * hi + 2 : 2]
            tree[lo:hi] = [k(a + b if a < b else b + a).digest() for a, b in zip(lefts, rights, strict=True)]
            hi = lo
        nodes = b"".join(tree)
        del tree
        return cls(nodes, bytes(values), tree_index)

    # -- reading ------------------------------------------------------------------------

    @property
    def root(self) -> bytes:
        """The 32-byte Merkle root (what the batch header anchors)."""
        return self._nodes[:32]

    def __len__(self) -> int:
        return len(self._tree_index)

    def leaf_hash_at(self, index: int) -> bytes:
        """The leaf hash of value index `index`, read from the tree (no hashing)."""
        self._check_index(index)
        return self.node(self._tree_index[index])

    def leaf(self, index: int) -> SaltedLeaf:
        """The (salt, digest) value at value index `index`."""
        self._check_index(index)
        v = self._values[64 * index : 64 * index + 64]
        return SaltedLeaf(v[:32], v[32:])

    def packed_leaves(self, start: int = 0, stop: int | None = None) -> bytes:
        """The ``salt || digest`` values of value indexes ``start`` to ``stop`` (exclusive), 64 bytes each."""
        stop = len(self) if stop is None else min(stop, len(self))
        return self._values[64 * start : 64 * stop]

    @property
    def leaves(self) -> list[SaltedLeaf]:
        """All leaf values in insertion order."""
        return [self.leaf(i) for i in range(len(self))]

    def node(self, heap_index: int) -> bytes:
        """Node `heap_index` of the OZ heap array (0 is the root)."""
        return self._nodes[32 * heap_index : 32 * heap_index + 32]

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self._tree_index):
            raise LeafNotFoundError(f"leaf index {index} out of range for a tree of {len(self)} leaves")

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf `index` up to the root (OZ ``getProof(index)``)."""
        self._check_index(index)
        i = self._tree_index[index]
        nodes = self._nodes
        out = []
        while i > 0:
            s = i + 1 if i % 2 else i - 1
            out.append(nodes[32 * s : 32 * s + 32])
            i = (i - 1) // 2
        return out

    def index_of(self, leaf: SaltedLeaf | tuple[bytes, bytes]) -> int:
        """Value index of `leaf`; for duplicates the last one, like OZ's ``leafLookup``."""
        needle = bytes(leaf[0]) + bytes(leaf[1])
        values = self._values
        pos = values.rfind(needle)
        while pos != -1 and pos % 64:
            pos = values.rfind(needle, 0, pos + 63)
        if pos == -1:
            raise LeafNotFoundError(
                f"leaf (salt 0x{needle[:32].hex()}, digest 0x{needle[32:].hex()}) is not in the tree"
            )
        return pos // 64

    def proof_for(self, leaf: SaltedLeaf | tuple[bytes, bytes]) -> list[bytes]:
        """Proof for a leaf given by value (raises `LeafNotFoundError` if absent)."""
        return self.proof(self.index_of(leaf))

    # -- OZ dump format -----------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """The OZ ``StandardMerkleTree.dump()`` document (``format: standard-v1``)."""
        nodes = self._nodes
        values = self._values
        return {
            "format": _FORMAT,
            "leafEncoding": list(LEAF_ENCODING),
            "tree": ["0x" + nodes[i : i + 32].hex() for i in range(0, len(nodes), 32)],
            "values": [
                {
                    "value": [
                        "0x" + values[64 * j : 64 * j + 32].hex(),
                        "0x" + values[64 * j + 32 : 64 * j + 64].hex(),
                    ],
                    "treeIndex": ti,
                }
                for j, ti in enumerate(self._tree_index)
            ],
        }

    def dumps(self) -> str:
        """`dump()` as compact JSON text (what ``JSON.stringify(tree.dump())`` produces)."""
        return json.dumps(self.dump(), separators=(",", ":"))

    @classmethod
    def load(cls, data: dict[str, Any] | str | bytes) -> MerkleTree:
        """Load and fully validate an OZ `standard-v1` dump (dict or JSON text).

        Every node is recomputed, so a tampered dump raises `InvalidTreeDumpError`.
        """
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise InvalidTreeDumpError(f"tree dump is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidTreeDumpError("tree dump must be a JSON object")
        if data.get("format") != _FORMAT:
            raise InvalidTreeDumpError(f"unknown tree format {data.get('format')!r}, expected '{_FORMAT}'")
        if list(data.get("leafEncoding") or []) != list(LEAF_ENCODING):
            raise InvalidTreeDumpError(
                f"leaf encoding {data.get('leafEncoding')!r} is not supported, expected {list(LEAF_ENCODING)}"
            )
        raw_tree, raw_values = data.get("tree"), data.get("values")
        if not isinstance(raw_tree, list) or not isinstance(raw_values, list):
            raise InvalidTreeDumpError("tree dump needs 'tree' and 'values' arrays")
        if not raw_values:
            raise EmptyTreeError
        values = []
        for j, entry in enumerate(raw_values):
            value = entry.get("value") if isinstance(entry, dict) else None
            if not isinstance(value, list) or len(value) != 2:
                raise InvalidTreeDumpError(f"values[{j}].value must be [salt, digest]")
            values.append(_hex32(value[0], f"values[{j}] salt") + _hex32(value[1], f"values[{j}] digest"))
        tree = cls._from_values(values)
        if [h.lower() for h in raw_tree if isinstance(h, str)] != [
            "0x" + tree._nodes[i : i + 32].hex() for i in range(0, len(tree._nodes), 32)
        ]:
            raise InvalidTreeDumpError(
                "tree nodes do not match the hashes of its values (tampered, or not standard-v1)"
            )
        for j, entry in enumerate(raw_values):
            if entry.get("treeIndex") != tree._tree_index[j]:
                # Duplicate values may be placed either way round; accept if the node matches.
                ti = entry.get("treeIndex")
                leaf = values[j]
                if not (
                    isinstance(ti, int)
                    and len(tree) - 1 <= ti < 2 * len(tree) - 1
                    and tree.node(ti) == _keccak_new(_keccak_new(leaf).digest()).digest()
                ):
                    raise InvalidTreeDumpError(f"values[{j}].treeIndex {ti!r} does not hold that value's leaf hash")
                tree._tree_index[j] = ti
        return tree


def file_digest(source: bytes | str | os.PathLike[str]) -> bytes:
    """SHA-256 of a file's bytes, given the bytes or a path (read in 1 MiB chunks)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return hashlib.sha256(source).digest()
    h = hashlib.sha256()
    with Path(source).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.digest()


def build_batch_tree(
    records: Iterable[Any],
    files: Iterable[bytes | str | os.PathLike[str]] = (),
    salts: Sequence[bytes] | None = None,
) -> MerkleTree:
    """Canonicalise, digest, salt and build the tree of one batch.

    Leaf order: the records (index i = record i), then the files. Each leaf gets a fresh
    ``os.urandom(32)`` salt unless `salts` (one 32-byte salt per leaf, same order) is given
    for reproducible trees. A caller already holding the records' RFC 8785 bytes uses :func:`tree_from_texts`.
    """
    return _salted_tree(record_digests(records) + [file_digest(f) for f in files], salts)


def tree_from_texts(
    texts: Sequence[bytes], files: Iterable[bytes | str | os.PathLike[str]] = (), salts: Sequence[bytes] | None = None
) -> MerkleTree:
    """:func:`build_batch_tree` for records the caller already holds as their RFC 8785 bytes (same leaves)."""
    sha = hashlib.sha256
    return _salted_tree([sha(t).digest() for t in texts] + [file_digest(f) for f in files], salts)


def _salted_tree(digests: list[bytes], salts: Sequence[bytes] | None) -> MerkleTree:
    """Salt each digest (fresh random salts unless given), hash the leaves and build the tree."""
    k = _keccak_new
    n = len(digests)
    if salts is None:
        pool = os.urandom(32 * n)
        salt_list = [pool[32 * i : 32 * i + 32] for i in range(n)]
    else:
        if len(salts) != n:
            raise MerkleError(f"got {len(salts)} salts for {n} leaves")
        for i, salt in enumerate(salts):
            if not isinstance(salt, bytes | bytearray) or len(salt) != 32:
                raise InvalidNodeError(f"salt of leaf {i}", salt)
        salt_list = [bytes(x) for x in salts]
    values = [salt + digest for salt, digest in zip(salt_list, digests, strict=True)]
    hashes = [k(k(v).digest()).digest() for v in values]
    return MerkleTree._from_hashed(b"".join(values), hashes)
