"""Revert decoding for both backends (eth-tester's raw bytes and web3's ContractCustomError over
JSON-RPC) and translation of connection failures."""

from __future__ import annotations

import socket

import pytest
from eth_abi import encode as abi_encode
from eth_tester.exceptions import TransactionFailed as EthTesterTransactionFailed
from eth_utils import keccak
from web3.exceptions import ContractCustomError, ProviderConnectionError

from chain.errors import (
    AlreadyAnchoredError,
    ChainError,
    ContractRevert,
    NodeUnavailable,
    TransactionFailed,
    decode_revert,
    translate_exception,
)
from chain.tx import TxSender, http_web3

BATCH = keccak(text="b")
COMMITMENT = keccak(text="c")


def error_data(signature: str, types: list[str], values: list[object]) -> bytes:
    return keccak(text=signature)[:4] + abi_encode(types, values)


ALREADY = error_data("AlreadyAnchored(bytes32,bytes32)", ["bytes32", "bytes32"], [BATCH, COMMITMENT])


def test_decode_custom_error_into_specific_class():
    err = decode_revert(ALREADY, "0xabc")
    assert isinstance(err, AlreadyAnchoredError)
    assert (err.name, err.arguments, err.tx_hash) == (
        "AlreadyAnchored",
        {"batchId": BATCH, "existingCommitment": COMMITMENT},
        "0xabc",
    )
    assert (err.batch_id, err.existing_commitment) == (BATCH, COMMITMENT)
    assert "AlreadyAnchored(batchId=0x" in str(err)


def test_decode_error_with_address_checksums_it():
    data = error_data("NotSupplier(address)", ["address"], ["0x" + "ab" * 20])
    err = decode_revert("0x" + data.hex())
    assert isinstance(err, ContractRevert)
    assert err.arguments == {"account": "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"}


def test_decode_openzeppelin_error_string_and_panic():
    signature = "AccessControlUnauthorizedAccount(address,bytes32)"
    oz = error_data(signature, ["address", "bytes32"], ["0x" + "11" * 20, BATCH])
    assert decode_revert(oz).name == "AccessControlUnauthorizedAccount"
    message = decode_revert(error_data("Error(string)", ["string"], ["nope"]))
    assert isinstance(message, ContractRevert) and message.arguments == {"message": "nope"}
    panic = decode_revert(error_data("Panic(uint256)", ["uint256"], [0x11]))
    assert isinstance(panic, ContractRevert)
    assert panic.arguments == {"code": 0x11, "meaning": "arithmetic overflow or underflow"}


def test_unknown_or_empty_revert_data_is_transaction_failed():
    unknown = decode_revert(b"\xde\xad\xbe\xef" + b"\x00" * 32, "0x1")
    assert isinstance(unknown, TransactionFailed)
    assert "0xdeadbeef" in unknown.reason and unknown.tx_hash == "0x1"
    empty = decode_revert(b"")
    assert isinstance(empty, TransactionFailed) and empty.reason == "reverted without data"


def test_translate_anvil_shape_contract_custom_error():
    exc = ContractCustomError("0x" + ALREADY.hex(), data="0x" + ALREADY.hex())
    err = translate_exception(exc, tx_hash="0xfeed")
    assert isinstance(err, AlreadyAnchoredError) and err.tx_hash == "0xfeed"
    assert err.existing_commitment == COMMITMENT


def test_translate_eth_tester_shape():
    exc = EthTesterTransactionFailed(f"execution reverted: {ALREADY!r}")
    err = translate_exception(exc)
    assert isinstance(err, AlreadyAnchoredError) and err.batch_id == BATCH
    raw = EthTesterTransactionFailed(ALREADY)
    assert isinstance(translate_exception(raw), AlreadyAnchoredError)


def test_translate_connection_errors():
    err = translate_exception(ProviderConnectionError("refused"), endpoint="http://x")
    assert isinstance(err, NodeUnavailable) and err.endpoint == "http://x"
    other = translate_exception(RuntimeError("boom"))
    assert isinstance(other, TransactionFailed) and "RuntimeError: boom" in other.reason
    assert all(issubclass(c, ChainError) for c in (NodeUnavailable, TransactionFailed, ContractRevert))


def test_sender_against_a_closed_port_raises_node_unavailable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    sender = TxSender(http_web3(f"http://127.0.0.1:{port}", request_timeout=2), keccak(text="k"))
    with pytest.raises(NodeUnavailable) as exc:
        _ = sender.chain_id
    assert str(port) in exc.value.endpoint
