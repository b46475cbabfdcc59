"""Small ABI helpers shared by the typed clients and the gateway's event indexer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eth_utils import keccak, to_checksum_address

from chain.errors import InvalidInput

__all__ = ["abi_type", "bytes32", "eip712_domain_separator", "event_topics"]

_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")


def bytes32(value: bytes | str, field: str) -> bytes:
    """32 bytes from bytes or 0x hex; ``InvalidInput`` naming ``field`` otherwise."""
    if isinstance(value, str):
        text = value.removeprefix("0x")
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise InvalidInput(field, f"not hex: {value!r}") from None
    raw = bytes(value)
    if len(raw) != 32:
        raise InvalidInput(field, f"expected 32 bytes, got {len(raw)}")
    return raw


def abi_type(param: Mapping[str, Any]) -> str:
    """Canonical type of an ABI parameter as it appears in a signature (tuples expanded)."""
    typ = str(param["type"])
    if typ.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in param["components"]) + ")" + typ[len("tuple") :]
    return typ


def event_topics(abi: Iterable[Mapping[str, Any]]) -> dict[bytes, str]:
    """topic0 -> event name for every event of ``abi``."""
    return {
        bytes(keccak(text=f"{e['name']}({','.join(abi_type(i) for i in e['inputs'])})")): str(e["name"])
        for e in abi
        if e.get("type") == "event"
    }


def eip712_domain_separator(*, name: str, version: str, chain_id: int, verifying_contract: str) -> bytes:
    """EIP-712 domain separator (name, version, chainId, verifyingContract) — as OpenZeppelin's EIP712."""
    from eth_abi import encode as abi_encode  # eth-abi loads on first use, not at start

    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                _DOMAIN_TYPEHASH,
                keccak(text=name),
                keccak(text=version),
                chain_id,
                to_checksum_address(verifying_contract),
            ],
        )
    )
