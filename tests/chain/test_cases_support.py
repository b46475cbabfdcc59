# ruff: noqa: F811 - pytest fixtures are imported by name and requested as parameters
"""Shared fixtures and helpers of the tracing-case contract tests (no tests here).

Builds on the agreement session chain of ``test_agreements_support`` (registry harness with OEM, suppliers
and a lab; token; agreement registry harness with the default template): registers a second lab,
activates the agreement with the lab assigned, funds the supplier's deposit, anchors one batch under the
agreement, deploys the ``TracingCasesHarness`` (linked to the agreement registry, ORACLE_ROLE to an
``oracle`` account, ARBITER_ROLE to an ``arbiter`` account), funds the OEM's lab-fee pool and sets every
contract clock to T0. Everything is rolled back to that snapshot after each test, and the whole set-up is
reverted after each module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak
from test_agreements_support import (  # noqa: F401 - fixtures re-exported for the test modules
    AGREEMENT_ID,
    DAY,
    T0,
    AgreementEnv,
    agreements_session,
)

from chain.agreements import AgreementRegistryClient
from chain.cases import Acceptance, NcCode, OpenRequest, ResponsibleParty, TracingCasesClient, Verdict
from chain.clients import AnchorRegistryClient, BatchHeader, BatchIn, PartyKind, PartyRegistryClient, supplier_batch_id
from chain.contracts import REGISTRY_HARNESS, contract_at

BATCH_ID = supplier_batch_id(Account.from_key(keccak(text="qcn-test-supplier")).address, "qcn/batch/B-0042")
ANALYSIS = keccak(text="root-cause analysis v1")
EVIDENCE = keccak(text="supplier 8D report")
ROOT_CAUSE = keccak(text="RC-017 bake oven temperature drift")
LAB_FEE = 3_000
POOL = 10_000
DEPOSIT = 100_000  # base 1,000,000 x 10 %
SUPPLIER_RESPONSE = 5 * DAY
LAB_VERDICT = 10 * DAY
DISPUTE_WINDOW = 7 * DAY


@dataclass
class CasesEnv:
    """The agreement environment plus the tracing contract, an anchored batch and its header."""

    ag: AgreementEnv
    cases_address: str
    header: BatchHeader

    @property
    def w3(self) -> Any:
        """The web3 instance."""
        return self.ag.w3

    def addr(self, role: str) -> str:
        """Address of ``role``."""
        return self.ag.addr(role)

    def key(self, role: str) -> bytes:
        """Private key of ``role``."""
        return bytes(self.ag.accounts[role].key)

    def cases(self, role: str = "relayer") -> TracingCasesClient:
        """Tracing client sending as ``role``."""
        return TracingCasesClient(self.w3, self.cases_address, self.ag.sender(role), artifact="TracingCasesHarness")

    def agreements(self, role: str = "admin") -> AgreementRegistryClient:
        """Agreement registry client sending as ``role``."""
        return self.ag.client(role)

    def parties(self, role: str = "admin") -> PartyRegistryClient:
        """Party registry client sending as ``role``."""
        return PartyRegistryClient(
            self.w3, self.ag.chain.deployment.registry, self.ag.sender(role), artifact=REGISTRY_HARNESS
        )

    def set_time(self, t: int) -> None:
        """Set the clocks of the party/anchor registry, the agreement registry and the tracing contract."""
        self.ag.chain.set_time(t)
        self.ag.set_time(t)
        self.cases("admin").set_time(t)

    def open(self, *, role: str = "oracle", **changes: Any) -> bytes:
        """Open the default case (lab fee LAB_FEE) and return its id."""
        fields: dict[str, Any] = {
            "agreement_id": AGREEMENT_ID,
            "batch_id": BATCH_ID,
            "analysis_hash": ANALYSIS,
            "evidence_hash": EVIDENCE,
            "lab_fee": LAB_FEE,
        }
        fields.update(changes)
        result = self.cases(role).open_case(OpenRequest(**fields), self.header)
        return bytes(result.event("CaseOpened")["caseId"])

    def verdict(self, case_id: bytes, **changes: Any) -> Verdict:
        """A supplier-fault, major-class verdict for ``case_id`` (nonce = round 0, valid one day)."""
        fields: dict[str, Any] = {
            "case_id": case_id,
            "batch_id": BATCH_ID,
            "root_cause_code": ROOT_CAUSE,
            "responsible_party": ResponsibleParty.SUPPLIER,
            "nc_class": NcCode.MAJOR,
            "analysis_hash": ANALYSIS,
            "deadline": T0 + 60 * DAY,
            "nonce": 0,
        }
        fields.update(changes)
        return Verdict(**fields)

    def acceptance(self, case_id: bytes, verdict_hash: bytes, **changes: Any) -> Acceptance:
        """An acceptance of ``verdict_hash`` (round 0, valid until T0 + 60 days)."""
        fields: dict[str, Any] = {
            "case_id": case_id,
            "verdict_hash": verdict_hash,
            "accept": True,
            "deadline": T0 + 60 * DAY,
            "nonce": 0,
        }
        fields.update(changes)
        return Acceptance(**fields)

    def token_balance(self, who: str) -> int:
        """Settlement-token balance of ``who``."""
        return self.ag.token_balance(who)


def _key(role: str) -> bytes:
    return keccak(text=f"qcn-test-{role}")


def anchor_batch(ag: AgreementEnv, batch_id: bytes, agreement_id: bytes = AGREEMENT_ID) -> BatchHeader:
    """Anchor ``batch_id`` for the supplier under ``agreement_id``; return its anchored header."""
    anchors = AnchorRegistryClient(
        ag.w3, ag.chain.deployment.registry, ag.sender("supplier"), artifact=REGISTRY_HARNESS
    )
    receipt = anchors.anchor(
        BatchIn(
            batch_id=batch_id,
            supplier=ag.addr("supplier"),
            root=keccak(batch_id + b"root"),
            record_count=125,
            verdict=1,
            agreement_id=agreement_id,
        )
    )
    return receipt.header


def _build(ag: AgreementEnv) -> CasesEnv:
    """Deploy and wire the tracing harness on the agreement session chain (see the module docstring)."""
    w3 = ag.w3
    funder = w3.eth.accounts[0]
    for role in ("oracle", "lab2", "outsider", "arbiter"):
        ag.accounts[role] = Account.from_key(_key(role))
        w3.eth.send_transaction({"from": funder, "to": ag.accounts[role].address, "value": 10**21})
    ag.chain.set_time(T0)
    parties = PartyRegistryClient(w3, ag.chain.deployment.registry, ag.sender("admin"), artifact=REGISTRY_HARNESS)
    parties.register_party(
        ag.addr("lab2"),
        PartyKind.LAB,
        "Second Lab",
        accreditation_id="D-PL-99999-01-00",
        accreditation_expiry=T0 + 400 * DAY,
    )
    ag.activate()
    ag.fund("supplier", DEPOSIT)
    ag.client("supplier").deposit(AGREEMENT_ID, DEPOSIT)
    header = anchor_batch(ag, BATCH_ID)

    admin = ag.sender("admin")
    client = TracingCasesClient.deploy(
        admin,
        party_registry=ag.chain.deployment.registry,
        anchor_registry=ag.chain.deployment.registry,
        agreement_registry=ag.registry_address,
        harness=True,
    )
    ag.client("admin").link_cases(client.address)
    client.grant_role("ORACLE_ROLE", ag.addr("oracle"))
    client.grant_role("ARBITER_ROLE", ag.addr("arbiter"))
    client.set_time(T0)
    oem = ag.sender("oem")
    oem.send(ag.token.functions.mint(ag.addr("oem"), POOL))
    oem.send(ag.token.functions.approve(client.address, POOL))
    TracingCasesClient(w3, client.address, oem, artifact="TracingCasesHarness").fund_lab_fees(ag.addr("oem"), POOL)
    env = CasesEnv(ag=ag, cases_address=client.address, header=header)
    ag.reset_senders()
    return env


@pytest.fixture(scope="module")
def cases_session(agreements_session: AgreementEnv) -> Iterator[CasesEnv]:
    """The tracing environment for one test module, built inside a snapshot that is reverted afterwards,
    so the agreement session chain other modules share is left exactly as it was."""
    tester = agreements_session.w3.provider.ethereum_tester
    snapshot = tester.take_snapshot()
    agreements_session.reset_senders()
    try:
        yield _build(agreements_session)
    finally:
        tester.revert_to_snapshot(snapshot)
        agreements_session.reset_senders()


@pytest.fixture
def cenv(cases_session: CasesEnv) -> Iterator[CasesEnv]:
    """The tracing session chain, reverted to its post-setup snapshot after the test."""
    tester = cases_session.w3.provider.ethereum_tester
    snapshot = tester.take_snapshot()
    cases_session.ag.reset_senders()
    try:
        yield cases_session
    finally:
        tester.revert_to_snapshot(snapshot)
        cases_session.ag.reset_senders()


def contract(env: CasesEnv, name: str, address: str) -> Any:
    """Web3 contract object of artifact ``name`` at ``address``."""
    return contract_at(env.w3, name, address)
