"""Gas of the agreement contract paths (templates/agreements/escrow/evaluation), measured on the in-process EVM.

``measure_contract_gas() -> dict`` deploys the consortium registry, a TestToken and an AgreementRegistry on a
fresh eth-tester/py-evm chain (same bytecode and `prague` rules as anvil) and returns the gas used by each
path as flat keys. Run ``python scripts/bench_contracts.py`` to print them and write
``bench/results/contracts.json``. Targets: activation (both signatures) <= 150,000; evaluate, penalty and
withdraw <= 100,000 each.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from eth_utils import keccak  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.providers.eth_tester import EthereumTesterProvider  # noqa: E402
from web3.types import Wei  # noqa: E402

from chain.agreements import (  # noqa: E402
    QUARTER_SECONDS,
    AgreementRegistryClient,
    AgreementTerms,
    TemplateTerms,
    Tier,
    deploy_test_token,
)
from chain.clients import AnchorRegistryClient, BatchIn, PartyKind, PartyRegistryClient, supplier_batch_id  # noqa: E402
from chain.contracts import contract_at, deploy  # noqa: E402
from chain.tx import TxSender  # noqa: E402

_EIP170 = 24_576
_INVARIANT_SEQUENCES = 8
_INVARIANT_STEPS = 30
TARGETS = {
    "gas_finalize_three_sigs": 70_000,
    "gas_agreement_activate": 150_000,
    "gas_evaluate": 100_000,
    "gas_penalty": 100_000,
    "gas_withdraw": 100_000,
}
_ROLES = ("admin", "oem", "supplier", "lab", "relayer", "settler", "anchorer")


def _template() -> TemplateTerms:
    return TemplateTerms(
        template_id=keccak(text="bench/template"),
        version=1,
        document_hash=keccak(text="bench/template/doc"),
        deposit_base=10**24,
        initial_ratio_bps=1_000,
        min_ratio_bps=500,
        max_ratio_bps=3_000,
        max_step_bps=500,
        tiers=(Tier(0, 3_000), Tier(50, 2_000), Tier(70, 1_500), Tier(85, 1_000), Tier(95, 500)),
        penalty_critical=5 * 10**22,
        penalty_major=2 * 10**22,
        penalty_minor=5 * 10**21,
        penalty_per_ppm=10**18,
        ppm_target=100,
        supplier_response_seconds=5 * 86_400,
        lab_verdict_seconds=10 * 86_400,
        dispute_window_seconds=7 * 86_400,
        top_up_grace_seconds=14 * 86_400,
    )


def measure_contract_gas() -> dict[str, Any]:
    """Deploy on a fresh in-process chain and return the gas of each agreement path (flat keys)."""
    w3 = Web3(EthereumTesterProvider())
    accounts = {r: Account.from_key(keccak(text=f"qcn-bench-{r}")) for r in _ROLES}
    for acct in accounts.values():
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": acct.address, "value": Wei(10**21)})
    senders = {r: TxSender(w3, a.key, poll_interval=0.001) for r, a in accounts.items()}
    addr = {r: str(a.address) for r, a in accounts.items()}
    deployment = deploy(w3, senders["admin"])
    parties = PartyRegistryClient(w3, deployment.registry, senders["admin"])
    parties.register_party(addr["oem"], PartyKind.OEM, "Bench OEM")
    parties.register_party(addr["supplier"], PartyKind.SUPPLIER, "Bench Supplier")
    parties.register_party(
        addr["lab"], PartyKind.LAB, "Bench Lab", accreditation_id="D-PL-1", accreditation_expiry=2**40
    )
    token_address = deploy_test_token(senders["admin"])
    token = contract_at(w3, "TestToken", token_address)
    admin = AgreementRegistryClient.deploy(senders["admin"], party_registry=deployment.registry, token=token_address)
    admin.link_cases(addr["settler"])  # the settler account stands in for the case contract
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    t0 = int(w3.eth.get_block("latest")["timestamp"])

    def client(role: str) -> AgreementRegistryClient:
        return admin.with_sender(senders[role])

    template = _template()
    published = client("oem").publish_template(template)

    def activate(n: int) -> int:
        c = client("relayer")
        terms = AgreementTerms(
            agreement_id=keccak(text=f"bench/agreement/{n}"),
            template_id=template.template_id,
            template_version=1,
            oem=addr["oem"],
            supplier=addr["supplier"],
            lab=addr["lab"],
            oem_nonce=c.nonces(addr["oem"]),
            supplier_nonce=c.nonces(addr["supplier"]),
            deadline=t0 + 86_400,
        )
        oem_sig, sup_sig = c.sign(terms, accounts["oem"].key), c.sign(terms, accounts["supplier"].key)
        return c.activate(terms, oem_sig, sup_sig).gas_used

    first_activation = activate(1)  # both nonces go 0 -> 1 (two fresh storage slots)
    repeat_activation = activate(2)  # nonces 1 -> 2
    agreement_id = keccak(text="bench/agreement/1")

    supplier_sender = senders["supplier"]
    supplier_sender.send(token.functions.mint(addr["supplier"], 10**24))
    supplier_sender.send(token.functions.approve(admin.address, 10**24))
    gas_deposit = client("supplier").deposit(agreement_id, 2 * 10**23).gas_used
    # the quarter's batch counts: the OEM's incoming inspection of an anchored batch (was: anchor-time counting)
    anchors = AnchorRegistryClient(w3, deployment.registry, senders["supplier"])
    inspected = []
    for n, accepted in ((1, True), (2, False)):
        receipt = anchors.anchor(
            BatchIn(
                batch_id=supplier_batch_id(addr["supplier"], f"bench/batch/{n}"),
                supplier=addr["supplier"],
                root=keccak(text=f"bench/root/{n}"),
                record_count=10,
                agreement_id=agreement_id,
            )
        )
        inspected.append(
            client("oem").record_inspection(agreement_id, receipt.batch_id, receipt.header, accepted=accepted).gas_used
        )
    record_first, record_next = inspected
    settler = client("settler")
    settler.open_case_for(agreement_id, keccak(text="c1"))
    gas_penalty = settler.close_case(agreement_id, keccak(text="c1"), 2).gas_used
    tester.time_travel(t0 + QUARTER_SECONDS + 60)  # production bytecode: block time moves
    gas_evaluate = client("relayer").evaluate(agreement_id, 0).gas_used
    gas_withdraw = client("supplier").withdraw(agreement_id, 10**22).gas_used
    gas_claim = client("oem").claim(agreement_id).gas_used
    return {
        "chain": "eth-tester/py-evm (prague), production AgreementRegistry bytecode",
        "gas_publish_template": published.gas_used,
        "gas_agreement_activate": first_activation,
        "gas_agreement_activate_repeat_parties": repeat_activation,
        "gas_deposit": gas_deposit,
        "gas_record_batch_first_in_quarter": record_first,
        "gas_record_batch_next": record_next,
        "record_batch_path": "recordInspection by the OEM (anchors no longer count: issue 10)",
        "gas_penalty": gas_penalty,
        "gas_penalty_ppm": None,  # penalizePpm removed (an OEM-alone path: issue 10)
        "gas_evaluate": gas_evaluate,
        "gas_withdraw": gas_withdraw,
        "gas_claim": gas_claim,
    }


def contract_sizes() -> dict[str, Any]:
    """Runtime bytecode size of each production contract and the smallest headroom under EIP-170."""
    from chain.contracts import load_artifact

    sizes = {
        name: len(bytes.fromhex(load_artifact(name).deployed_bytecode.removeprefix("0x")))
        for name in ("ConsortiumRegistry", "AgreementRegistry", "TracingCases", "ConsortiumTimelock")
    }
    out: dict[str, Any] = {f"bytes_{name}": size for name, size in sizes.items()}
    out["bytes_headroom_min"] = min(_EIP170 - size for size in sizes.values())
    return out


def measure_trust_model() -> dict[str, Any]:
    """Gas of the tracing paths (before: commit 85b8553), sizes, a bounded run of the role-based hypothesis
    machine (tests/chain/test_trust_invariants.py: ``hypothesis_invariant_*``), the Foundry invariant
    campaign (``invariant_calls`` / ``invariant_violations``) and Slither."""
    from bench_tracing_gas import measure_tracing_gas

    tracing = measure_tracing_gas()
    out: dict[str, Any] = {
        "gas_finalize_three_sigs": tracing["gas_finalize_3sig"],
        "gas_finalize_three_sigs_before": 75_726,  # commit 85b8553, same script and chain (measured)
        "gas_open_case": tracing["gas_open_case"],
        "gas_open_case_before": 264_945,  # commit 85b8553, measured
        "gas_settle": tracing["gas_settle"],
    }
    out.update(contract_sizes())
    out.update({f"hypothesis_{k}": v for k, v in _invariant_campaign().items()})
    out.update(_forge_campaign())
    out["role_attack_tests"] = _count_tests(ROOT / "tests" / "chain" / "test_trust_model.py")
    out.update(_slither())
    return out


def _forge_campaign() -> dict[str, Any]:
    """The Foundry invariant campaign (contracts/forge/, foundry.toml default profile: runs x depth calls):
    ``invariant_calls`` / ``invariant_violations`` and the build and run seconds."""
    from forge_invariants import run_forge_invariants

    result = run_forge_invariants("default")
    result.pop("forge_output_tail")
    return result


def _slither() -> dict[str, Any]:
    """Slither on the production contracts: High/Medium findings not reviewed in contracts/slither-triage.md."""
    from slither_check import run_slither

    result = run_slither()
    return {
        "slither_unexplained_high_medium": len(result.unexplained),
        "slither_high_medium_reviewed": len(result.explained),
        "slither_seconds": round(result.seconds, 1),
    }


def _invariant_campaign() -> dict[str, Any]:
    """Run the role-based invariant machine (tests/chain/test_trust_invariants.py) through pytest, bounded
    by ``_INVARIANT_SEQUENCES`` x ``_INVARIANT_STEPS``; returns the calls it made and the violations."""
    import os
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "invariants.json"
        env = {
            **os.environ,
            "QCN_INVARIANT_SEQUENCES": str(_INVARIANT_SEQUENCES),
            "QCN_INVARIANT_STEPS": str(_INVARIANT_STEPS),
            "QCN_INVARIANT_REPORT": str(report),
        }
        test = "tests/chain/test_trust_invariants.py::test_trust_invariants_hold_for_every_role"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test], cwd=ROOT, env=env, check=False
        )
        data: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {"invariant_violations": None}
    return data


def _count_tests(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("def test_"))


def main() -> int:
    """Measure, print against the targets and write ``bench/results/contracts.json``."""
    result = measure_contract_gas()
    result.update(measure_trust_model())
    out = ROOT / "bench" / "results" / "contracts.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    failed = False
    for key, value in result.items():
        target = TARGETS.get(key)
        verdict = "" if target is None else (f"  (target <= {target:,}: " + ("ok)" if value <= target else "OVER)"))
        failed |= target is not None and value > target
        print(f"{key:42s} {value:>12,}{verdict}" if isinstance(value, int) else f"{key:42s} {value}")
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
