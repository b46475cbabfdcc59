"""Signing and sending transactions: local keys, self-managed nonces, fast receipt polling.

``TxSender`` works the same on ``Web3(EthereumTesterProvider())`` (in-process py-evm) and on
``Web3(HTTPProvider(url))`` (anvil, Besu): it signs locally, keeps the nonce itself (one
``eth_getTransactionCount(pending)`` at first use, then +1 per sent tx, resynced on a nonce error), uses a
fixed gas limit when given (no estimate round trip) and EIP-1559 fees when the chain has a base fee
(legacy ``gasPrice`` otherwise; zero-base-fee consortium chains work), and polls for the receipt every
``poll_interval`` seconds (anvil answers the hash before the receipt is queryable). Every failure is a
``chain.errors.ChainError``: ``NodeUnavailable``, ``ContractRevert`` (decoded custom error) or
``TransactionFailed``.

Example::

    w3 = http_web3("http://127.0.0.1:8545")
    sender = TxSender(w3, private_key)
    receipt = sender.send(registry.functions.anchor(supplier, agreement_id, request), gas=120_000)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from hexbytes import HexBytes

from chain.errors import (
    ChainError,
    NodeUnavailable,
    TransactionFailed,
    translate_exception,
)

if TYPE_CHECKING:  # web3 and eth-account load when a sender or a connection is made, not on import
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

__all__ = ["DEFAULT_POLL_INTERVAL", "SentTx", "TxSender", "calldata", "decode_signed", "http_web3", "probe_endpoint"]

DEFAULT_POLL_INTERVAL = 0.02
# geth/anvil, Besu (upper-case codes), eth-tester ("Invalid transaction nonce: Expected 1, but got 0")
_NONCE_ERRORS = (
    "nonce too low",
    "nonce too high",
    "nonce_too_low",
    "nonce_too_high",
    "already known",
    "invalid nonce",
    "transaction nonce",
    "replacement transaction",
)
_BASE_FEE_TTL = 10.0

T = TypeVar("T")


_ENCODERS: dict[tuple[int, str, int], tuple[Any, Any, Any]] = {}  # (w3, address, abi) ids -> (w3, abi, contract)
_ENCODERS_MAX = 64
_ENCODERS_LOCK = threading.Lock()


def _encoder(call: Any) -> Any:
    """A contract object for encoding ``call``'s data: building one parses the whole ABI (~20 ms), so the last
    few are kept, each with the very ``w3`` and ABI objects it was built from (an id is only reused once they
    are gone, and then the identity check fails)."""
    key = (id(call.w3), str(call.address), id(call.contract_abi))
    with _ENCODERS_LOCK:
        hit = _ENCODERS.get(key)
    if hit is None or hit[0] is not call.w3 or hit[1] is not call.contract_abi:
        hit = (call.w3, call.contract_abi, call.w3.eth.contract(address=call.address, abi=call.contract_abi))
        with _ENCODERS_LOCK:
            if len(_ENCODERS) >= _ENCODERS_MAX:
                _ENCODERS.pop(next(iter(_ENCODERS)))
            _ENCODERS[key] = hit
    return hit[2]


_SIGNATURES: dict[int, tuple[Any, bytes, tuple[str, ...]]] = {}  # id(function ABI) -> (that ABI, selector, types)


def _signature(abi: Any) -> tuple[bytes, tuple[str, ...]]:
    """Selector and input types of a function ABI, kept per ABI object (the identity check as in `_encoder`)."""
    hit = _SIGNATURES.get(id(abi))
    if hit is None or hit[0] is not abi:
        from eth_utils import function_abi_to_4byte_selector, get_abi_input_types

        hit = (abi, bytes(function_abi_to_4byte_selector(abi)), tuple(get_abi_input_types(abi)))
        with _ENCODERS_LOCK:
            if len(_SIGNATURES) >= _ENCODERS_MAX * 16:
                _SIGNATURES.clear()
            _SIGNATURES[id(abi)] = hit
    return hit[1], hit[2]


def calldata(call: Any) -> bytes:
    """The ABI-encoded call data of a bound contract function (``contract.functions.f(...)``), public API only.

    Positional arguments that the ABI codec takes as they are (exactly N bytes for ``bytesN``, ints, checksum
    addresses, lists and tuples of those) are encoded by web3's codec directly: web3's contract encoder first maps
    every argument through its normalizers, ~8 ms for an ``anchorMany`` of a few batches. Anything else (a hex
    string for ``bytes32``, a text argument, keyword arguments) goes through that encoder, which converts or
    rejects it as before."""
    if not call.kwargs and _checksummed(call.args):
        from eth_abi.exceptions import EncodingError

        selector, types = _signature(call.abi)
        with contextlib.suppress(EncodingError, TypeError, ValueError, OverflowError):
            return selector + call.w3.codec.encode(types, call.args)  # web3's codec: bytesN must be N bytes
    contract = _encoder(call)
    return bytes(HexBytes(contract.encode_abi(call.abi_element_identifier, args=call.args, kwargs=call.kwargs)))


def _checksummed(value: Any) -> bool:
    """No text in ``value`` but checksum addresses (web3 refuses a lower-case address; eth-abi would take it)."""
    if isinstance(value, str):
        from eth_utils import is_checksum_address

        return bool(is_checksum_address(value))
    if isinstance(value, list | tuple):
        return all(_checksummed(v) for v in value)
    return True


def decode_signed(raw: bytes) -> dict[str, Any]:
    """``to``, ``data``, ``chainId`` and ``nonce`` of a signed legacy or typed (EIP-2718) transaction.

    Public APIs only: eth-account's ``TypedTransaction`` and the RLP list of a legacy transaction (``chainId`` is
    None for a pre-EIP-155 signature). Malformed bytes raise ``ValueError``: the caller reports them as bad input.
    """
    try:
        return _decode_signed(raw)
    except ValueError:
        raise
    except Exception as exc:  # rlp and eth-account raise their own types for malformed bytes
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def _decode_signed(raw: bytes) -> dict[str, Any]:
    import rlp
    from eth_account.typed_transactions import TypedTransaction

    if raw and raw[0] <= 0x7F:
        fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        return {
            "to": fields.get("to"),
            "data": fields.get("data", b""),
            "chainId": fields.get("chainId"),
            "nonce": fields.get("nonce"),
        }
    items = rlp.decode(raw)
    if not isinstance(items, list) or len(items) != 9 or not all(isinstance(i, bytes) for i in items):
        raise ValueError("not an RLP list of the nine fields of a legacy transaction")
    nonce, _gas_price, _gas, to, _value, data, v = (items[0], *items[1:7])
    v_int = int.from_bytes(v, "big")
    return {
        "to": to or None,
        "data": data,
        "chainId": (v_int - 35) // 2 if v_int >= 35 else None,
        "nonce": int.from_bytes(nonce, "big"),
    }


def probe_endpoint(url: str, *, timeout: float = 1.0) -> None:
    """Raise ``NodeUnavailable`` if nothing accepts a TCP connection at ``url``'s host and port.

    A gateway waiting for its node checks this first: while the node is down it neither loads web3 (about a
    second of CPU taken from the start-up) nor waits for an HTTP timeout. Non-HTTP URLs are not probed.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise NodeUnavailable(url, str(exc) or type(exc).__name__) from None


def http_web3(url: str, *, request_timeout: float = 10.0) -> Web3:
    """A ``Web3`` over HTTP without the ENS and validation middlewares.

    Both are safe to drop here: we never pass ENS names, and ``TxSender`` sets ``chainId`` and every fee
    field itself; dropping them turns one call into one HTTP request instead of three.
    """
    from web3 import Web3
    from web3.providers.rpc import HTTPProvider

    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": request_timeout}))
    for name in ("ens_name_to_address", "validation"):
        with contextlib.suppress(ValueError):  # already absent in this web3 version
            w3.middleware_onion.remove(name)
    return w3


@dataclass(frozen=True)
class SentTx:
    """A mined, successful transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    receipt: Mapping[str, Any]


class TxSender:
    """Signs with one private key and sends transactions, managing nonce and fees itself.

    Thread-safe: a lock serialises nonce assignment and sending, so one sender may be shared.
    """

    def __init__(
        self,
        w3: Web3,
        private_key: str | bytes,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        receipt_timeout: float = 60.0,
        gas_margin: float = 1.2,
        priority_fee_wei: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        from eth_account import Account

        self.w3 = w3
        self.account: LocalAccount = Account.from_key(private_key)
        self.poll_interval = poll_interval
        self.receipt_timeout = receipt_timeout
        self.gas_margin = gas_margin
        self._priority_fee = priority_fee_wei
        self.endpoint = endpoint or str(getattr(w3.provider, "endpoint_uri", None) or type(w3.provider).__name__)
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._chain_id: int | None = None
        self._base_fee: int | None = None  # None: legacy chain (no baseFeePerGas)
        self._eip1559: bool | None = None
        self._base_fee_at = 0.0
        self._gas_price: int | None = None
        self._gas_price_at = 0.0
        # called with the block number of every receipt before the write counts as done (the embedded node
        # persists its state there: chain.node.StatePersister.ensure)
        self.on_mined: Callable[[int], object] | None = None

    @property
    def address(self) -> str:
        """Checksummed address of the signing account."""
        return str(self.account.address)

    @property
    def chain_id(self) -> int:
        """Chain id of the node (read once)."""
        if self._chain_id is None:
            self._chain_id = self._rpc(lambda: int(self.w3.eth.chain_id))
        return self._chain_id

    # -- public API --------------------------------------------------------------------------------------
    def send(self, call: Any, *, gas: int | None = None, value: int = 0) -> SentTx:
        """Sign, send and wait for a contract function call (``contract.functions.f(...)``).

        ``gas`` fixes the gas limit (no estimate); otherwise the node estimates and ``gas_margin`` is added.
        Raises ``ContractRevert`` (decoded) if the call reverts in estimation or on chain.
        """
        data = self._rpc(lambda: calldata(call))
        return self.send_transaction({"to": call.address, "data": data, "value": value}, gas=gas)

    def deploy(self, abi: list[dict[str, Any]], bytecode: str, *args: Any, gas: int | None = None) -> SentTx:
        """Deploy a contract; ``SentTx.receipt['contractAddress']`` is its address."""
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        data = self._rpc(lambda: factory.constructor(*args).data_in_transaction)
        return self.send_transaction({"data": data}, gas=gas)

    def send_transaction(self, tx: Mapping[str, Any], *, gas: int | None = None) -> SentTx:
        """Fill nonce, chain id, fees and gas into ``tx`` (``to``/``data``/``value``), sign, send, wait."""
        base: dict[str, Any] = {k: v for k, v in tx.items() if k in ("to", "data", "value")}
        base["from"] = self.address
        base.setdefault("value", 0)
        if gas is None:
            gas = self._estimate(base)
        with self._lock:
            for attempt in range(2):
                nonce = self._next_nonce()
                full: dict[str, Any] = {**base, "gas": gas, "nonce": nonce, "chainId": self.chain_id, **self._fees()}
                full.pop("from")
                raw = self.account.sign_transaction(full).raw_transaction
                try:
                    tx_hash = self._send_raw(raw)
                except _NonceProblem:
                    self._nonce = None  # resync from the node and retry once
                    if attempt == 1:
                        raise TransactionFailed(None, f"nonce {nonce} rejected twice for {self.address}") from None
                    continue
                except _FeeTooLow:
                    self._base_fee_at = 0.0
                    if attempt == 1:
                        raise TransactionFailed(None, "max fee below the block base fee") from None
                    self._nonce = nonce  # not consumed
                    continue
                self._nonce = nonce + 1
                break
        return self._wait(tx_hash, base)

    def resync_nonce(self) -> int:
        """Forget the local nonce and read the pending nonce from the node again."""
        with self._lock:
            self._nonce = None
            return self._next_nonce()

    # -- internals ---------------------------------------------------------------------------------------
    def _rpc(self, fn: Callable[[], T], *, tx_hash: str | None = None) -> T:
        try:
            return fn()
        except ChainError:
            raise
        except Exception as exc:
            raise translate_exception(exc, tx_hash=tx_hash, endpoint=self.endpoint) from exc

    def _next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self._rpc(lambda: int(self.w3.eth.get_transaction_count(self.account.address, "pending")))
        return self._nonce

    def _estimate(self, base: Mapping[str, Any]) -> int:
        estimate = self._rpc(lambda: int(self.w3.eth.estimate_gas(dict(base))))  # type: ignore[arg-type]
        return int(estimate * self.gas_margin)

    def _fees(self) -> dict[str, int]:
        now = time.monotonic()
        if self._eip1559 is None or now - self._base_fee_at > _BASE_FEE_TTL:
            block = self._rpc(lambda: self.w3.eth.get_block("latest"))
            base_fee = block.get("baseFeePerGas")
            self._eip1559 = base_fee is not None
            self._base_fee = int(base_fee) if base_fee is not None else None
            if self._priority_fee is None:
                self._priority_fee = self._rpc(self._node_priority_fee)
            self._base_fee_at = now
        priority = self._priority_fee or 0
        if self._eip1559:
            # 2x base fee survives 5+ full blocks of base-fee growth (12.5 % each) before a resend
            return {"maxFeePerGas": 2 * (self._base_fee or 0) + priority, "maxPriorityFeePerGas": priority}
        if self._gas_price is None or now - self._gas_price_at > _BASE_FEE_TTL:
            self._gas_price = self._rpc(lambda: int(self.w3.eth.gas_price))
            self._gas_price_at = now
        return {"gasPrice": self._gas_price}

    def _node_priority_fee(self) -> int:
        try:
            return int(self.w3.eth.max_priority_fee)
        except (ValueError, NotImplementedError):
            return 0  # node has no eth_maxPriorityFeePerGas: zero-fee chain

    def _send_raw(self, raw: bytes) -> str:
        try:
            return HexBytes(self.w3.eth.send_raw_transaction(raw)).to_0x_hex()
        except Exception as exc:
            message = str(exc).lower()
            if any(marker in message for marker in _NONCE_ERRORS):
                raise _NonceProblem(message) from exc
            if "max fee per gas less than block base fee" in message or "fee cap less than block base fee" in message:
                raise _FeeTooLow(message) from exc
            raise translate_exception(exc, endpoint=self.endpoint) from exc

    def _wait(self, tx_hash: str, base: Mapping[str, Any]) -> SentTx:
        from web3.exceptions import TransactionNotFound

        deadline = time.monotonic() + self.receipt_timeout
        while True:
            try:
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
                break
            except TransactionNotFound:
                pass
            except Exception as exc:
                raise translate_exception(exc, tx_hash=tx_hash, endpoint=self.endpoint) from exc
            if time.monotonic() > deadline:
                raise TransactionFailed(tx_hash, f"no receipt after {self.receipt_timeout:.1f} s")
            time.sleep(self.poll_interval)
        if self.on_mined is not None:
            self.on_mined(int(receipt["blockNumber"]))
        if receipt["status"] != 1:
            raise self._explain_failure(tx_hash, base, receipt)
        return SentTx(
            tx_hash=tx_hash,
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            receipt=receipt,
        )

    def _explain_failure(self, tx_hash: str, base: Mapping[str, Any], receipt: Mapping[str, Any]) -> ChainError:
        """Replay a failed tx as a call on the parent block to recover its revert data."""
        call = {**base, "gas": int(receipt["gasUsed"]) * 2 + 100_000}
        block = max(int(receipt["blockNumber"]) - 1, 0)
        try:
            self.w3.eth.call(call, block_identifier=block)  # type: ignore[arg-type]
        except Exception as exc:
            err = translate_exception(exc, tx_hash=tx_hash, endpoint=self.endpoint)
            if isinstance(err, TransactionFailed) and err.receipt is None:
                return TransactionFailed(tx_hash, err.reason, receipt=receipt)
            return err
        return TransactionFailed(
            tx_hash,
            f"reverted on chain (gas used {int(receipt['gasUsed'])}); a replay on the parent block succeeds, "
            "so the state changed in between or the gas limit was too low",
            receipt=receipt,
        )


class _NonceProblem(Exception):
    pass


class _FeeTooLow(Exception):
    pass
