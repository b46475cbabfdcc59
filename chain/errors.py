"""Errors of the qcn chain layer and the one place where revert data is decoded.

Exception tree (everything the chain package raises derives from ``ChainError``)::

    ChainError
    ├── NodeUnavailable            node unreachable / connection refused / timed out
    ├── CompilationError           solc reported errors (list of formatted messages)
    ├── ArtifactError              artifact missing, unreadable or inconsistent (names the file)
    ├── AddressBookError           deployments/<chainId>.json missing or malformed
    ├── InvalidInput               a client was given values the contract cannot take (also a ValueError)
    ├── TransactionFailed          tx rejected by the node, mined with status 0, or no receipt in time
    │   └── NonceRejected          a raw broadcast refused for its nonce (a replay, or a gap: ``too_high``)
    └── ContractRevert             a call or tx reverted with decodable data (custom error, Error, Panic)
        └── AlreadyAnchoredError   the batch id is anchored already (carries the existing commitment)

``decode_revert(data)`` turns raw revert bytes into a ``ContractRevert`` using the ABIs of all contracts
under ``contracts/artifacts``; ``translate_exception(exc)`` maps what web3 / eth-tester raise on either
backend (``eth_tester.exceptions.TransactionFailed`` with raw bytes, web3 ``ContractCustomError`` with
``.data``) to the tree above.
"""

from __future__ import annotations

import ast
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address

__all__ = [
    "DEFAULT_ARTIFACTS_DIR",
    "AddressBookError",
    "AlreadyAnchoredError",
    "ArtifactError",
    "ChainError",
    "CompilationError",
    "ContractRevert",
    "ErrorDecoder",
    "InvalidInput",
    "NodeUnavailable",
    "NonceRejected",
    "TransactionFailed",
    "decode_revert",
    "default_decoder",
    "translate_exception",
]


def _artifacts_dir() -> Path:
    # An installed wheel carries the artifacts inside this package (pyproject: force-include); a source
    # checkout reads them where the compiler writes them.
    packaged = Path(__file__).resolve().parent / "_artifacts"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "contracts" / "artifacts"


DEFAULT_ARTIFACTS_DIR = _artifacts_dir()


class ChainError(Exception):
    """Root of every error raised by the qcn chain package."""


class NodeUnavailable(ChainError):
    """The JSON-RPC node cannot be reached."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(f"chain node {endpoint} unavailable: {reason}")


class CompilationError(ChainError):
    """solc reported one or more errors."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("solc compilation failed:\n" + "\n".join(self.messages))


class ArtifactError(ChainError):
    """A compiled artifact is missing or unusable."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"artifact {self.path}: {reason}")


class AddressBookError(ChainError):
    """The deployment address book is missing, malformed, or lacks a contract."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"address book {self.path}: {reason}")


class InvalidInput(ChainError, ValueError):
    """A client was given a value the contract cannot take (wrong length, out of range, mixed batch)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class TransactionFailed(ChainError):
    """A transaction was rejected, reverted without decodable data, or got no receipt in time."""

    def __init__(self, tx_hash: str | None, reason: str, *, receipt: Mapping[str, Any] | None = None) -> None:
        self.tx_hash = tx_hash
        self.reason = reason
        self.receipt = receipt
        where = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"transaction failed{where}: {reason}")


class NonceRejected(TransactionFailed):
    """The node refused a signed transaction for its nonce: already used or known (a replay), or ``too_high``."""

    def __init__(self, tx_hash: str | None, reason: str, *, too_high: bool) -> None:
        super().__init__(tx_hash, reason)
        self.too_high = too_high


class ContractRevert(ChainError):
    """A contract reverted with a decoded error: ``name`` and ``arguments`` (by ABI name, in ABI order).

    (``arguments``, not ``args``: ``Exception.args`` keeps its usual meaning.)
    """

    def __init__(
        self,
        name: str,
        args: Mapping[str, Any],
        tx_hash: str | None = None,
        *,
        data: bytes = b"",
    ) -> None:
        self.name = name
        self.arguments: dict[str, Any] = dict(args)
        self.tx_hash = tx_hash
        self.data = data
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in self.arguments.items())
        where = f" (tx {tx_hash})" if tx_hash else ""
        super().__init__(f"{name}({rendered}){where}")


class AlreadyAnchoredError(ContractRevert):
    """The batch id is anchored already; ``existing_commitment`` is what the chain holds for it."""

    def __init__(
        self,
        name: str,
        args: Mapping[str, Any],
        tx_hash: str | None = None,
        *,
        data: bytes = b"",
    ) -> None:
        super().__init__(name, args, tx_hash, data=data)
        self.batch_id: bytes = bytes(self.arguments["batchId"])
        self.existing_commitment: bytes = bytes(self.arguments["existingCommitment"])


_SPECIFIC: dict[str, type[ContractRevert]] = {"AlreadyAnchored": AlreadyAnchoredError}

_PANIC_CODES = {
    0x00: "generic compiler panic",
    0x01: "assert failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "bad storage byte array encoding",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to zero-initialised function",
}


def _render(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return repr(value)


def _make_revert(name: str, args: Mapping[str, Any], tx_hash: str | None, data: bytes) -> ContractRevert:
    cls = _SPECIFIC.get(name, ContractRevert)
    return cls(name, args, tx_hash, data=data)


def _abi_type(param: Mapping[str, Any]) -> str:
    """Canonical ABI type of a parameter, expanding tuples (structs)."""
    typ = str(param["type"])
    if typ.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){typ[len('tuple') :]}"
    return typ


def _normalise(abi_type: str, value: Any) -> Any:
    """Checksum addresses (eth_abi returns them lower-case) so they compare equal to web3's."""
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type == "address[]":
        return [to_checksum_address(v) for v in value]
    return value


class ErrorDecoder:
    """Decodes revert data against the custom errors of a set of ABIs (plus ``Error`` and ``Panic``)."""

    def __init__(self, abis: Iterable[Sequence[Mapping[str, Any]]]) -> None:
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        for abi in abis:
            for item in abi:
                if item.get("type") != "error":
                    continue
                types = [_abi_type(p) for p in item["inputs"]]
                names = [str(p["name"]) for p in item["inputs"]]
                selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
                self._errors[selector] = (str(item["name"]), names, types)

    def decode(self, data: bytes, tx_hash: str | None = None) -> ContractRevert | None:
        """Decode ``data`` into a ``ContractRevert``; None if it matches nothing known."""
        from eth_abi import decode as abi_decode  # eth-abi loads with the first revert, not at start
        from eth_abi.exceptions import DecodingError

        if len(data) < 4:
            return None
        selector, payload = data[:4], data[4:]
        try:
            if selector == keccak(text="Error(string)")[:4]:
                (message,) = abi_decode(["string"], payload)
                return _make_revert("Error", {"message": message}, tx_hash, data)
            if selector == keccak(text="Panic(uint256)")[:4]:
                (code,) = abi_decode(["uint256"], payload)
                args = {"code": code, "meaning": _PANIC_CODES.get(code, "unknown panic")}
                return _make_revert("Panic", args, tx_hash, data)
            known = self._errors.get(selector)
            if known is None:
                return None
            name, names, types = known
            values = abi_decode(types, payload)
        except DecodingError:
            return None
        args = {n: _normalise(t, v) for n, t, v in zip(names, types, values, strict=True)}
        return _make_revert(name, args, tx_hash, data)


@functools.cache
def default_decoder(artifacts_dir: Path = DEFAULT_ARTIFACTS_DIR) -> ErrorDecoder:
    """Decoder over the ABIs of every artifact in ``artifacts_dir`` (read once, on first use)."""
    abis = []
    for path in sorted(artifacts_dir.glob("*.json")):
        try:
            abis.append(json.loads(path.read_text(encoding="utf-8"))["abi"])
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(path, f"cannot read ABI: {exc}") from exc
    return ErrorDecoder(abis)


def decode_revert(data: bytes | str, tx_hash: str | None = None, *, decoder: ErrorDecoder | None = None) -> ChainError:
    """Turn raw revert ``data`` (bytes or 0x hex) into a ``ContractRevert``.

    Unknown or empty data gives a ``TransactionFailed`` naming the raw bytes, so callers always get a
    ``ChainError``.
    """
    raw = _to_bytes(data)
    decoded = (decoder or default_decoder()).decode(raw, tx_hash)
    if decoded is not None:
        return decoded
    reason = f"reverted with unknown data 0x{raw.hex()}" if raw else "reverted without data"
    return TransactionFailed(tx_hash, reason)


def _to_bytes(data: bytes | bytearray | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    text = data.strip()
    if text.startswith(("b'", 'b"')):  # eth-tester stringifies raw bytes in some paths
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return b""
        return bytes(value) if isinstance(value, bytes) else b""
    if text.startswith("0x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            return b""
    return b""


def _revert_data_of(exc: BaseException) -> bytes | None:
    """Raw revert bytes carried by a web3 / eth-tester exception, if any."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):  # some nodes nest {"data": "0x..."}
        data = data.get("data")
    if isinstance(data, bytes | bytearray | str) and _to_bytes(data):
        return _to_bytes(data)
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, bytes | bytearray) and arg:
            return bytes(arg)
        if isinstance(arg, BaseException):
            nested = _revert_data_of(arg)
            if nested:
                return nested
        if isinstance(arg, str):
            # eth-tester: "execution reverted: b'\\xe2Q}?...'" (a bytes repr) or a bare 0x hex string
            text = arg.removeprefix("execution reverted:").strip()
            if text.startswith(("0x", "b'", 'b"')) and _to_bytes(text):
                return _to_bytes(text)
    return None


def translate_exception(
    exc: BaseException,
    *,
    tx_hash: str | None = None,
    endpoint: str = "node",
    decoder: ErrorDecoder | None = None,
) -> ChainError:
    """Map an exception raised by web3 / eth-tester / the HTTP stack to the ``ChainError`` tree.

    Reverts become ``ContractRevert`` (decoded with all our ABIs) on both backends; connection problems
    become ``NodeUnavailable``; anything else becomes ``TransactionFailed`` with the original message.
    """
    if isinstance(exc, ChainError):
        return exc
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import Timeout as RequestsTimeout
    from web3.exceptions import ProviderConnectionError

    if isinstance(exc, ProviderConnectionError | RequestsConnectionError | RequestsTimeout | ConnectionError):
        return NodeUnavailable(endpoint, str(exc) or type(exc).__name__)
    data = _revert_data_of(exc)
    if data:
        return decode_revert(data, tx_hash, decoder=decoder)
    return TransactionFailed(tx_hash, f"{type(exc).__name__}: {exc}")
