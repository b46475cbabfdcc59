"""Non-custodial transactions: the gateway prepares, the party signs with its own key, the gateway relays.

Parties never hand their keys to the gateway. For an action only the party's own account may perform on
chain (a deposit, a withdrawal, a claim, a case response), the API returns the *unsigned* transaction(s)
(:func:`prepare`); the party signs them locally (``qcn`` CLI, a wallet, eth-account) and posts the raw signed
bytes (:func:`submit`). Before broadcasting, the gateway checks that the transaction is signed by the calling
party's registered account, is addressed to one of our contracts (or the settlement token) and calls a
function that party may call — so a relay endpoint cannot be abused to send arbitrary transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from hexbytes import HexBytes

from app.auth import Principal
from app.chainctx import ChainContext
from app.errors import Forbidden, InvalidRequest
from chain.errors import ChainError

__all__ = ["PreparedTx", "RelayedTx", "prepare", "submit"]

_GAS = 400_000


@dataclass(frozen=True)
class PreparedTx:
    """An unsigned transaction for ``from_`` to sign (EIP-1559 fields when the chain has a base fee)."""

    description: str
    tx: dict[str, Any]


@dataclass(frozen=True)
class RelayedTx:
    tx_hash: str
    block_number: int
    gas_used: int
    to: str
    function: str


def _fees(chain: ChainContext) -> dict[str, int]:
    block = chain.w3.eth.get_block("latest")
    base = block.get("baseFeePerGas")
    if base is None:
        return {"gasPrice": int(chain.w3.eth.gas_price)}
    tip = 1_000_000_000 if base else 0
    return {"maxFeePerGas": int(base) * 2 + tip, "maxPriorityFeePerGas": tip}


def prepare(*, chain: ChainContext, principal: Principal, calls: list[tuple[str, Any]]) -> list[PreparedTx]:
    """Unsigned transactions (consecutive nonces) for the caller's account, one per ``(description, call)``."""
    if not principal.account:
        raise InvalidRequest("your party has no on-chain account")
    sender = to_checksum_address(principal.account)
    try:
        nonce = int(chain.w3.eth.get_transaction_count(sender, "pending"))
        fees = _fees(chain)
        out = []
        for i, (description, call) in enumerate(calls):
            tx = {
                "chainId": chain.chain_id,
                "from": sender,
                "to": call.address,
                "data": call._encode_transaction_data(),
                "value": 0,
                "nonce": nonce + i,
                "gas": _GAS,
                **fees,
            }
            out.append(PreparedTx(description, tx))
        return out
    except ChainError:
        raise
    except Exception as exc:  # web3 raises many types; translate once here
        from chain.errors import translate_exception

        raise translate_exception(exc, endpoint=chain.settings.rpc_url) from exc


def _selectors(chain: ChainContext, address: str) -> dict[bytes, str]:
    contract = None
    for client in (chain.anchors, chain.agreements, chain.cases):
        if to_checksum_address(client.address) == address:
            contract = client.contract
    if contract is None and address == to_checksum_address(chain.token_address):
        from chain.contracts import contract_at

        contract = contract_at(chain.w3, "TestToken", address)
    if contract is None:
        return {}
    functions: list[Any] = [item for item in contract.abi if item.get("type") == "function"]
    return {bytes(function_abi_to_4byte_selector(item)): str(item["name"]) for item in functions}


def submit(*, chain: ChainContext, principal: Principal, raw: str, allowed: set[str]) -> RelayedTx:
    """Check and broadcast a transaction the caller signed; wait for its receipt.

    ``allowed`` names the contract functions this caller may relay here (e.g. ``{"approve", "deposit"}``).
    """
    try:
        raw_bytes = HexBytes(raw)
        signer = Account.recover_transaction(raw_bytes)
        decoded = _decode(raw_bytes)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"not a signed Ethereum transaction: {exc}", field="raw") from exc
    if not principal.account or to_checksum_address(signer) != to_checksum_address(principal.account):
        raise Forbidden(f"the transaction is signed by {signer}, not by your registered account {principal.account}")
    to = decoded.get("to")
    if not to:
        raise InvalidRequest("contract creation cannot be relayed", field="raw")
    to = to_checksum_address(to)
    functions = _selectors(chain, to)
    data = bytes(decoded.get("data", b""))
    name = functions.get(data[:4]) if len(data) >= 4 else None
    if name is None:
        raise Forbidden(f"{to} is not a qcn contract or the function is unknown; refusing to relay")
    if name not in allowed:
        raise Forbidden(f"relaying {name} is not allowed here (allowed: {', '.join(sorted(allowed))})")
    if int(decoded.get("chainId", chain.chain_id)) != chain.chain_id:
        raise InvalidRequest(f"the transaction is for chain {decoded.get('chainId')}, not {chain.chain_id}")
    try:
        # simulate first: a revert comes back decoded (custom error + arguments) and nothing is broadcast
        chain.w3.eth.call({"from": signer, "to": to, "data": HexBytes(data)})
        tx_hash = chain.w3.eth.send_raw_transaction(raw_bytes)
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=chain.settings.tx_receipt_timeout_s,
                                                            poll_latency=0.02)  # fmt: skip
    except Exception as exc:
        from chain.errors import translate_exception

        raise translate_exception(exc, endpoint=chain.settings.rpc_url) from exc
    if int(receipt["status"]) != 1:
        from chain.errors import TransactionFailed

        raise TransactionFailed(HexBytes(tx_hash).to_0x_hex(), f"{name} reverted on chain")
    return RelayedTx(HexBytes(tx_hash).to_0x_hex(), int(receipt["blockNumber"]), int(receipt["gasUsed"]), to, name)


def _decode(raw: bytes) -> dict[str, Any]:
    """Fields of a signed legacy or typed (EIP-2718) transaction."""
    from eth_account._utils.legacy_transactions import Transaction
    from eth_account.typed_transactions import TypedTransaction

    if raw and raw[0] <= 0x7F:
        typed = TypedTransaction.from_bytes(HexBytes(raw))
        fields = typed.as_dict()
        return {"to": fields.get("to"), "data": fields.get("data", b""), "chainId": fields.get("chainId")}
    legacy = Transaction.from_bytes(raw)
    v = legacy.v
    chain_id = (v - 35) // 2 if v >= 35 else None
    return {"to": legacy.to, "data": legacy.data, "chainId": chain_id}
