"""Benchmark records -> salted Merkle tree; prints figures and writes bench/results/merkle.json.

- ``records_per_s_{10k,100k,1m}``: realistic measurement records (9 fields: ids, float value, unit,
  uncertainty, verdict, ISO timestamp, operator) through `chain.merkle.build_batch_tree`: RFC 8785
  canonicalisation + SHA-256 + os.urandom salt + double-keccak leaf hash + sort + tree, one core,
  best of a few runs. ``records_per_s_*`` divide by the process's CPU time (the one-core cost;
  the machine is shared, so wall time also counts other jobs), ``*_wall`` by wall-clock time.
  The 1m case feeds 100k distinct records ten times over (same per-record work,
  each leaf a fresh salt) so the input does not take a gigabyte; ``peak_rss_mb_1m`` is the process's
  peak resident set after it.
- ``ozjs_records_per_s_100k``: the SAME 100k (salt, digest) values fed to @openzeppelin/merkle-tree
  1.0.8 ``StandardMerkleTree.of(values, ["bytes32","bytes32"])`` in node; timed inside node around
  that call only (its leaf hashing, sorting and tree; no process start, no JSON load); best of 3.
  Note the JS side gets the digests precomputed, the Python side computes them.
- ``ratio_vs_ozjs_100k`` = records_per_s_100k / ozjs_records_per_s_100k.
- ``proof_verify_ms``: `chain.merkle.verify` of one depth-20 proof in a 2^20-leaf tree, mean over
  many runs; ``proof_document_verify_ms``: the full offline `verify_proof` of a JSON proof document.
- ``keccak_ns_*``: per-call cost of each keccak binding installed (why chain.merkle uses pysha3).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chain.canonical import record_digests  # noqa: E402
from chain.merkle import MerkleTree, build_batch_tree, verify  # noqa: E402
from chain.proof import BatchHeader, header_commitment, make_proof, verify_proof  # noqa: E402

RESULTS = ROOT / "bench" / "results"
TOOL = ROOT / "chain" / "ozjs" / "merkle_tool.mjs"

CHARACTERISTICS = (
    ("film_thickness", "um", 12.0, 0.2, 0.05),
    ("breakdown_voltage", "V", 1250.0, 30.0, 12.0),
    ("sheet_resistance", "ohm/sq", 48.5, 1.1, 0.4),
    ("adhesion_force", "N", 31.0, 2.5, 0.8),
)


def make_records(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """`n` realistic measurement records (deterministic for a seed)."""
    rng = random.Random(seed)
    t0 = datetime(2024, 6, 1, 6, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        name, unit, mean, sd, u = CHARACTERISTICS[i % len(CHARACTERISTICS)]
        value = round(rng.gauss(mean, sd), 4)
        out.append(
            {
                "batch": f"B-2024-{i // 5000:05d}",
                "sample": f"S{i // len(CHARACTERISTICS):07d}",
                "characteristic": name,
                "value": value,
                "unit": unit,
                "uncertainty": u,
                "verdict": "pass" if abs(value - mean) < 3 * sd else "fail",
                "measured_at": (t0 + timedelta(seconds=7 * i)).isoformat(),
                "operator": rng.choice(("K. Müller", "J. Weber", "A. Öztürk")),
            }
        )
    return out


def _best_rate(source: Callable[[], Iterable[dict[str, Any]]], n: int, runs: int) -> tuple[float, float]:
    """Best (CPU-time rate, wall-clock rate) over `runs` builds of the tree of `source()`."""
    best_cpu = best_wall = float("inf")
    for _ in range(runs):
        data = source()
        wall, cpu = time.perf_counter(), time.process_time()
        tree = build_batch_tree(data)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
        assert len(tree) == n
        del tree
    return n / best_cpu, n / best_wall


def _keccak_costs() -> dict[str, float]:
    data = os.urandom(64)
    out: dict[str, float] = {}
    candidates: dict[str, Any] = {}
    try:
        from _pysha3 import keccak_256

        candidates["pysha3"] = lambda: keccak_256(data).digest()
    except ImportError:
        pass
    from Crypto.Hash import keccak

    candidates["pycryptodome"] = lambda: keccak.new(data=data, digest_bits=256).digest()
    from eth_utils import keccak as eth_keccak

    candidates["eth_utils"] = lambda: eth_keccak(data)
    for name, fn in candidates.items():
        number = 20000
        out[f"keccak_ns_{name}"] = round(min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e9, 1)
    return out


def _ozjs_rate(tree: MerkleTree, runs: int = 3) -> float | None:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump([leaf.to_json() for leaf in tree.leaves], fh)
        path = fh.name
    try:
        proc = subprocess.run(
            ["node", str(TOOL), "bench", path, str(runs)], capture_output=True, text=True, cwd=ROOT, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        print("ozjs bench failed:", proc.stdout, proc.stderr, file=sys.stderr)
        return None
    return float(json.loads(proc.stdout)["records_per_s"])


def _proof_verify_ms(runs: int = 20000) -> tuple[float, int]:
    n = 1 << 20
    pool = os.urandom(64 * n)
    tree = MerkleTree.build((pool[64 * i : 64 * i + 32], pool[64 * i + 32 : 64 * i + 64]) for i in range(n))
    del pool
    leaf = tree.leaf(12345)
    proof = tree.proof(12345)
    root = tree.root
    assert verify(root, leaf, proof)
    t = time.perf_counter()
    for _ in range(runs):
        verify(root, leaf, proof)
    return (time.perf_counter() - t) / runs * 1e3, len(proof)


def _document_verify_ms(runs: int = 2000) -> float:
    records = make_records(1000)
    tree = build_batch_tree(records)
    header = BatchHeader(
        root=tree.root,
        report_hash=bytes(32),
        agreement_id=bytes(32),
        supplier="0x" + "11" * 20,
        record_count=len(records),
        verdict=1,
        anchored_at=1_717_243_200,
    )
    commitments = {b"\x01" * 32: header_commitment(header)}
    doc = make_proof(
        tree=tree, index=7, chain_id=31337, registry="0x" + "22" * 20, batch_id=b"\x01" * 32,
        header=header, record=records[7], tx_hash=b"\x03" * 32, block_number=9,
    )  # fmt: skip
    text = doc.to_json()
    assert verify_proof(text, commitments.get).ok
    t = time.perf_counter()
    for _ in range(runs):
        verify_proof(text, commitments.get)
    return (time.perf_counter() - t) / runs * 1e3


def _throughput() -> dict[str, Any]:
    out: dict[str, Any] = {}
    out.update(_keccak_costs())

    records_100k = make_records(100_000)
    t = time.perf_counter()
    record_digests(records_100k)
    out["canonical_sha256_records_per_s_100k"] = round(100_000 / (time.perf_counter() - t))

    for label, n, runs in (("10k", 10_000, 5), ("100k", 100_000, 3)):
        subset = records_100k[:n]
        cpu, wall = _best_rate(lambda subset=subset: subset, n, runs)  # type: ignore[misc]
        out[f"records_per_s_{label}"] = round(cpu)
        out[f"records_per_s_{label}_wall"] = round(wall)

    js_tree = build_batch_tree(records_100k)
    js_rate = _ozjs_rate(js_tree)
    del js_tree
    out["ozjs_records_per_s_100k"] = round(js_rate) if js_rate else None
    out["ratio_vs_ozjs_100k"] = round(out["records_per_s_100k"] / js_rate, 2) if js_rate else None
    out["ozjs_timed"] = "StandardMerkleTree.of(values, ['bytes32','bytes32']) inside node; same salts+digests"

    def million(base: list[dict[str, Any]] = records_100k) -> Iterable[dict[str, Any]]:
        return itertools.chain.from_iterable(itertools.repeat(base, 10))

    cpu, wall = _best_rate(million, 1_000_000, runs=2)
    out["records_per_s_1m"] = round(cpu)
    out["records_per_s_1m_wall"] = round(wall)
    out["peak_rss_mb_1m"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def measure_merkle() -> dict[str, Any]:
    """Run the Merkle benchmarks (a minute or two on one core) and return flat figures."""
    out = _throughput()

    ms, depth = _proof_verify_ms()
    out["proof_verify_ms"] = round(ms, 4)
    out["proof_verify_depth"] = depth
    out["proof_document_verify_ms"] = round(_document_verify_ms(), 3)
    return out


def main() -> None:
    """Print the figures as JSON and write bench/results/merkle.json."""
    figures = measure_merkle()
    figures["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "merkle.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
