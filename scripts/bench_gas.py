"""Gas of anchoring on the in-process EVM (eth-tester + py-evm, Prague rules; anvil charges the same).

``measure_anchor_gas()`` deploys a fresh ``ConsortiumRegistry``, registers a supplier and approves a
relayer, then anchors batches with realistic values (a batch id bound to the supplier: its address and 12
random bytes; random root and report hash,
recordCount 1000, verdict 1, zero agreement id unless the key says ``with_agreement``) and returns the
``gasUsed`` of each transaction (per batch for anchorMany). Targets: one batch <= 50,000; anchorMany
<= 27,000 per batch at 100 batches. ``python scripts/bench_gas.py`` prints the figures and writes
``bench/results/gas.json``.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from eth_utils import keccak  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.providers.eth_tester import EthereumTesterProvider  # noqa: E402

from chain.clients import AnchorRegistryClient, BatchIn, PartyKind, PartyRegistryClient, supplier_batch_id  # noqa: E402
from chain.contracts import deploy  # noqa: E402
from chain.tx import TxSender  # noqa: E402

TARGETS = {"gas_anchor_single": 50_000, "gas_anchor_many_per_batch_100": 27_000}
ZERO32 = b"\x00" * 32


def measure_anchor_gas(seed: int = 7) -> dict[str, int]:
    """Measured gas figures (flat dict of ints) for single and batched anchoring."""
    rng = random.Random(seed)
    w3 = Web3(EthereumTesterProvider())
    keys = {role: keccak(text=f"qcn-bench-{role}") for role in ("admin", "supplier", "relayer")}
    for key in keys.values():
        w3.eth.send_transaction(
            {"from": w3.eth.accounts[0], "to": Account.from_key(key).address, "value": Web3.to_wei(1000, "ether")}
        )
    senders = {role: TxSender(w3, key, poll_interval=0.001) for role, key in keys.items()}
    supplier = senders["supplier"].address
    deployment = deploy(w3, senders["admin"])
    parties = PartyRegistryClient(w3, deployment.registry, senders["admin"])
    parties.register_party(supplier, PartyKind.SUPPLIER, "Bench Supplier")
    parties.approve_relayer(supplier, senders["relayer"].address)
    by_supplier = AnchorRegistryClient(w3, deployment.registry, senders["supplier"])
    by_relayer = AnchorRegistryClient(w3, deployment.registry, senders["relayer"])

    def batch(agreement: bytes = ZERO32) -> BatchIn:
        return BatchIn(
            batch_id=supplier_batch_id(supplier, rng.randbytes(32)),
            supplier=supplier,
            root=rng.randbytes(32),
            report_hash=rng.randbytes(32),
            record_count=1000,
            verdict=1,
            agreement_id=agreement,
        )

    agreement = rng.randbytes(32)
    out = {
        "gas_anchor_single": by_supplier.anchor(batch()).gas_used,
        "gas_anchor_single_relayed": by_relayer.anchor(batch()).gas_used,
        "gas_anchor_single_with_agreement": by_supplier.anchor(batch(agreement)).gas_used,
    }
    for n in (10, 100):
        receipts = by_supplier.anchor_many([batch() for _ in range(n)])
        out[f"gas_anchor_many_per_batch_{n}"] = receipts[0].gas_used // n
    receipts = by_relayer.anchor_many([batch(agreement) for _ in range(100)])
    out["gas_anchor_many_per_batch_100_relayed_with_agreement"] = receipts[0].gas_used // 100
    return out


def main() -> int:
    """Print the figures against the targets and write bench/results/gas.json."""
    figures = measure_anchor_gas()
    for key, value in figures.items():
        target = TARGETS.get(key)
        verdict = "" if target is None else f"  (target <= {target:,}: {'OK' if value <= target else 'OVER'})"
        print(f"{key:55s} {value:>8,}{verdict}")
    out = ROOT / "bench" / "results" / "gas.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"backend": "eth-tester/py-evm (prague)", "targets": TARGETS, "figures": figures}
    out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
