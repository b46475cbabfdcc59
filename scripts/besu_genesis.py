"""Generate the node keys and the QBFT genesis of a Hyperledger Besu consortium chain.

Run once, on first start, by the ``besu-init`` service of ``docker-compose.yml``; validator keys
are never committed. Standard library plus ``eth_keys`` and ``rlp`` (both installed with web3).

Layout written under ``--out`` (nothing is overwritten: a second run reports the existing network)::

    genesis.json               QBFT genesis (Cancun, zero base fee, validators in extraData)
    network.json               chain id, validator addresses and enode URLs (public, for operators)
    node-1/key                 node private key, ``0x``-prefixed hex (what ``--node-private-key-file`` reads)
    node-1/key.pub             uncompressed public key without the 0x04 prefix, hex
    node-1/address             validator address (checksummed)
    node-1/static-nodes.json   enode URLs of the other validators (``--static-nodes-file``)
    ...

QBFT extraData (Besu ``QbftExtraDataCodec``) is
``RLP([32-byte vanity, [validator addresses], votes, round, [committed seals]])``; in a genesis block
the vote is the empty list, the round is the integer 0 (RLP ``0x80``) and there are no seals. The
known-answer test in ``tests/deploy/test_besu_genesis.py`` reproduces the example in the Besu QBFT
documentation byte for byte.

Errors (one root)::

    GenesisError
    ├── InvalidKeyError        a private key that is not 32 bytes of hex in the secp256k1 range
    ├── InvalidConfigError     a parameter Besu would reject (validator count, hosts, ports, periods)
    └── NetworkExistsError     the output directory holds part of a network (refuses to mix keys)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp
from eth_keys import keys
from eth_keys.exceptions import ValidationError as EthKeysValidationError
from eth_utils import to_checksum_address
from rlp.exceptions import DecodingError

__all__ = [
    "DEFAULT_FUND_WEI",
    "GENESIS_FILE",
    "MIX_HASH_BFT",
    "NETWORK_FILE",
    "GenesisError",
    "InvalidConfigError",
    "InvalidKeyError",
    "NetworkExistsError",
    "NodeKey",
    "QbftExtraData",
    "build_genesis",
    "decode_qbft_extra_data",
    "encode_qbft_extra_data",
    "generate_node_key",
    "init_network",
    "load_node_key",
    "main",
    "node_key_from_hex",
]

# "ctical byzantine fault tolerance": the mixHash every IBFT 2.0 / QBFT block carries.
MIX_HASH_BFT = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
GENESIS_FILE = "genesis.json"
NETWORK_FILE = "network.json"
VANITY_BYTES = 32
# 10^24 wei (one million ether): gas is free, the balance only passes the up-front cost check of
# clients that send EIP-1559 transactions with a non-zero priority fee.
DEFAULT_FUND_WEI = 10**24
# 50M gas: ample for anchorMany of 100+ batches per block.
DEFAULT_GAS_LIMIT = 50_000_000
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_ADDRESS_RE = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


class GenesisError(Exception):
    """Root of every error this generator raises."""


class InvalidKeyError(GenesisError):
    """A node or funding private key is malformed; ``source`` names where it came from."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"invalid private key from {source}: {reason}")
        self.source = source
        self.reason = reason


class InvalidConfigError(GenesisError):
    """A generator parameter Besu would reject; ``field`` names it, ``value`` is what was given."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {field} {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class NetworkExistsError(GenesisError):
    """The output directory holds a partial network; ``path`` is the first conflicting file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class NodeKey:
    """A Besu node key pair; for QBFT the node address is the validator address."""

    private_key: bytes
    public_key: bytes
    address: str

    def private_hex(self) -> str:
        """The private key as Besu writes it in a ``key`` file: ``0x`` + 64 hex digits."""
        return "0x" + self.private_key.hex()

    def enode(self, host: str, port: int) -> str:
        """The enode URL peers use to dial this node at ``host:port``."""
        return f"enode://{self.public_key.hex()}@{host}:{port}"


@dataclass(frozen=True)
class QbftExtraData:
    """The decoded fields of a QBFT block header's extraData."""

    vanity: bytes
    validators: tuple[str, ...]
    votes: tuple[Any, ...]
    round: int
    seals: tuple[bytes, ...]


def node_key_from_hex(value: str, *, source: str = "argument") -> NodeKey:
    """Build a :class:`NodeKey` from a hex private key (``0x`` optional, whitespace ignored).

    Raises :class:`InvalidKeyError` naming ``source`` (never echoing the key) when the value is
    not 32 bytes of hex or lies outside the secp256k1 scalar range.
    """
    text = value.strip()
    if text.startswith(("0x", "0X")):
        text = text[2:]
    if len(text) != 64:
        raise InvalidKeyError(source, f"expected 64 hex digits, got {len(text)} characters")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise InvalidKeyError(source, "not hexadecimal") from exc
    scalar = int.from_bytes(raw, "big")
    if not 0 < scalar < _SECP256K1_N:
        raise InvalidKeyError(source, "outside the secp256k1 private key range")
    try:
        private = keys.PrivateKey(raw)
    except EthKeysValidationError as exc:
        raise InvalidKeyError(source, str(exc)) from exc
    public = private.public_key
    return NodeKey(private_key=raw, public_key=public.to_bytes(), address=public.to_checksum_address())


def generate_node_key() -> NodeKey:
    """Draw a fresh node key from the operating system's CSPRNG."""
    while True:
        raw = secrets.token_bytes(32)
        if 0 < int.from_bytes(raw, "big") < _SECP256K1_N:
            return node_key_from_hex(raw.hex(), source="generated")


def load_node_key(path: Path) -> NodeKey:
    """Read a Besu ``key`` file; :class:`InvalidKeyError` names the file when it is malformed."""
    return node_key_from_hex(path.read_text(encoding="ascii"), source=str(path))


def _checked_address(value: str, field: str) -> bytes:
    if not _ADDRESS_RE.match(value):
        raise InvalidConfigError(field, value, "expected a 20-byte hex address")
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def encode_qbft_extra_data(validators: Sequence[str], *, vanity: bytes = b"\x00" * VANITY_BYTES) -> str:
    """RLP-encode the genesis extraData for ``validators`` (block-header validator selection).

    Validators appear in the given order; Besu sorts them itself when it reads the header.
    Example: one validator ``0x00..01`` gives ``0xf83f a0 <32 zero bytes> d5 94 <address> c0 80 c0``.
    """
    if len(vanity) != VANITY_BYTES:
        raise InvalidConfigError("vanity", vanity.hex(), f"must be exactly {VANITY_BYTES} bytes")
    if not validators:
        raise InvalidConfigError("validators", list(validators), "a QBFT genesis needs at least one")
    addresses = [_checked_address(v, "validator address") for v in validators]
    if len(set(addresses)) != len(addresses):
        raise InvalidConfigError("validators", list(validators), "duplicate validator address")
    encoded: bytes = rlp.encode([vanity, addresses, [], 0, []])
    return "0x" + encoded.hex()


def decode_qbft_extra_data(extra_data: str) -> QbftExtraData:
    """Decode a QBFT extraData hex string back into its five fields."""
    try:
        items = rlp.decode(bytes.fromhex(extra_data.removeprefix("0x")))
    except (ValueError, DecodingError) as exc:
        raise InvalidConfigError("extraData", extra_data, f"not valid RLP: {exc}") from exc
    if not isinstance(items, list) or len(items) != 5:
        raise InvalidConfigError("extraData", extra_data, "expected an RLP list of 5 items")
    vanity, validators, votes, round_bytes, seals = items
    return QbftExtraData(
        vanity=bytes(vanity),
        validators=tuple(to_checksum_address(bytes(v)) for v in validators),
        votes=tuple(votes),
        round=int.from_bytes(bytes(round_bytes), "big"),
        seals=tuple(bytes(s) for s in seals),
    )


def build_genesis(
    *,
    chain_id: int,
    validators: Sequence[str],
    block_period_seconds: int = 2,
    request_timeout_seconds: int = 4,
    epoch_length: int = 30_000,
    gas_limit: int = DEFAULT_GAS_LIMIT,
    alloc: Mapping[str, int] | None = None,
    timestamp: int = 0,
) -> dict[str, Any]:
    """Return a Besu QBFT genesis as a JSON-ready dict.

    Milestones: every block-numbered fork through London at block 0, then Shanghai and Cancun at
    time 0, ``zeroBaseFee``. Cancun is the newest fork Besu runs on QBFT without pre-deploying the
    Prague system contracts (EIP-2935/7002/7251); our ``evmVersion: prague`` bytecode uses no opcode
    newer than Cancun (Prague added none), so it runs unchanged. ``alloc`` maps address -> wei.
    """
    if chain_id <= 0 or chain_id >= 2**63:
        raise InvalidConfigError("chain id", chain_id, "must be a positive 63-bit integer")
    if block_period_seconds < 1:
        raise InvalidConfigError("block period", block_period_seconds, "must be at least 1 second")
    if request_timeout_seconds <= block_period_seconds:
        raise InvalidConfigError("request timeout", request_timeout_seconds, "must exceed the block period")
    if epoch_length < 1:
        raise InvalidConfigError("epoch length", epoch_length, "must be positive")
    if gas_limit < 5000 or gas_limit >= 2**63:
        raise InvalidConfigError("gas limit", gas_limit, "must be between 5000 and 2^63")
    accounts: dict[str, dict[str, str]] = {}
    for address, wei in (alloc or {}).items():
        raw = _checked_address(address, "alloc address")
        if wei < 0:
            raise InvalidConfigError("alloc balance", wei, "must not be negative")
        accounts[raw.hex()] = {"balance": hex(wei)}
    return {
        "config": {
            "chainId": chain_id,
            "homesteadBlock": 0,
            "eip150Block": 0,
            "eip155Block": 0,
            "eip158Block": 0,
            "byzantiumBlock": 0,
            "constantinopleBlock": 0,
            "constantinopleFixBlock": 0,
            "istanbulBlock": 0,
            "berlinBlock": 0,
            "londonBlock": 0,
            "shanghaiTime": 0,
            "cancunTime": 0,
            "zeroBaseFee": True,
            "qbft": {
                "blockperiodseconds": block_period_seconds,
                "epochlength": epoch_length,
                "requesttimeoutseconds": request_timeout_seconds,
            },
        },
        "nonce": "0x0",
        "timestamp": hex(timestamp),
        "gasLimit": hex(gas_limit),
        "difficulty": "0x1",
        "mixHash": MIX_HASH_BFT,
        "coinbase": "0x" + "00" * 20,
        "baseFeePerGas": "0x0",
        "blobGasUsed": "0x0",
        "excessBlobGas": "0x0",
        "parentBeaconBlockRoot": "0x" + "00" * 32,
        "extraData": encode_qbft_extra_data(validators),
        "alloc": accounts,
    }


def _validate_network_params(count: int, hosts: Sequence[str], p2p_port: int) -> None:
    if count < 1:
        raise InvalidConfigError("validator count", count, "must be at least 1")
    if count < 4:
        # Not fatal: a 1-node chain is useful for smoke tests, but it tolerates no fault.
        print(f"warning: {count} validator(s) tolerate no faulty node; use 4 or more", file=sys.stderr)
    if len(hosts) != count:
        raise InvalidConfigError("hosts", list(hosts), f"need exactly one host per validator ({count})")
    for host in hosts:
        if not host or not _HOST_RE.match(host):
            raise InvalidConfigError("host", host, "expected an IP address or host name")
    if not 0 < p2p_port < 65536:
        raise InvalidConfigError("p2p port", p2p_port, "must be 1-65535")


def _write_private(path: Path, text: str, owner: tuple[int, int] | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(path, *owner)


def _write_public(path: Path, text: str, owner: tuple[int, int] | None) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o644)
    if owner is not None:
        os.chown(path, *owner)


def init_network(
    out_dir: Path,
    *,
    chain_id: int,
    hosts: Sequence[str],
    p2p_port: int = 30303,
    block_period_seconds: int = 2,
    request_timeout_seconds: int = 4,
    fund: Mapping[str, int] | None = None,
    owner: tuple[int, int] | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Create keys + genesis for ``len(hosts)`` validators under ``out_dir`` unless already there.

    Returns ``(created, network)``: ``created`` is False when a complete network (``network.json``)
    already exists, in which case nothing is touched and the stored description is returned. A
    directory holding node keys or a genesis but no ``network.json`` (an interrupted run) raises
    :class:`NetworkExistsError` rather than mixing old and new keys. ``owner`` (uid, gid) chowns
    every file written, so the Besu container user can read its key.
    """
    count = len(hosts)
    _validate_network_params(count, hosts, p2p_port)
    network_path = out_dir / NETWORK_FILE
    if network_path.exists():
        stored = json.loads(network_path.read_text(encoding="utf-8"))
        if stored.get("chainId") != chain_id:
            raise NetworkExistsError(
                network_path, f"holds chain id {stored.get('chainId')}, not the requested {chain_id}"
            )
        return False, stored
    out_dir.mkdir(parents=True, exist_ok=True)
    for leftover in [out_dir / GENESIS_FILE, *(out_dir / f"node-{i}" for i in range(1, count + 1))]:
        if leftover.exists():
            raise NetworkExistsError(
                leftover, "left by an interrupted run; remove the directory to generate a new network"
            )

    node_keys = [generate_node_key() for _ in range(count)]
    enodes = [key.enode(host, p2p_port) for key, host in zip(node_keys, hosts, strict=True)]
    validators = [key.address for key in node_keys]
    genesis = build_genesis(
        chain_id=chain_id,
        validators=validators,
        block_period_seconds=block_period_seconds,
        request_timeout_seconds=request_timeout_seconds,
        alloc=fund,
    )
    for index, key in enumerate(node_keys, start=1):
        node_dir = out_dir / f"node-{index}"
        node_dir.mkdir(mode=0o750)
        if owner is not None:
            os.chown(node_dir, *owner)
        _write_private(node_dir / "key", key.private_hex(), owner)
        _write_public(node_dir / "key.pub", "0x" + key.public_key.hex(), owner)
        _write_public(node_dir / "address", key.address, owner)
        peers = [enode for peer, enode in enumerate(enodes, start=1) if peer != index]
        _write_public(node_dir / "static-nodes.json", json.dumps(peers, indent=2) + "\n", owner)
    _write_public(out_dir / GENESIS_FILE, json.dumps(genesis, indent=2) + "\n", owner)
    network = {
        "chainId": chain_id,
        "validators": [
            {"node": f"node-{i}", "address": key.address, "enode": enode}
            for i, (key, enode) in enumerate(zip(node_keys, enodes, strict=True), start=1)
        ],
        "funded": sorted(to_checksum_address(a) for a in (fund or {})),
    }
    # Written last: its presence marks a complete network.
    _write_public(network_path, json.dumps(network, indent=2) + "\n", owner)
    return True, network


def _parse_owner(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+):(\d+)", text)
    if not match:
        raise InvalidConfigError("owner", text, "expected UID:GID, e.g. 1000:1000")
    return int(match.group(1)), int(match.group(2))


def _parse_fund(items: Sequence[str], key_envs: Sequence[str], wei: int) -> dict[str, int]:
    fund: dict[str, int] = {}
    for item in items:
        fund[to_checksum_address(_checked_address(item, "fund address"))] = wei
    for name in key_envs:
        value = os.environ.get(name, "")
        if not value:
            raise InvalidConfigError("fund key variable", name, "is not set in the environment")
        fund[node_key_from_hex(value, source=f"${name}").address] = wei
    return fund


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; exit 0 on success or when the network already exists."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory for keys and genesis")
    parser.add_argument("--chain-id", type=int, required=True)
    parser.add_argument(
        "--host",
        action="append",
        default=[],
        required=True,
        help="p2p address of validator N (repeat once per validator, in order)",
    )
    parser.add_argument("--p2p-port", type=int, default=30303)
    parser.add_argument("--block-period", type=int, default=2, help="seconds between blocks")
    parser.add_argument("--request-timeout", type=int, default=4, help="QBFT round timeout, seconds")
    parser.add_argument("--fund", action="append", default=[], help="address to pre-fund (repeat)")
    parser.add_argument(
        "--fund-key-env",
        action="append",
        default=[],
        help="name of an environment variable holding a private key whose address is pre-funded",
    )
    parser.add_argument("--fund-wei", type=int, default=DEFAULT_FUND_WEI)
    parser.add_argument("--owner", help="UID:GID that should own the files (the Besu image runs as 1000)")
    args = parser.parse_args(argv)
    try:
        fund = _parse_fund(args.fund, args.fund_key_env, args.fund_wei)
        owner = _parse_owner(args.owner) if args.owner else None
        created, network = init_network(
            args.out,
            chain_id=args.chain_id,
            hosts=args.host,
            p2p_port=args.p2p_port,
            block_period_seconds=args.block_period,
            request_timeout_seconds=args.request_timeout,
            fund=fund,
            owner=owner,
        )
    except GenesisError as exc:
        print(f"besu-genesis: error: {exc}", file=sys.stderr)
        return 2
    state = "generated" if created else "already initialised, left unchanged:"
    print(f"besu-genesis: {state} chain {network['chainId']} in {args.out}")
    for validator in network["validators"]:
        print(f"  {validator['node']}: {validator['address']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
