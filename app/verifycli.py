"""``qcn verify``: check a proof or a file against the chain, trusting nothing but the RPC endpoint.

Only the proof document and one view of the registry (``commitmentOf(bytes32)``) are needed; the gateway is
asked, at most, for the *proof* of a file (which is then checked against the chain like any other proof).
Which contract is the chain's anchor registry is never taken from the proof (its author could deploy a
registry that returns any commitment): it is ``--registry``, else the address book of the proof's chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from eth_utils import to_checksum_address
from hexbytes import HexBytes

from chain.contracts import AddressBook
from chain.errors import AddressBookError, ChainError, NodeUnavailable
from chain.proof import ProofDocument, ProofError, verify_proof

if TYPE_CHECKING:
    from chain.client import Rpc

__all__ = ["CliVerification", "verify_file", "verify_proof_file"]

_COMMITMENT_ABI = [
    {
        "type": "function",
        "name": "commitmentOf",
        "stateMutability": "view",
        "inputs": [{"name": "batchId", "type": "bytes32"}],
        "outputs": [{"name": "", "type": "bytes32"}],
    }
]


@dataclass
class CliVerification:
    ok: bool
    failure: str | None = None
    lines: list[str] = field(default_factory=list)


def _connect(rpc_url: str, expected_chain_id: int) -> Rpc:
    """The node's calls (failures are ``chain.errors`` types), after checking it serves the proof's chain."""
    from chain.client import Rpc
    from chain.tx import http_web3

    rpc = Rpc(http_web3(rpc_url), rpc_url)
    try:
        chain_id = rpc.chain_id()
    except ChainError as exc:
        raise NodeUnavailable(rpc_url, str(exc)) from exc
    if chain_id != expected_chain_id:
        raise NodeUnavailable(rpc_url, f"it serves chain id {chain_id}, the proof is for chain id {expected_chain_id}")
    return rpc


def trusted_registry(chain_id: int, registry: str | None, deployments_dir: Path | None) -> str:
    """The anchor registry the verifier trusts on ``chain_id``: ``registry`` if given, else the address book's.

    Raises ``AddressBookError`` (with what to do) when neither is known.
    """
    if registry is not None:
        try:
            return to_checksum_address(registry)
        except ValueError:
            raise AddressBookError("--registry", f"{registry!r} is not an address") from None
    book = AddressBook(deployments_dir)
    if not book.has(chain_id):
        raise AddressBookError(
            book.path_for(chain_id),
            f"no deployment of chain {chain_id} is known here, so the anchor registry cannot be told from a "
            "look-alike: pass --registry 0x... (the address your consortium publishes)",
        )
    return book.load(chain_id).registry


def _check(
    doc: ProofDocument, rpc_url: str, file_sha256: bytes | None, registry: str | None, deployments_dir: Path | None
) -> CliVerification:
    try:
        expected_registry = trusted_registry(doc.chain_id, registry, deployments_dir)
    except AddressBookError as exc:
        return CliVerification(False, str(exc))
    try:
        rpc = _connect(rpc_url, doc.chain_id)
        address = to_checksum_address(expected_registry)  # never the proof's own: verify_proof compares them
        contract = rpc.w3.eth.contract(address=address, abi=_COMMITMENT_ABI)
        has_code = bool(rpc(lambda: rpc.w3.eth.get_code(address)))
    except ChainError as exc:
        return CliVerification(False, str(exc))

    def fetch(batch_id: bytes) -> bytes | None:
        value = bytes(rpc(contract.functions.commitmentOf(batch_id).call))
        return None if value == b"\x00" * 32 else value

    if not has_code:
        return CliVerification(False, f"no contract at {address} on chain {doc.chain_id}")
    result = verify_proof(
        doc, fetch, file_sha256=file_sha256, expected_chain_id=doc.chain_id, expected_registry=expected_registry
    )
    lines = result.summary().splitlines()
    if result.ok and doc.tx is not None:
        try:
            tx_hash = HexBytes(doc.tx.hash)
            tx = rpc(lambda: rpc.w3.eth.get_transaction(tx_hash))
            block = rpc.block(int(tx["blockNumber"]))
            when = datetime.fromtimestamp(block["timestamp"], tz=UTC).isoformat()
            lines.append(f"  sent by {tx['from']} in block {tx['blockNumber']} at {when}")
        except (ChainError, ValueError, KeyError):
            lines.append("  note: the anchoring transaction is not known to this node (pruned or other node)")
    return CliVerification(result.ok, None if result.ok else f"{result.failure}: {result.message}", lines)


def verify_proof_file(
    data: bytes, *, rpc_url: str, registry: str | None = None, deployments_dir: Path | None = None
) -> CliVerification:
    """Verify a qcn-proof JSON document against the trusted anchor registry (see ``trusted_registry``)."""
    try:
        doc = ProofDocument.from_json(data)
    except ProofError as exc:
        return CliVerification(False, str(exc))
    return _check(doc, rpc_url, None, registry, deployments_dir)


def verify_file(
    data: bytes,
    *,
    batch_id: str,
    sha256: str,
    rpc_url: str,
    proof_path: Path | None,
    api_url: str,
    registry: str | None = None,
    deployments_dir: Path | None = None,
) -> CliVerification:
    """Verify a whole file: its SHA-256 must be a leaf of the anchored batch ``batch_id``."""
    if proof_path is not None:
        raw = proof_path.read_bytes()
    else:
        try:
            resp = httpx.get(
                f"{api_url.rstrip('/')}/v1/verify/file-proof",
                params={"batch_id": batch_id, "sha256": sha256},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            return CliVerification(False, f"could not ask the gateway {api_url} for the file's proof: {exc}")
        if resp.status_code != 200:
            try:
                message = resp.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = resp.text[:300]
            return CliVerification(False, f"the file is not part of batch {batch_id}: {message}")
        raw = resp.content
    try:
        doc = ProofDocument.from_json(raw)
    except ProofError as exc:
        return CliVerification(False, str(exc))
    if "0x" + doc.batch_id.hex() != batch_id.lower():
        return CliVerification(False, f"the proof is for batch 0x{doc.batch_id.hex()}, not {batch_id}")
    return _check(doc, rpc_url, bytes.fromhex(sha256), registry, deployments_dir)


def dump(result: CliVerification) -> str:
    return json.dumps({"ok": result.ok, "failure": result.failure, "lines": result.lines}, indent=2)
