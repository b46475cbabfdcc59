"""Shared fixtures and helpers of the agreement contract tests (templates, agreements, escrow, evaluation).

Builds on the session chain of ``conftest.py`` (registry harness with OEM, two suppliers and a lab): deploys
a ``TestToken`` and an ``AgreementRegistryHarness`` once per session, publishes a default template, and
rolls everything back to that snapshot after each test. Imported by the ``test_agreements*``,
``test_deposits*`` and ``test_evaluation*`` modules (no tests here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.contract import Contract

from chain.agreements import (
    AgreementRegistryClient,
    AgreementTerms,
    TemplateTerms,
    Tier,
    TxResult,
    deploy_test_token,
)
from chain.clients import AnchorRegistryClient, BatchIn, supplier_batch_id
from chain.contracts import REGISTRY_HARNESS, contract_at
from chain.tx import TxSender

T0 = 1_800_000_000  # contract clock at the start of every test (2027-01-15)
DAY = 86_400
TEMPLATE_ID = keccak(text="qcn/template/coating-electrode")
AGREEMENT_ID = keccak(text="qcn/agreement/A-1")
EXTRA_ROLES = ("settler", "anchorer", "oem2")
MINTED = 10_000_000


def default_template(**changes: Any) -> TemplateTerms:
    """The coating template used across the tests (base 1,000,000; 10 % initial ratio)."""
    terms = TemplateTerms(
        template_id=TEMPLATE_ID,
        version=1,
        document_hash=keccak(text="coating-electrode template document v1"),
        deposit_base=1_000_000,
        initial_ratio_bps=1_000,
        min_ratio_bps=500,
        max_ratio_bps=3_000,
        max_step_bps=500,
        tiers=(Tier(0, 3_000), Tier(50, 2_000), Tier(70, 1_500), Tier(85, 1_000), Tier(95, 500)),
        penalty_critical=50_000,
        penalty_major=20_000,
        penalty_minor=5_000,
        penalty_per_ppm=10,
        ppm_target=100,
        supplier_response_seconds=5 * DAY,
        lab_verdict_seconds=10 * DAY,
        dispute_window_seconds=7 * DAY,
        top_up_grace_seconds=14 * DAY,
        lab_fee_cap=5_000,
    )
    return replace(terms, **changes)


@dataclass
class AgreementEnv:
    """Chain with the registry harness, the token and the agreement registry harness deployed."""

    chain: Any  # conftest.ChainEnv
    accounts: dict[str, LocalAccount]
    registry_address: str
    token: Contract
    template: TemplateTerms
    _senders: dict[str, TxSender] = field(default_factory=dict)
    _batch_seq: int = 0

    @property
    def w3(self) -> Any:
        """The web3 instance."""
        return self.chain.w3

    def addr(self, role: str) -> str:
        """Address of ``role``."""
        return str(self.accounts[role].address)

    def sender(self, role: str) -> TxSender:
        """The TxSender of ``role`` for this test (shared with conftest's ``ChainEnv`` so nonces agree)."""
        if role in self.chain.accounts:
            return self.chain.sender(role)  # type: ignore[no-any-return]
        if role not in self._senders:
            self._senders[role] = TxSender(self.chain.w3, self.accounts[role].key, poll_interval=0.002)
        return self._senders[role]

    def reset_senders(self) -> None:
        """Forget cached nonces (after a snapshot revert)."""
        self.chain._senders.clear()
        self._senders.clear()

    def client(self, role: str = "admin") -> AgreementRegistryClient:
        """Agreement registry client sending as ``role``."""
        return AgreementRegistryClient(
            self.chain.w3, self.registry_address, self.sender(role), artifact="AgreementRegistryHarness"
        )

    def link_settler(self) -> AgreementRegistryClient:
        """Link the ``settler`` account as the case contract (agreement-level tests drive the case calls
        directly); returns its client. Only inside a test: the link is permanent until the snapshot revert."""
        self.client("admin").link_cases(self.addr("settler"))
        return self.client("settler")

    def penalize(self, case_name: str, nc_code: int, agreement_id: bytes = AGREEMENT_ID) -> TxResult:
        """As the linked case contract: open and close a case with ``nc_code`` (1/2/3; needs ``link_settler``)."""
        settler = self.client("settler")
        case_id = keccak(text=case_name)
        settler.open_case_for(agreement_id, case_id)
        return settler.close_case(agreement_id, case_id, nc_code)

    def inspect_batches(self, accepted: int, rejected: int, agreement_id: bytes = AGREEMENT_ID) -> None:
        """The supplier anchors ``accepted + rejected`` batches under the agreement and the OEM records its
        incoming inspection of each (the counts of the quality score)."""
        anchors = AnchorRegistryClient(
            self.w3, self.chain.deployment.registry, self.sender("supplier"), artifact=REGISTRY_HARNESS
        )
        oem = self.client("oem")
        for verdict in [True] * accepted + [False] * rejected:
            self._batch_seq += 1
            name = f"inspected-{self._batch_seq}"
            receipt = anchors.anchor(
                BatchIn(
                    batch_id=supplier_batch_id(self.addr("supplier"), name),
                    supplier=self.addr("supplier"),
                    root=keccak(text=name + "/root"),
                    record_count=10,
                    verdict=1,
                    agreement_id=agreement_id,
                )
            )
            oem.record_inspection(agreement_id, receipt.batch_id, receipt.header, accepted=verdict)

    def set_time(self, t: int) -> None:
        """Set the agreement registry clock (the party registry keeps its own)."""
        self.client("admin").set_time(t)

    def terms(self, **changes: Any) -> AgreementTerms:
        """Agreement terms for the default template with the current nonces."""
        c = self.client()
        base = {
            "agreement_id": AGREEMENT_ID,
            "template_id": self.template.template_id,
            "template_version": self.template.version,
            "oem": self.addr("oem"),
            "supplier": self.addr("supplier"),
            "lab": self.addr("lab"),
            "oem_nonce": c.nonces(self.addr("oem")),
            "supplier_nonce": c.nonces(self.addr("supplier")),
            "deadline": T0 + DAY,
        }
        base.update(changes)
        return AgreementTerms(**base)

    def activate(self, terms: AgreementTerms | None = None, *, relayer: str = "relayer") -> TxResult:
        """Sign ``terms`` (default: ``self.terms()``) as OEM and supplier and activate via ``relayer``."""
        terms = terms or self.terms()
        c = self.client(relayer)
        return c.activate(terms, c.sign(terms, self.accounts["oem"].key), c.sign(terms, self.accounts["supplier"].key))

    def fund(self, role: str, amount: int) -> None:
        """Mint ``amount`` tokens to ``role`` and approve the agreement registry for it."""
        s = self.sender(role)
        s.send(self.token.functions.mint(self.addr(role), amount))
        s.send(self.token.functions.approve(self.registry_address, amount))

    def token_balance(self, who: str) -> int:
        """Token balance of an address."""
        return int(self.token.functions.balanceOf(who).call())


def _key(role: str) -> bytes:
    return keccak(text=f"qcn-test-{role}")


_SESSIONS: dict[int, AgreementEnv] = {}


@pytest.fixture(scope="session")
def agreements_session(chain_session: Any) -> AgreementEnv:
    """Deploy token + agreement registry harness on the session chain once (every module importing this
    fixture shares it), register a second OEM, publish the default template, set the clock to T0."""
    if id(chain_session) not in _SESSIONS:
        _SESSIONS[id(chain_session)] = _build_session(chain_session)
    return _SESSIONS[id(chain_session)]


def _build_session(chain_session: Any) -> AgreementEnv:
    w3 = chain_session.w3
    accounts = dict(chain_session.accounts)
    funder = w3.eth.accounts[0]
    for role in EXTRA_ROLES:
        accounts[role] = Account.from_key(_key(role))
        w3.eth.send_transaction({"from": funder, "to": accounts[role].address, "value": 10**21})
    admin = chain_session.sender("admin")
    token_address = deploy_test_token(admin)
    client = AgreementRegistryClient.deploy(
        admin, party_registry=chain_session.deployment.registry, token=token_address, harness=True
    )
    env = AgreementEnv(
        chain=chain_session,
        accounts=accounts,
        registry_address=client.address,
        token=contract_at(w3, "TestToken", token_address),
        template=default_template(),
    )
    chain_session.parties("admin").register_party(env.addr("oem2"), 1, "Second OEM")
    client.set_time(T0)
    env.client("oem").publish_template(env.template)
    return env


@pytest.fixture
def env(agreements_session: AgreementEnv) -> Iterator[AgreementEnv]:
    """The agreement session chain, reverted to its post-setup snapshot after the test."""
    tester = agreements_session.w3.provider.ethereum_tester
    snapshot = tester.take_snapshot()
    agreements_session.reset_senders()
    try:
        yield agreements_session
    finally:
        tester.revert_to_snapshot(snapshot)
        agreements_session.reset_senders()


@pytest.fixture
def active(env: AgreementEnv) -> AgreementEnv:
    """``env`` with AGREEMENT_ID activated at T0 and the supplier holding MINTED approved tokens."""
    env.activate()
    env.fund("supplier", MINTED)
    return env
