"""The gateway's view of the chain: one connected context (node, address book, typed clients, signers).

The gateway signs with operator keys that each hold one role (docs/trust-model.md): the registrar key
(registers parties, approves the gateway's relayer for suppliers), the relayer key (anchors batches
on behalf of suppliers, opens cases) and the arbiter key (relays rulings on disputed cases). It never
holds the consortium admin key: :func:`deploy_contracts` (the deploy step) alone uses that key.
Contract addresses come from the address book (``deployments/<chainId>.json``), never from code.
:class:`ChainHolder` connects lazily, so the gateway starts and accepts uploads while the node is down;
the anchoring worker catches up later.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.schemas import ChainInfo
from app.settings import Settings
from chain.errors import AddressBookError, ContractRevert, NodeUnavailable

if TYPE_CHECKING:  # web3, eth-account and the contract clients load on the first connection, not at start
    from web3 import Web3

    from chain.clients import AnchoredEvent, BatchIn
    from chain.contracts import Deployment

__all__ = ["AnchorFound", "AnchorResult", "ChainContext", "ChainHolder", "b32", "deploy_contracts"]


@dataclass(frozen=True)
class AnchorResult:
    """What the database records for an anchored batch (0x hex at this edge)."""

    batch_id: str
    tx_hash: str
    block_number: int
    anchored_at: int
    commitment: str
    root: str


AnchorFound = AnchorResult


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def b32(value: str) -> bytes:
    """32 bytes from the 0x hex the database stores."""
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes of hex, got {len(raw)}: {value!r}")
    return raw


class ChainContext:
    """A connected chain: typed clients signed by the registrar, relayer and arbiter keys."""

    def __init__(self, settings: Settings, w3: Web3, deployment: Deployment) -> None:
        from chain.agreements import AgreementRegistryClient
        from chain.cases import TracingCasesClient
        from chain.client import Rpc
        from chain.clients import AnchorRegistryClient, PartyRegistryClient
        from chain.node import StatePersister
        from chain.tx import TxSender

        self.settings = settings
        self.w3 = w3
        self.deployment = deployment
        self.chain_id = deployment.chain_id
        self.rpc = Rpc(w3, settings.rpc_url)  # the node's calls, failures translated to chain.errors types
        timeout = settings.tx_receipt_timeout_s
        self.registrar = TxSender(w3, settings.registrar_key.get_secret_value(), receipt_timeout=timeout)
        self.arbiter = TxSender(w3, settings.arbiter_key.get_secret_value(), receipt_timeout=timeout)
        self.relayer = TxSender(w3, settings.relayer_key.get_secret_value(), receipt_timeout=timeout)
        self.parties = PartyRegistryClient.from_deployment(w3, deployment, self.registrar)
        self.anchors = AnchorRegistryClient.from_deployment(w3, deployment, self.relayer)
        self.agreements = AgreementRegistryClient(w3, deployment.address_of("AgreementRegistry"), self.relayer)
        self.cases = TracingCasesClient(w3, deployment.address_of("TracingCases"), self.relayer)
        self.token_address = deployment.address_of("SettlementToken")
        self.persister: StatePersister | None = None
        durable = settings.durable_state_file
        if durable is not None:
            # the embedded node: a write is confirmed once the node's state holding it is on disk
            self.persister = StatePersister(settings.rpc_url, durable)
            for sender in (self.registrar, self.arbiter, self.relayer):
                sender.on_mined = self.persister.ensure

    def persist(self, block: int) -> None:
        """Make sure the chain state up to ``block`` survives a crash of the embedded node (no-op otherwise)."""
        if self.persister is not None:
            self.persister.ensure(block)

    @property
    def anchor_registry_address(self) -> str:
        return self.deployment.registry

    def info(self) -> ChainInfo:
        return ChainInfo(
            chain_id=self.chain_id,
            rpc_url=self.settings.rpc_url,
            contracts=dict(self.deployment.contracts),
            relayer=self.relayer.address,
            head_block=self.rpc.block_number(),
        )

    def resync_nonces(self) -> None:
        """Forget cached nonces (after the chain went back in time, or a transaction vanished)."""
        for sender in (self.relayer, self.registrar, self.arbiter):
            sender.resync_nonce()

    # -- parties -------------------------------------------------------------------------------------------
    def register_party(
        self,
        *,
        kind: str,
        account: str,
        name: str,
        accreditation_id: str | None,
        accreditation_expires: datetime | None,
    ) -> str | None:
        """Register on chain; returns the tx hash (None if the same party was already registered)."""
        from eth_utils import keccak

        from chain.clients import PartyKind, short_name

        kinds = {"oem": PartyKind.OEM, "supplier": PartyKind.SUPPLIER, "lab": PartyKind.LAB}
        encoded = name.encode()
        chain_name: str | bytes = name if len(encoded) <= 32 else keccak(encoded)
        expiry = int(accreditation_expires.astimezone(UTC).timestamp()) if accreditation_expires else 0
        try:
            sent = self.parties.register_party(
                account,
                kinds[kind],
                chain_name,
                accreditation_id=short_name(accreditation_id, "accreditation_id") if accreditation_id else None,
                accreditation_expiry=expiry,
            )
        except ContractRevert as exc:
            if exc.name == "PartyAlreadyRegistered" and int(exc.arguments.get("kind", -1)) == int(kinds[kind]):
                return None
            raise
        return sent.tx_hash

    def approve_relayer(self, *, supplier: str) -> str | None:
        """Let the gateway's relayer anchor for ``supplier`` (registrar signs); None if already approved."""
        try:
            return self.parties.approve_relayer(supplier, self.relayer.address).tx_hash
        except ContractRevert as exc:
            if exc.name == "RelayerAlreadyApproved":
                return None
            raise

    # -- anchors -------------------------------------------------------------------------------------------
    def fetch_commitment(self, batch_id: bytes) -> bytes | None:
        """The anchored commitment of ``batch_id`` (None if not anchored): what proofs are checked against."""
        result: bytes | None = self.anchors.commitment_of(batch_id)
        return result

    def commitments(self, batch_ids: list[str]) -> dict[str, str | None]:
        """On-chain commitments for several batch ids (0x hex in, 0x hex or None out)."""
        values = self.anchors.commitments_of(list(batch_ids))
        return {bid: _hex(v) if v is not None else None for bid, v in zip(batch_ids, values, strict=True)}

    def anchor(self, batches: list[BatchIn]) -> dict[str, AnchorResult]:
        """Anchor batches of one supplier under one agreement in one transaction (``anchor`` for one)."""
        receipts = [self.anchors.anchor(batches[0])] if len(batches) == 1 else self.anchors.anchor_many(batches)
        return {
            _hex(r.batch_id): AnchorResult(
                batch_id=_hex(r.batch_id),
                tx_hash=r.tx_hash,
                block_number=r.block_number,
                anchored_at=r.anchored_at,
                commitment=_hex(r.commitment),
                root=_hex(r.header.root),
            )
            for r in receipts
        }

    def find_anchor(self, batch_id: str) -> AnchorResult | None:
        """The anchor event of ``batch_id`` (the latest if several), from the registry's logs."""
        from chain.clients import decode_anchor_log, header_commitment

        params: Any = {
            "address": self.anchors.address,
            "fromBlock": self.deployment.block_number,
            "toBlock": "latest",
            "topics": [None, batch_id],
        }
        logs = self.rpc.logs(params)
        events = [e for e in (decode_anchor_log(log) for log in logs) if e is not None]
        if not events:
            return None
        e = events[-1]
        return AnchorResult(
            batch_id=batch_id,
            tx_hash=e.tx_hash,
            block_number=e.block_number,
            anchored_at=e.anchored_at,
            commitment=_hex(header_commitment(e.header)),
            root=_hex(e.root),
        )

    def anchored_events(self) -> list[AnchoredEvent]:
        """Every anchor event since the deployment (for audits and tests)."""
        events: list[AnchoredEvent] = self.anchors.anchored_events(self.deployment.block_number)
        return events


def _connect(settings: Settings) -> tuple[Web3, int]:
    """A connection to the node and its chain id (``NodeUnavailable`` if down or serving another chain)."""
    from chain.client import Rpc
    from chain.tx import http_web3, probe_endpoint

    probe_endpoint(settings.rpc_url)
    w3 = http_web3(settings.rpc_url)
    chain_id = Rpc(w3, settings.rpc_url).chain_id()
    if settings.chain_id is not None and chain_id != settings.chain_id:
        raise NodeUnavailable(settings.rpc_url, f"it serves chain id {chain_id}, QCN_CHAIN_ID is {settings.chain_id}")
    return w3, chain_id


def deploy_contracts(settings: Settings, *, force: bool = False) -> dict[str, Any]:
    """Deploy the registry with the admin key (unless the address book already has a live deployment)."""
    from eth_account import Account

    from chain.contracts import AddressBook, check_deployment
    from chain.stack import deploy_stack
    from chain.tx import TxSender

    w3, chain_id = _connect(settings)
    book = AddressBook(settings.deployments_dir)
    if book.has(chain_id) and not force:
        existing = book.load(chain_id)
        try:
            check_deployment(w3, existing)
            return {"chain_id": chain_id, "contracts": existing.contracts, "deployed": False}
        except AddressBookError:
            pass  # the chain was reset since: deploy anew
    admin = TxSender(w3, settings.admin_key.get_secret_value())
    if settings.env == "production" and not settings.settlement_token:
        raise AddressBookError("settings", "QCN_SETTLEMENT_TOKEN must name the settlement ERC-20 in production")
    relayer = ChainHolder.relayer_address(settings)
    deployment = deploy_stack(
        admin,
        relayer=relayer,
        token=settings.settlement_token,
        registrar=Account.from_key(settings.registrar_key.get_secret_value()).address,
        arbiter=Account.from_key(settings.arbiter_key.get_secret_value()).address,
    )
    path = book.save(deployment)
    return {"chain_id": chain_id, "contracts": deployment.contracts, "deployed": True, "address_book": str(path)}


class ChainHolder:
    """Connects on first use and keeps the context; a failed connection is retried on the next call."""

    def __init__(self, settings: Settings, context: ChainContext | None = None) -> None:
        self.settings = settings
        self._context = context
        self._lock = threading.Lock()

    def get(self) -> ChainContext:
        """The connected context, or a :class:`chain.errors.ChainError` saying why not."""
        if self._context is not None:
            return self._context
        from chain.contracts import AddressBook, check_deployment

        with self._lock:
            if self._context is None:
                w3, chain_id = _connect(self.settings)
                book = AddressBook(self.settings.deployments_dir)
                if not book.has(chain_id) and self.settings.env == "dev":
                    deploy_contracts(self.settings)
                deployment = book.load(chain_id)
                check_deployment(w3, deployment)
                self._context = ChainContext(self.settings, w3, deployment)
        return self._context

    @staticmethod
    def relayer_address(settings: Settings) -> str:
        from eth_account import Account

        return str(Account.from_key(settings.relayer_key.get_secret_value()).address)
