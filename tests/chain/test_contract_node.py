"""The same contract paths over JSON-RPC on a real anvil node (web3 raises ContractCustomError there)."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak

from chain.clients import (
    AnchorRegistryClient,
    BatchIn,
    PartyKind,
    PartyRegistryClient,
    header_commitment,
    supplier_batch_id,
)
from chain.contracts import AddressBook, check_deployment, deploy
from chain.errors import AlreadyAnchoredError, ContractRevert
from chain.tx import TxSender, http_web3

pytestmark = pytest.mark.node


@pytest.fixture
def node_env(anvil, tmp_path):
    w3 = http_web3(anvil.url)
    keys = {role: keccak(text=f"qcn-node-{role}") for role in ("admin", "supplier", "relayer", "stranger")}
    for key in keys.values():
        w3.provider.make_request("anvil_setBalance", [Account.from_key(key).address, hex(10**21)])
    senders = {role: TxSender(w3, key, poll_interval=0.01) for role, key in keys.items()}
    deployment = deploy(w3, senders["admin"])
    AddressBook(tmp_path).save(deployment)
    parties = PartyRegistryClient(w3, deployment.registry, senders["admin"])
    parties.register_party(senders["supplier"].address, PartyKind.SUPPLIER, "Node Supplier")
    parties.approve_relayer(senders["supplier"].address, senders["relayer"].address)
    return w3, deployment, senders, tmp_path


def _batch(label: str, supplier: str) -> BatchIn:
    return BatchIn(
        batch_id=supplier_batch_id(supplier, label),
        supplier=supplier,
        root=keccak(text=label + "/root"),
        record_count=7,
        verdict=1,
    )


def test_anchor_duplicate_and_events_over_json_rpc(node_env):
    w3, deployment, senders, book_dir = node_env
    assert AddressBook(book_dir).load(deployment.chain_id) == deployment
    check_deployment(w3, deployment)
    supplier = senders["supplier"].address
    relayer = AnchorRegistryClient(w3, deployment.registry, senders["relayer"])

    first = relayer.anchor(_batch("n1", supplier))
    assert first.anchored_at == first.block_timestamp
    assert relayer.commitment_of(first.batch_id) == first.commitment == header_commitment(first.header)

    with pytest.raises(AlreadyAnchoredError) as exc:  # fixed gas: mined, status 0, replayed and decoded
        relayer.anchor(_batch("n1", supplier))
    assert exc.value.existing_commitment == first.commitment
    assert exc.value.tx_hash is not None
    assert w3.eth.get_transaction_receipt(exc.value.tx_hash)["status"] == 0

    many = relayer.anchor_many([_batch(f"m{i}", supplier) for i in range(20)])
    events = relayer.anchored_events(first.block_number)
    assert [e.batch_id for e in events] == [first.batch_id] + [r.batch_id for r in many]
    assert [header_commitment(e.header) for e in events] == [first.commitment] + [r.commitment for r in many]


def test_revert_in_estimation_is_decoded_from_contract_custom_error(node_env):
    w3, deployment, senders, _ = node_env
    stranger = AnchorRegistryClient(w3, deployment.registry, senders["stranger"])
    batch = _batch("s1", senders["supplier"].address)
    call = stranger.contract.functions.anchor(batch.supplier, batch.agreement_id, batch.request_tuple())
    with pytest.raises(ContractRevert) as exc:
        senders["stranger"].send(call)  # estimate_gas -> web3 ContractCustomError
    assert exc.value.name == "NotAuthorisedFor"
    assert exc.value.arguments == {"supplier": senders["supplier"].address, "caller": senders["stranger"].address}
    assert exc.value.tx_hash is None
