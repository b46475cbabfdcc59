"""The one base of every typed contract client, and the node's JSON-RPC with its failures translated.

Everything web3, eth-tester or the HTTP stack raises (``ContractLogicError`` and ``ContractCustomError`` with
revert data, ``TimeExhausted``, ``ProviderConnectionError``, ``requests`` connection errors, ...) is translated
here, once, by :func:`chain.errors.translate_exception` into the ``chain.errors.ChainError`` tree: reverts
decoded by name (``ContractRevert``), an unreachable node (``NodeUnavailable``), anything else
(``TransactionFailed``). Callers outside ``chain/`` only ever see those types:

- :class:`Rpc` wraps the node calls a caller makes directly (block number and time, nonces, logs, a
  simulated call, a raw broadcast, a receipt);
- :class:`ContractClient` is the base of ``PartyRegistryClient``/``AnchorRegistryClient``
  (:mod:`chain.clients`), ``AgreementRegistryClient`` (:mod:`chain.agreements`) and ``TracingCasesClient``
  (:mod:`chain.cases`): views through :meth:`ContractClient._call`, transactions through
  :meth:`ContractClient._tx` (a :class:`TxResult` with this contract's decoded events).

web3 itself is imported by whoever builds the ``Web3`` object (:func:`chain.tx.http_web3`), not here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from eth_utils import to_checksum_address
from hexbytes import HexBytes

from chain.abi import event_topics
from chain.contracts import contract_at
from chain.errors import ChainError, InvalidInput, NonceRejected, TransactionFailed, translate_exception

if TYPE_CHECKING:
    from web3 import Web3

    from chain.tx import SentTx, TxSender

__all__ = ["ContractClient", "RoleClient", "Rpc", "TxResult"]

T = TypeVar("T")
# what geth/anvil, Besu and eth-tester answer to a nonce already used or a transaction already known
_REPLAY = ("nonce too low", "nonce_too_low", "already known", "replacement transaction")


@dataclass(frozen=True)
class TxResult:
    """A mined transaction: hash (0x hex), block, gas used and the decoded events of this contract."""

    tx_hash: str
    block_number: int
    gas_used: int
    events: tuple[tuple[str, dict[str, Any]], ...] = field(default_factory=tuple)

    def event(self, name: str) -> dict[str, Any]:
        """Arguments of the single ``name`` event; raises ``LookupError`` if absent or repeated."""
        found = [args for n, args in self.events if n == name]
        if len(found) != 1:
            raise LookupError(f"expected one {name} event in tx {self.tx_hash}, found {len(found)}")
        return found[0]


class Rpc:
    """Node calls with every failure translated to a ``ChainError`` (``endpoint`` names the node in messages)."""

    def __init__(self, w3: Web3, endpoint: str | None = None) -> None:
        self.w3 = w3
        self.endpoint = endpoint or str(getattr(w3.provider, "endpoint_uri", None) or type(w3.provider).__name__)

    def __call__(self, fn: Callable[[], T], *, tx_hash: str | None = None) -> T:
        """``fn()``, its failure translated."""
        try:
            return fn()
        except ChainError:
            raise
        except Exception as exc:  # web3 raises many types; they are translated here and nowhere else
            raise translate_exception(exc, tx_hash=tx_hash, endpoint=self.endpoint) from exc

    def block_number(self) -> int:
        return int(self(lambda: self.w3.eth.block_number))

    def chain_id(self) -> int:
        return int(self(lambda: self.w3.eth.chain_id))

    def latest_timestamp(self) -> int:
        """The chain's clock: the timestamp of the latest block."""
        return int(self(lambda: self.w3.eth.get_block("latest"))["timestamp"])

    def pending_nonce(self, account: str) -> int:
        """The next nonce of ``account``, counting its pending transactions."""
        checksummed = to_checksum_address(account)
        return int(self(lambda: self.w3.eth.get_transaction_count(checksummed, "pending")))

    def logs(self, params: Mapping[str, Any]) -> list[Any]:
        return list(self(lambda: self.w3.eth.get_logs(params)))  # type: ignore[arg-type]

    def receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        """The receipt of ``tx_hash``; None while the node does not know it (pending or lost)."""
        from web3.exceptions import TransactionNotFound

        def get() -> Mapping[str, Any] | None:
            try:
                return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                return None

        return self(get, tx_hash=tx_hash)

    def block(self, number: int | str = "latest") -> Mapping[str, Any]:
        return self(lambda: self.w3.eth.get_block(number))  # type: ignore[arg-type]

    def fees(self) -> dict[str, int]:
        """Fee fields for a transaction sent now: EIP-1559 (twice the base fee plus a 1 gwei tip; no tip on a
        zero-base-fee chain) when the chain has a base fee, a legacy ``gasPrice`` otherwise."""
        base = self.block("latest").get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(self(lambda: self.w3.eth.gas_price))}
        tip = 1_000_000_000 if base else 0
        return {"maxFeePerGas": int(base) * 2 + tip, "maxPriorityFeePerGas": tip}

    def knows_transaction(self, tx_hash: str) -> bool:
        """True if the node has ``tx_hash`` (pending or mined)."""
        from web3.exceptions import TransactionNotFound

        def get() -> bool:
            try:
                return self.w3.eth.get_transaction(HexBytes(tx_hash)) is not None
            except TransactionNotFound:
                return False

        return self(get, tx_hash=tx_hash)

    def simulate(self, tx: Mapping[str, Any]) -> None:
        """Run ``tx`` as a call on the latest state: a revert raises ``ContractRevert`` (decoded), nothing is sent."""
        self(lambda: self.w3.eth.call(dict(tx)))  # type: ignore[arg-type]

    def send_raw(self, raw: bytes) -> str:
        """Broadcast a signed transaction; returns its hash (0x hex). A refusal for the nonce raises
        ``NonceRejected`` (``too_high`` for a gap), other failures their translation."""
        try:
            return HexBytes(self(lambda: self.w3.eth.send_raw_transaction(raw))).to_0x_hex()
        except TransactionFailed as exc:
            message = str(exc.__cause__ or exc).lower()
            if "nonce too high" in message or "nonce_too_high" in message:
                raise NonceRejected(None, str(exc.__cause__ or exc), too_high=True) from exc
            if any(marker in message for marker in _REPLAY):
                raise NonceRejected(None, str(exc.__cause__ or exc), too_high=False) from exc
            raise


class ContractClient:
    """Typed access to one deployed contract of ours: views, transactions with decoded events, roles.

    Writes are sent by ``sender`` (``with_sender`` gives a copy sending as someone else); a read-only client
    (no sender) refuses writes with ``InvalidInput``. Every failure is a ``chain.errors.ChainError``; reverts
    are ``ContractRevert`` whose ``name``/``arguments`` are the contract's custom error.
    """

    DEFAULT_ARTIFACT = ""

    def __init__(
        self,
        w3: Web3,
        address: str,
        sender: TxSender | None = None,
        *,
        artifact: str | None = None,
        artifacts_dir: Path | None = None,
    ) -> None:
        self.w3 = w3
        self.address = str(to_checksum_address(address))
        self.sender = sender
        self.artifact = artifact or self.DEFAULT_ARTIFACT
        self.artifacts_dir = artifacts_dir
        self.contract = contract_at(w3, self.artifact, self.address, artifacts_dir)
        self.rpc = Rpc(w3, sender.endpoint if sender is not None else None)
        self._events = event_topics(self.contract.abi)
        self._chain_id: int | None = None

    def with_sender(self, sender: TxSender) -> Self:
        """The same client sending as ``sender``."""
        return type(self)(self.w3, self.address, sender, artifact=self.artifact, artifacts_dir=self.artifacts_dir)

    @property
    def chain_id(self) -> int:
        """Chain id of the connected node (read once)."""
        if self._chain_id is None:
            self._chain_id = self.rpc.chain_id()
        return self._chain_id

    # ----------------------------------------------------------------- plumbing
    def _call(self, fn: Any) -> Any:
        """A view: a bound contract function (called with ``.call()``) or any callable, failures translated."""
        return self.rpc(fn.call if hasattr(fn, "call") else fn)

    def _send(self, call: Any, gas: int | None = None) -> SentTx:
        """Sign and send ``call`` with this client's sender; waits for the receipt."""
        if self.sender is None:
            raise InvalidInput("sender", "this client is read-only (no TxSender given)")
        return self.sender.send(call, gas=gas)

    def _tx(self, fn: Any, *, gas: int | None = None) -> TxResult:
        """Send ``fn``; the result carries this contract's events decoded."""
        sent = self._send(fn, gas)
        events: list[tuple[str, dict[str, Any]]] = []
        for log in sent.receipt["logs"]:
            if str(to_checksum_address(log["address"])) != self.address or not log["topics"]:
                continue
            name = self._events.get(bytes(log["topics"][0]))
            if name is None:
                continue
            decoded = self.contract.events[name]().process_log(log)
            events.append((name, dict(decoded["args"])))
        return TxResult(sent.tx_hash, sent.block_number, sent.gas_used, tuple(events))


class RoleClient(ContractClient):
    """Our AccessControl contracts (agreement registry, tracing cases): roles, admin hand-over, version."""

    # ----------------------------------------------------------------- roles / admin
    def role(self, name: str) -> bytes:
        """The bytes32 id of the contract's role ``name`` (e.g. "ORACLE_ROLE", "DEFAULT_ADMIN_ROLE")."""
        return bytes(self._call(getattr(self.contract.functions, name)()))

    def grant_role(self, role_name: str, account: str) -> TxResult:
        """Admin: grant ``role_name`` to ``account``."""
        return self._tx(self.contract.functions.grantRole(self.role(role_name), to_checksum_address(account)))

    def begin_admin_transfer(self, new_admin: str) -> TxResult:
        """Admin: start the delayed hand-over of the admin role (``AccessControlDefaultAdminRules``)."""
        return self._tx(self.contract.functions.beginDefaultAdminTransfer(to_checksum_address(new_admin)))

    def has_role(self, role_name: str, account: str) -> bool:
        """True if ``account`` holds ``role_name``."""
        return bool(self._call(self.contract.functions.hasRole(self.role(role_name), to_checksum_address(account))))

    def set_time(self, time: int) -> TxResult:
        """Harness only: set the contract clock (0 = block time)."""
        return self._tx(self.contract.functions.setTime(time))

    def version(self) -> str:
        """Semantic version of the deployed code."""
        return str(self._call(self.contract.functions.version()))
