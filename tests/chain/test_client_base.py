"""One contract-client base (``chain.client.ContractClient``) and web3's failures translated once, in ``chain/``.

The node calls the gateway makes directly go through ``chain.client.Rpc``: a revert comes back as a
``ContractRevert`` naming the custom error, an unreachable node as ``NodeUnavailable``, an unknown receipt as
None. Application code never sees a web3 exception type (checked on the source of ``app/``).
"""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest
from web3 import Web3

from chain.agreements import AgreementRegistryClient
from chain.cases import TracingCasesClient
from chain.client import ContractClient, RoleClient, Rpc
from chain.clients import AnchorRegistryClient, PartyKind, PartyRegistryClient
from chain.errors import ContractRevert, NodeUnavailable
from chain.tx import calldata, decode_signed, http_web3
from tests.chain.conftest import ChainEnv

ROOT = Path(__file__).resolve().parents[2]


def test_every_contract_client_has_the_one_base() -> None:
    for cls in (PartyRegistryClient, AnchorRegistryClient, AgreementRegistryClient, TracingCasesClient):
        assert issubclass(cls, ContractClient), cls
    assert issubclass(AgreementRegistryClient, RoleClient) and issubclass(TracingCasesClient, RoleClient)
    # the plumbing is the base's, not redefined per client
    for cls in (PartyRegistryClient, AnchorRegistryClient, AgreementRegistryClient, TracingCasesClient):
        for name in ("_call", "_send", "_tx", "with_sender", "chain_id"):
            assert getattr(cls, name) is getattr(ContractClient, name), (cls, name)


def test_a_simulated_revert_comes_back_named(chain: ChainEnv) -> None:
    # registering an already registered party: the registry's custom error, decoded by name with its arguments
    parties = chain.parties("admin")
    call = parties.contract.functions.registerParty(
        chain.addr("oem"), int(PartyKind.OEM), b"x".ljust(32, b"\x00"), chain.addr("oem"), b"\x00" * 32, 0
    )
    rpc = Rpc(chain.w3)
    with pytest.raises(ContractRevert) as info:
        rpc.simulate({"from": chain.addr("admin"), "to": parties.address, "data": calldata(call)})
    assert info.value.name == "PartyAlreadyRegistered"
    assert info.value.arguments == {"account": chain.addr("oem"), "kind": int(PartyKind.OEM)}


def test_an_unknown_receipt_is_none_and_the_clock_is_the_latest_block(chain: ChainEnv) -> None:
    rpc = Rpc(chain.w3)
    assert rpc.receipt("0x" + "ab" * 32) is None
    assert not rpc.knows_transaction("0x" + "ab" * 32)
    assert rpc.latest_timestamp() == int(chain.w3.eth.get_block("latest")["timestamp"])
    assert rpc.block_number() == int(chain.w3.eth.block_number)


def test_an_unreachable_node_is_node_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    rpc = Rpc(http_web3(f"http://127.0.0.1:{port}", request_timeout=2), f"http://127.0.0.1:{port}")
    with pytest.raises(NodeUnavailable) as info:
        rpc.block_number()
    assert str(port) in str(info.value)


def test_signed_transactions_decode_with_public_apis() -> None:
    from eth_account import Account

    key = b"\x11" * 32
    to = "0x" + "22" * 20
    legacy = {"to": to, "value": 0, "gas": 21000, "gasPrice": 1, "nonce": 7, "chainId": 31337, "data": b"\x01\x02"}
    typed = legacy | {"type": 2, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1}
    del typed["gasPrice"]
    for tx in (legacy, typed):
        fields = decode_signed(bytes(Account.sign_transaction(tx, key).raw_transaction))
        assert Web3.to_checksum_address(fields["to"]) == Web3.to_checksum_address(to)
        assert (bytes(fields["data"]), fields["chainId"], fields["nonce"]) == (b"\x01\x02", 31337, 7)
    with pytest.raises(ValueError):
        decode_signed(b"\xc3\x01\x02\x03")  # an RLP list, not a transaction


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_the_application_never_handles_web3_exceptions_or_translates_them() -> None:
    offenders = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        names = _imported_names(path)
        bad = sorted(
            n
            for n in names
            if n.startswith(("web3.exceptions", "eth_account._utils", "web3._utils"))
            or n == "chain.errors.translate_exception"
        )
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}
