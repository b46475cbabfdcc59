"""Deployment, the address book, and TxSender nonce handling on the in-process EVM."""

from __future__ import annotations

import json

import pytest
from eth_utils import keccak

from chain.clients import AnchorRegistryClient, BatchIn, PartyKind, supplier_batch_id
from chain.contracts import REGISTRY, REGISTRY_HARNESS, AddressBook, Deployment, check_deployment, contract_at, deploy
from chain.errors import AddressBookError, ArtifactError
from chain.tx import TxSender

DEFAULT_ADMIN_ROLE = b"\x00" * 32
REGISTRAR_ROLE = keccak(text="REGISTRAR_ROLE")


def test_deploy_production_registry(chain):
    sender = chain.sender("newcomer")
    deployment = deploy(chain.w3, sender, admin=chain.addr("admin"))
    assert deployment.chain_id == chain.w3.eth.chain_id
    assert deployment.contracts["PartyRegistry"] == deployment.contracts["AnchorRegistry"] == deployment.registry
    assert deployment.artifacts == {"PartyRegistry": REGISTRY, "AnchorRegistry": REGISTRY}
    assert (deployment.deployer, deployment.admin) == (chain.addr("newcomer"), chain.addr("admin"))
    receipt = chain.w3.eth.get_transaction_receipt(deployment.tx_hashes[REGISTRY])
    assert receipt["contractAddress"] == deployment.registry
    assert receipt["blockNumber"] == deployment.block_number
    registry = contract_at(chain.w3, REGISTRY, deployment.registry)
    assert registry.functions.version().call() == "2.1.0"
    assert registry.functions.hasRole(DEFAULT_ADMIN_ROLE, chain.addr("admin")).call()
    assert registry.functions.defaultAdmin().call() == chain.addr("admin")
    assert registry.functions.defaultAdminDelay().call() == 2 * 86_400
    assert registry.functions.hasRole(REGISTRAR_ROLE, chain.addr("admin")).call()  # default registrar: the admin
    assert not registry.functions.hasRole(REGISTRAR_ROLE, chain.addr("newcomer")).call()
    assert "setTime" not in {f["name"] for f in registry.abi if f["type"] == "function"}
    check_deployment(chain.w3, deployment)


def test_address_book_round_trip_and_errors(chain, tmp_path):
    deployment = deploy(chain.w3, chain.sender("admin"))
    book = AddressBook(tmp_path / "deployments")
    path = book.save(deployment)
    assert path == tmp_path / "deployments" / f"{deployment.chain_id}.json"
    assert json.loads(path.read_text())["contracts"]["AnchorRegistry"] == deployment.registry
    assert book.load(deployment.chain_id) == deployment
    assert book.has(deployment.chain_id) and not book.has(1)
    with pytest.raises(AddressBookError, match="no deployment recorded for chain 1"):
        book.load(1)
    book.path_for(5).write_text("{not json")
    with pytest.raises(AddressBookError, match="malformed"):
        book.load(5)


def test_address_book_directory_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QCN_DEPLOYMENTS_DIR", str(tmp_path))
    assert AddressBook().path_for(31337) == tmp_path / "31337.json"


def test_check_deployment_detects_a_stale_address_book(chain):
    deployment = deploy(chain.w3, chain.sender("admin"))
    stale = Deployment(**{**deployment.__dict__, "contracts": dict.fromkeys(deployment.contracts, chain.addr("oem"))})
    with pytest.raises(AddressBookError, match="no code on chain"):
        check_deployment(chain.w3, stale)
    other_chain = Deployment(**{**deployment.__dict__, "chain_id": 1})
    with pytest.raises(AddressBookError, match="node is on chain"):
        check_deployment(chain.w3, other_chain)


def test_missing_artifact_names_the_file(chain, tmp_path):
    with pytest.raises(ArtifactError, match=r"Nope\.json: not found"):
        deploy(chain.w3, chain.sender("admin"), registry_artifact="Nope", artifacts_dir=tmp_path)


def test_two_senders_with_one_key_resync_their_nonce(chain):
    """A restarted worker (second sender, same key) and the old one interleave: the stale one resyncs."""
    key = chain.accounts["supplier"].key
    old, new = TxSender(chain.w3, key), TxSender(chain.w3, key)
    assert old.resync_nonce() == new.resync_nonce()
    anchors_old = AnchorRegistryClient(chain.w3, chain.deployment.registry, old, artifact=REGISTRY_HARNESS)
    anchors_new = AnchorRegistryClient(chain.w3, chain.deployment.registry, new, artifact=REGISTRY_HARNESS)

    def batch(label: str) -> BatchIn:
        batch_id = supplier_batch_id(old.address, label)
        return BatchIn(batch_id=batch_id, supplier=old.address, root=keccak(text=label + "r"), record_count=1)

    first = anchors_new.anchor(batch("n1"))
    second = anchors_old.anchor(batch("o1"))  # its cached nonce was used by `new`: resync and resend
    third = anchors_new.anchor(batch("n2"))  # and now `new` is the stale one
    assert len({first.tx_hash, second.tx_hash, third.tx_hash}) == 3
    assert all(chain.anchors().is_anchored(supplier_batch_id(old.address, x)) for x in ("n1", "o1", "n2"))
    assert chain.w3.eth.get_transaction_count(old.address) == old.resync_nonce()


def test_sender_fields_eip1559_fees(chain):
    sender = chain.sender("admin")
    sent = chain.parties().register_party(chain.addr("newcomer"), PartyKind.OEM, "fees")
    tx = chain.w3.eth.get_transaction(sent.tx_hash)
    assert tx["type"] == 2
    assert tx["maxFeePerGas"] >= chain.w3.eth.get_block(sent.block_number)["baseFeePerGas"]
    assert tx["chainId"] == sender.chain_id
