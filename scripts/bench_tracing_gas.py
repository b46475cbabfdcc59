"""Gas of the tracing-case paths (``TracingCases``), measured on the in-process EVM.

``measure_tracing_gas() -> dict`` deploys the consortium registry, a TestToken, the AgreementRegistry and
TracingCases (production contracts, no harness) on a fresh eth-tester/py-evm chain (same bytecode and
``prague`` rules as anvil), runs one warm-up case end to end so storage is in its steady state (counters,
balances, lab-fee slots non-zero), then measures a second case:

- ``gas_open_case``: openCase by the gateway oracle (batch header check, lab check, fee reservation);
- ``gas_submit_verdict``: submitVerdict alone (lab signature), on a third case;
- ``gas_finalize_3sig``: submitVerdictWithAcceptances (lab verdict + OEM + supplier acceptances; one
  ``VerdictFinalized`` event, signatures sent in 64-byte ERC-2098 form by the client);
- ``gas_settle``: settle of a supplier-fault verdict (penalty, counters, lab fee);
- ``gas_accept_direct`` / ``gas_accept_signed``: the OEM accepting by a direct call, the supplier's signed
  acceptance relayed (the separate-transaction path).

Run ``python scripts/bench_tracing_gas.py`` to print them and write ``bench/results/tracing_gas.json``.
DESIGN budget: finalizing a 3-signature verdict <= 70,000 gas.
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

from chain.agreements import AgreementRegistryClient, AgreementTerms, TemplateTerms, Tier, deploy_test_token  # noqa: E402
from chain.cases import Acceptance, NcCode, OpenRequest, ResponsibleParty, TracingCasesClient, Verdict  # noqa: E402
from chain.clients import AnchorRegistryClient, BatchIn, PartyKind, PartyRegistryClient, supplier_batch_id  # noqa: E402
from chain.contracts import contract_at, deploy  # noqa: E402
from chain.tx import TxSender  # noqa: E402

TARGETS = {"gas_finalize_3sig": 70_000}
_ROLES = ("admin", "oem", "supplier", "lab", "relayer", "oracle")
_DAY = 86_400


def _template() -> TemplateTerms:
    return TemplateTerms(
        template_id=keccak(text="bench/tracing/template"),
        version=1,
        document_hash=keccak(text="bench/tracing/template/doc"),
        deposit_base=10**24,
        initial_ratio_bps=1_000,
        min_ratio_bps=500,
        max_ratio_bps=3_000,
        max_step_bps=500,
        tiers=(Tier(0, 3_000), Tier(50, 2_000), Tier(85, 1_000)),
        penalty_critical=5 * 10**21,
        penalty_major=2 * 10**21,
        penalty_minor=5 * 10**20,
        penalty_per_ppm=10**18,
        ppm_target=100,
        supplier_response_seconds=5 * _DAY,
        lab_verdict_seconds=10 * _DAY,
        dispute_window_seconds=7 * _DAY,
        top_up_grace_seconds=14 * _DAY,
        lab_fee_cap=10**19,
    )


def measure_tracing_gas() -> dict[str, Any]:
    """Deploy everything on a fresh in-process chain and return the gas of each tracing path (flat keys)."""
    w3 = Web3(EthereumTesterProvider())
    keys = {r: keccak(text=f"qcn-bench-tracing-{r}") for r in _ROLES}
    addr = {r: str(Account.from_key(k).address) for r, k in keys.items()}
    for a in addr.values():
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": a, "value": Wei(10**21)})
    s = {r: TxSender(w3, k, poll_interval=0.002) for r, k in keys.items()}

    registry = deploy(w3, s["admin"]).registry
    parties = PartyRegistryClient(w3, registry, s["admin"])
    parties.register_party(addr["oem"], PartyKind.OEM, "OEM")
    parties.register_party(addr["supplier"], PartyKind.SUPPLIER, "Supplier")
    now = int(w3.eth.get_block("latest")["timestamp"])
    parties.register_party(
        addr["lab"], PartyKind.LAB, "Lab", accreditation_id="D-PL-1-01-00", accreditation_expiry=now + 365 * _DAY
    )
    token_address = deploy_test_token(s["admin"])
    token = contract_at(w3, "TestToken", token_address)
    agreements = AgreementRegistryClient.deploy(s["admin"], party_registry=registry, token=token_address)
    template = _template()
    agreements.with_sender(s["oem"]).publish_template(template)
    agreement_id = keccak(text="bench/tracing/agreement")
    terms = AgreementTerms(
        agreement_id=agreement_id,
        template_id=template.template_id,
        template_version=1,
        oem=addr["oem"],
        supplier=addr["supplier"],
        lab=addr["lab"],
        oem_nonce=0,
        supplier_nonce=0,
        deadline=now + _DAY,
    )
    agreements.activate(terms, agreements.sign(terms, keys["oem"]), agreements.sign(terms, keys["supplier"]))
    deposit = 10**23
    s["supplier"].send(token.functions.mint(addr["supplier"], deposit))
    s["supplier"].send(token.functions.approve(agreements.address, deposit))
    agreements.with_sender(s["supplier"]).deposit(agreement_id, deposit)

    cases = TracingCasesClient.deploy(
        s["admin"], party_registry=registry, anchor_registry=registry, agreement_registry=agreements.address
    )
    agreements.link_cases(cases.address)
    cases.grant_role("ORACLE_ROLE", addr["oracle"])
    pool = 10**20
    s["oem"].send(token.functions.mint(addr["oem"], pool))
    s["oem"].send(token.functions.approve(cases.address, pool))
    cases.with_sender(s["oem"]).fund_lab_fees(addr["oem"], pool)

    anchors = AnchorRegistryClient(w3, registry, s["supplier"])
    oracle = cases.with_sender(s["oracle"])
    relayer = cases.with_sender(s["relayer"])
    supplier = cases.with_sender(s["supplier"])

    def open_case(n: int) -> tuple[bytes, bytes, int]:
        batch_id = supplier_batch_id(addr["supplier"], f"bench/tracing/batch/{n}")
        header = anchors.anchor(
            BatchIn(
                batch_id=batch_id,
                supplier=addr["supplier"],
                root=keccak(text=f"root/{n}"),
                record_count=100,
                agreement_id=agreement_id,
            )
        ).header
        req = OpenRequest(agreement_id, batch_id, keccak(text=f"analysis/{n}"), keccak(text=f"ev/{n}"), lab_fee=10**18)
        result = oracle.open_case(req, header)
        case_id = bytes(result.event("CaseOpened")["caseId"])
        supplier.respond(case_id, keccak(text=f"response/{n}"))
        return case_id, batch_id, result.gas_used

    def verdict(case_id: bytes, batch_id: bytes) -> Verdict:
        t = int(w3.eth.get_block("latest")["timestamp"])
        return Verdict(
            case_id=case_id,
            batch_id=batch_id,
            root_cause_code=keccak(text="RC-017"),
            responsible_party=ResponsibleParty.SUPPLIER,
            nc_class=NcCode.MAJOR,
            analysis_hash=keccak(text="analysis"),
            deadline=t + _DAY,
        )

    def finalize(case_id: bytes, batch_id: bytes) -> int:
        v = verdict(case_id, batch_id)
        vh = relayer.verdict_hash(v)
        acc = Acceptance(case_id, vh, True, v.deadline)
        return relayer.submit_verdict_with_acceptances(
            v,
            relayer.sign_verdict(v, keys["lab"]),
            oem_deadline=v.deadline,
            oem_signature=relayer.sign_acceptance(acc, keys["oem"]),
            supplier_deadline=v.deadline,
            supplier_signature=relayer.sign_acceptance(acc, keys["supplier"]),
        ).gas_used

    warm_id, warm_batch, _ = open_case(0)  # warm-up: steady-state storage
    finalize(warm_id, warm_batch)
    relayer.settle(warm_id)

    case_id, batch_id, gas_open = open_case(1)
    gas_finalize = finalize(case_id, batch_id)
    gas_settle = relayer.settle(case_id).gas_used

    third_id, third_batch, _ = open_case(2)
    v3 = verdict(third_id, third_batch)
    sent = relayer.submit_verdict(v3, relayer.sign_verdict(v3, keys["lab"]))
    vh3 = bytes(sent.event("VerdictSubmitted")["verdictHash"])
    gas_verdict = sent.gas_used
    gas_accept_direct = cases.with_sender(s["oem"]).accept(third_id, vh3).gas_used
    acc3 = Acceptance(third_id, vh3, True, v3.deadline)
    gas_accept_signed = relayer.submit_acceptance(
        acc3, addr["supplier"], relayer.sign_acceptance(acc3, keys["supplier"])
    ).gas_used

    return {
        "gas_open_case": gas_open,
        "gas_submit_verdict": gas_verdict,
        "gas_finalize_3sig": gas_finalize,
        "gas_accept_direct": gas_accept_direct,
        "gas_accept_signed": gas_accept_signed,
        "gas_settle": gas_settle,
        "target_finalize_3sig": TARGETS["gas_finalize_3sig"],
        "finalize_within_target": gas_finalize <= TARGETS["gas_finalize_3sig"],
    }


def main() -> int:
    """Measure, print and write ``bench/results/tracing_gas.json``."""
    results = measure_tracing_gas()
    out = ROOT / "bench" / "results" / "tracing_gas.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for key, value in results.items():
        print(f"{key:28s} {value}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
