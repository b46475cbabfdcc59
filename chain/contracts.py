"""Compiled artifacts, deployment, and the address book ``deployments/<chainId>.json``.

Artifacts are read from ``contracts/artifacts`` (written by ``python -m chain.compile``); nothing is
compiled here. ``deploy(w3, signer, admin=...)`` deploys the consortium registry and returns a
``Deployment`` (addresses, chain id, block, tx hashes) that ``AddressBook`` stores per chain id in a
directory of the caller's choosing. No address is hard-coded anywhere.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from chain.errors import DEFAULT_ARTIFACTS_DIR, AddressBookError, ArtifactError, translate_exception
from chain.tx import TxSender

if TYPE_CHECKING:
    from web3 import Web3
    from web3.contract import Contract

__all__ = [
    "ARTIFACTS_DIR",
    "DEFAULT_DEPLOYMENTS_DIR",
    "REGISTRY",
    "REGISTRY_HARNESS",
    "AddressBook",
    "Artifact",
    "Deployment",
    "check_deployment",
    "contract_at",
    "deploy",
    "load_artifact",
]

ARTIFACTS_DIR = DEFAULT_ARTIFACTS_DIR
DEFAULT_DEPLOYMENTS_DIR = Path("deployments")  # relative to the working directory, like QCN_DEPLOYMENTS_DIR
REGISTRY = "ConsortiumRegistry"
REGISTRY_HARNESS = "ConsortiumRegistryHarness"  # test only: settable clock
_DEPLOY_GAS = 4_000_000
_BOOK_FORMAT = "qcn-deployment-1"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract as stored in ``contracts/artifacts/<name>.json``."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str
    source_hash: str
    path: str
    immutable_ranges: tuple[tuple[int, int], ...] = ()

    def runtime_matches(self, code: bytes) -> bool:
        """True if ``code`` is this contract's runtime code, whatever its constructor put in the immutables."""
        expected = bytearray(bytes.fromhex(self.deployed_bytecode.removeprefix("0x")))
        actual = bytearray(code)
        if len(actual) != len(expected):
            return False
        for start, length in self.immutable_ranges:
            actual[start : start + length] = expected[start : start + length]
        return actual == expected


def load_artifact(name: str, artifacts_dir: Path | None = None) -> Artifact:
    """Read the artifact of contract ``name``; ``ArtifactError`` names the file if missing or broken."""
    return _load_artifact(name, (artifacts_dir or ARTIFACTS_DIR).resolve())


@functools.cache
def _load_artifact(name: str, artifacts_dir: Path) -> Artifact:
    path = artifacts_dir / f"{name}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(path, "not found (run `python -m chain.compile`)") from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError(path, f"unreadable: {exc}") from exc
    try:
        artifact = Artifact(
            name=str(raw["contractName"]),
            abi=list(raw["abi"]),
            bytecode=str(raw["bytecode"]),
            deployed_bytecode=str(raw["deployedBytecode"]),
            immutable_ranges=tuple((int(a), int(b)) for a, b in raw.get("immutableRanges", [])),
            compiler_version=str(raw["compiler"]["version"]),
            source_hash=str(raw["sourceHash"]),
            path=str(path),
        )
    except (KeyError, TypeError) as exc:
        raise ArtifactError(path, f"missing field {exc}") from exc
    if artifact.name != name:
        raise ArtifactError(path, f"holds contract {artifact.name!r}, expected {name!r}")
    return artifact


def contract_at(w3: Web3, name: str, address: str, artifacts_dir: Path | None = None) -> Contract:
    """A web3 contract object for artifact ``name`` at ``address``."""
    return w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name, artifacts_dir).abi)


@dataclass(frozen=True)
class Deployment:
    """Where our contracts live on one chain.

    ``contracts`` maps a role name to its address; today one deployment serves both roles
    (``"PartyRegistry"`` and ``"AnchorRegistry"`` point to the same ``ConsortiumRegistry``).
    """

    chain_id: int
    contracts: dict[str, str]
    artifacts: dict[str, str]  # role -> artifact name
    block_number: int
    tx_hashes: dict[str, str]
    deployer: str
    admin: str
    format: str = field(default=_BOOK_FORMAT)

    @property
    def registry(self) -> str:
        """Address of the consortium registry (parties + anchors)."""
        return self.address_of("AnchorRegistry")

    def address_of(self, role: str) -> str:
        """Address for ``role``; ``AddressBookError`` if this deployment lacks it."""
        try:
            return self.contracts[role]
        except KeyError:
            raise AddressBookError(f"chain {self.chain_id}", f"no contract for role {role!r}") from None

    def to_json(self) -> str:
        """Stable JSON text (sorted keys)."""
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "<text>") -> Deployment:
        """Parse what ``to_json`` wrote; ``AddressBookError`` on anything else."""
        try:
            raw = json.loads(text)
            if raw.get("format") != _BOOK_FORMAT:
                raise AddressBookError(source, f"unknown format {raw.get('format')!r}")
            return cls(
                chain_id=int(raw["chain_id"]),
                contracts={k: to_checksum_address(v) for k, v in raw["contracts"].items()},
                artifacts={str(k): str(v) for k, v in raw["artifacts"].items()},
                block_number=int(raw["block_number"]),
                tx_hashes={str(k): str(v) for k, v in raw["tx_hashes"].items()},
                deployer=to_checksum_address(raw["deployer"]),
                admin=to_checksum_address(raw["admin"]),
            )
        except AddressBookError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AddressBookError(source, f"malformed: {exc}") from exc


def deploy(
    w3: Web3,
    signer: TxSender,
    *,
    admin: str | None = None,
    registrar: str | None = None,
    registry_artifact: str = REGISTRY,
    artifacts_dir: Path | None = None,
) -> Deployment:
    """Deploy the consortium registry with ``admin`` (default: the signer) as consortium admin and
    ``registrar`` (default: the admin) holding REGISTRAR_ROLE.

    ``registry_artifact=REGISTRY_HARNESS`` deploys the test harness with a settable clock (tests only).
    """
    artifact = load_artifact(registry_artifact, artifacts_dir)
    admin_address = to_checksum_address(admin or signer.address)
    registrar_address = to_checksum_address(registrar or admin_address)
    sent = signer.deploy(artifact.abi, artifact.bytecode, admin_address, registrar_address, gas=_DEPLOY_GAS)
    address = to_checksum_address(str(sent.receipt["contractAddress"]))
    roles = ("PartyRegistry", "AnchorRegistry")
    return Deployment(
        chain_id=signer.chain_id,
        contracts=dict.fromkeys(roles, address),
        artifacts=dict.fromkeys(roles, registry_artifact),
        block_number=sent.block_number,
        tx_hashes={registry_artifact: sent.tx_hash},
        deployer=signer.address,
        admin=admin_address,
    )


def check_deployment(w3: Web3, deployment: Deployment, artifacts_dir: Path | None = None) -> None:
    """Raise ``AddressBookError`` unless every contract of ``deployment`` has its artifact's code on chain.

    Catches an address book that outlived its chain (a dev chain reset) before any call goes astray.
    """
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:
        raise translate_exception(exc) from exc
    if chain_id != deployment.chain_id:
        raise AddressBookError(f"chain {deployment.chain_id}", f"node is on chain {chain_id}")
    for role, address in sorted(deployment.contracts.items()):
        try:
            code = bytes(w3.eth.get_code(to_checksum_address(address)))
        except Exception as exc:
            raise translate_exception(exc) from exc
        if role not in deployment.artifacts:  # e.g. an external settlement token: it must at least exist
            if not code:
                raise AddressBookError(f"chain {deployment.chain_id}", f"{role} at {address}: no code on chain")
            continue
        if not load_artifact(deployment.artifacts[role], artifacts_dir).runtime_matches(code):
            what = "no code" if not code else "different code"
            raise AddressBookError(f"chain {deployment.chain_id}", f"{role} at {address}: {what} on chain")


class AddressBook:
    """Reads and writes ``<directory>/<chainId>.json`` (directory: argument, ``QCN_DEPLOYMENTS_DIR`` or
    ``deployments/``)."""

    def __init__(self, directory: Path | str | None = None) -> None:
        chosen = directory or os.environ.get("QCN_DEPLOYMENTS_DIR") or DEFAULT_DEPLOYMENTS_DIR
        self.directory = Path(chosen)

    def path_for(self, chain_id: int) -> Path:
        """File of chain ``chain_id``."""
        return self.directory / f"{int(chain_id)}.json"

    def save(self, deployment: Deployment) -> Path:
        """Write ``deployment`` atomically (temp file + rename); return the path."""
        path = self.path_for(deployment.chain_id)
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(deployment.to_json(), encoding="utf-8")
        tmp.replace(path)
        return path

    def load(self, chain_id: int) -> Deployment:
        """The deployment of ``chain_id``; ``AddressBookError`` if there is none or it is malformed."""
        path = self.path_for(chain_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AddressBookError(path, f"no deployment recorded for chain {chain_id}") from None
        deployment = Deployment.from_json(text, source=str(path))
        if deployment.chain_id != int(chain_id):
            raise AddressBookError(path, f"records chain {deployment.chain_id}, not {chain_id}")
        return deployment

    def has(self, chain_id: int) -> bool:
        """True if a deployment file exists for ``chain_id``."""
        return self.path_for(chain_id).is_file()
