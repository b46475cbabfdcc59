"""Fixtures for the contract tests: one in-process EVM (eth-tester + py-evm) per session with the registry
harness deployed and the base parties registered, rolled back to that snapshot after every test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD
from web3.providers.eth_tester import EthereumTesterProvider

from chain.clients import AnchorRegistryClient, PartyKind, PartyRegistryClient
from chain.contracts import REGISTRY_HARNESS, Deployment, contract_at, deploy
from chain.errors import ContractRevert
from chain.tx import SentTx, TxSender

ROLES = ("admin", "oem", "supplier", "supplier2", "lab", "relayer", "stranger", "newcomer", "signer2")
LAB_ACCREDITATION = "D-PL-12345-01-00"
LAB_EXPIRY = 2_000_000_000  # 2033-05-18
FUNDING_WEI = 10**21


def _key(role: str) -> bytes:
    return keccak(text=f"qcn-test-{role}")


@dataclass
class ChainEnv:
    """A w3 with funded local keys and a deployed registry harness."""

    w3: Web3
    deployment: Deployment
    accounts: dict[str, LocalAccount]
    harness: Contract
    _senders: dict[str, TxSender] = field(default_factory=dict)
    lab_accreditation: str = LAB_ACCREDITATION
    lab_expiry: int = LAB_EXPIRY

    def addr(self, role: str) -> str:
        """Checksummed address of ``role``."""
        return str(self.accounts[role].address)

    def sender(self, role: str) -> TxSender:
        """A TxSender signing as ``role`` (fresh per test: nonces follow the snapshot)."""
        if role not in self._senders:
            self._senders[role] = TxSender(self.w3, self.accounts[role].key, poll_interval=0.005)
        return self._senders[role]

    def parties(self, role: str = "admin") -> PartyRegistryClient:
        """Party client sending as ``role``."""
        return PartyRegistryClient(self.w3, self.deployment.registry, self.sender(role), artifact=REGISTRY_HARNESS)

    def anchors(self, role: str = "supplier") -> AnchorRegistryClient:
        """Anchor client sending as ``role``."""
        return AnchorRegistryClient(self.w3, self.deployment.registry, self.sender(role), artifact=REGISTRY_HARNESS)

    def set_time(self, t: int) -> None:
        """Set the harness clock (0: follow block time)."""
        self.sender("admin").send(self.harness.functions.setTime(t))

    def events(self, sent: SentTx, name: str) -> list[dict[str, Any]]:
        """Decoded args of every ``name`` event of the registry in ``sent``."""
        decoded = self.harness.events[name]().process_receipt(sent.receipt, errors=DISCARD)
        return [dict(e["args"]) for e in decoded]


@pytest.fixture(scope="session")
def chain_session() -> ChainEnv:
    """Session-wide chain: deploy once, register OEM, two suppliers and a lab."""
    w3 = Web3(EthereumTesterProvider())
    accounts = {role: Account.from_key(_key(role)) for role in ROLES}
    funder = w3.eth.accounts[0]
    for acct in accounts.values():
        w3.eth.send_transaction({"from": funder, "to": acct.address, "value": Web3.to_wei(FUNDING_WEI, "wei")})
    admin_sender = TxSender(w3, accounts["admin"].key, poll_interval=0.005)
    deployment = deploy(w3, admin_sender, registry_artifact=REGISTRY_HARNESS)
    harness = contract_at(w3, REGISTRY_HARNESS, deployment.registry)
    env = ChainEnv(w3=w3, deployment=deployment, accounts=accounts, harness=harness)
    parties = PartyRegistryClient(w3, deployment.registry, admin_sender, artifact=REGISTRY_HARNESS)
    parties.register_party(env.addr("oem"), PartyKind.OEM, "Cell OEM AG")
    parties.register_party(env.addr("supplier"), PartyKind.SUPPLIER, "Anode Foils GmbH")
    parties.register_party(env.addr("supplier2"), PartyKind.SUPPLIER, "Separator Films s.r.o.")
    parties.register_party(
        env.addr("lab"),
        PartyKind.LAB,
        "PTB Lab 4.21",
        accreditation_id=LAB_ACCREDITATION,
        accreditation_expiry=LAB_EXPIRY,
    )
    return env


@pytest.fixture
def chain(chain_session: ChainEnv) -> Iterator[ChainEnv]:
    """The session chain, reverted to its post-setup snapshot after the test."""
    tester = chain_session.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    snapshot = tester.take_snapshot()
    chain_session._senders.clear()
    try:
        yield chain_session
    finally:
        tester.revert_to_snapshot(snapshot)
        chain_session._senders.clear()


@pytest.fixture
def expect_revert() -> Callable[..., AbstractContextManager[pytest.ExceptionInfo[ContractRevert]]]:
    """``with expect_revert("Name", arg=value, ...):`` asserts the exact custom error and its arguments."""

    @contextmanager
    def _expect(name: str, **arguments: Any) -> Iterator[pytest.ExceptionInfo[ContractRevert]]:
        with pytest.raises(ContractRevert) as exc_info:
            yield exc_info
        err = exc_info.value
        assert err.name == name, f"expected {name}, got {err}"
        assert err.arguments == arguments, f"{name} arguments {err.arguments} != {arguments}"

    return _expect
