"""Batch anchors: anchor / anchorMany / anchorCorrection, authorisation, write-once, validation,
events, and the Python header commitment against the contract's."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.clients import (
    ZERO32,
    BatchHeader,
    BatchIn,
    header_commitment,
    pack_meta,
    supplier_batch_id,
    unpack_meta,
)
from chain.errors import AlreadyAnchoredError, ContractRevert, InvalidInput

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, set on the harness clock where a test needs a known time


def h(label: str) -> bytes:
    return keccak(text=label)


def make_batch(chain, label: str, *, supplier: str = "supplier", **overrides) -> BatchIn:
    fields = {
        "batch_id": supplier_batch_id(chain.addr(supplier), f"batch:{label}"),
        "supplier": chain.addr(supplier),
        "root": h(f"root:{label}"),
        "report_hash": h(f"report:{label}"),
        "record_count": 250,
        "verdict": 1,
        "agreement_id": h("agreement:1"),
    }
    fields.update(overrides)
    return BatchIn(**fields)


def test_anchor_by_supplier(chain):
    chain.set_time(T0)
    batch = make_batch(chain, "a")
    receipt = chain.anchors("supplier").anchor(batch)

    expected_header = BatchHeader(
        root=batch.root,
        report_hash=batch.report_hash,
        agreement_id=batch.agreement_id,
        supplier=chain.addr("supplier"),
        record_count=250,
        verdict=1,
        anchored_at=T0,
        supersedes=ZERO32,
    )
    assert receipt.header == expected_header
    assert receipt.anchored_at == T0
    assert receipt.commitment == header_commitment(expected_header)
    assert receipt.gas_used > 21_000
    assert receipt.block_timestamp == chain.w3.eth.get_block(receipt.block_number)["timestamp"]
    # state read back
    client = chain.anchors()
    assert client.commitment_of(batch.batch_id) == receipt.commitment
    assert client.is_anchored(batch.batch_id)
    assert client.onchain_commitment(expected_header) == receipt.commitment
    # event, decoded by the ABI (not by our own decoder)
    (event,) = chain.events(_sent(chain, receipt), "BatchAnchored")
    assert event == {
        "batchId": batch.batch_id,
        "agreementId": batch.agreement_id,
        "root": batch.root,
        "reportHash": batch.report_hash,
        "meta": pack_meta(chain.addr("supplier"), 250, 1, T0),
    }
    assert unpack_meta(event["meta"]) == (chain.addr("supplier"), 250, 1, T0)


def _sent(chain, receipt):
    from chain.tx import SentTx

    raw = chain.w3.eth.get_transaction_receipt(receipt.tx_hash)
    return SentTx(receipt.tx_hash, raw["blockNumber"], raw["gasUsed"], raw)


def test_anchored_at_follows_block_time_by_default(chain):
    receipt = chain.anchors().anchor(make_batch(chain, "t"))
    assert receipt.anchored_at == receipt.block_timestamp


def test_anchor_by_approved_relayer_then_revoked(chain, expect_revert):
    supplier, relayer = chain.addr("supplier"), chain.addr("relayer")
    batch = make_batch(chain, "r1")
    with expect_revert("NotAuthorisedFor", supplier=supplier, caller=relayer):
        chain.anchors("relayer").anchor(batch)
    chain.parties("supplier").approve_relayer(supplier, relayer)
    receipt = chain.anchors("relayer").anchor(batch)
    assert receipt.header.supplier == supplier
    assert chain.anchors().commitment_of(batch.batch_id) == receipt.commitment
    chain.parties().revoke_relayer(supplier, relayer)
    with expect_revert("NotAuthorisedFor", supplier=supplier, caller=relayer):
        chain.anchors("relayer").anchor(make_batch(chain, "r2"))


def test_relayer_of_one_supplier_cannot_anchor_for_another(chain, expect_revert):
    chain.parties().approve_relayer(chain.addr("supplier"), chain.addr("relayer"))
    with expect_revert("NotAuthorisedFor", supplier=chain.addr("supplier2"), caller=chain.addr("relayer")):
        chain.anchors("relayer").anchor(make_batch(chain, "x", supplier="supplier2"))


def test_no_supplier_can_take_another_suppliers_batch_id_first(chain, expect_revert):
    """Batch ids were not bound to their supplier on chain, and the gateway's ids are predictable (supplier and
    idempotency key, e.g. a lot number): another supplier or its relayer could anchor a rival's next id first and
    block that batch for good. An id now starts with its supplier's address and the registry anchors it only for
    that supplier, on every entry point; the rightful supplier still anchors it afterwards."""
    chain.parties().approve_relayer(chain.addr("supplier2"), chain.addr("relayer"))
    mine = make_batch(chain, "lot-0815")
    assert mine.batch_id[:20] == bytes.fromhex(chain.addr("supplier")[2:])
    squat = make_batch(chain, "squat", supplier="supplier2", batch_id=mine.batch_id)
    plain = make_batch(chain, "squat", supplier="supplier2", batch_id=mine.batch_id, agreement_id=ZERO32)
    decoy = make_batch(chain, "decoy", supplier="supplier2")
    refused = {"batchId": mine.batch_id, "supplier": chain.addr("supplier2")}
    for who in ("supplier2", "relayer"):
        with expect_revert("ForeignBatchId", **refused):
            chain.anchors(who).anchor(squat)
        with expect_revert("ForeignBatchId", **refused):
            chain.anchors(who).anchor(plain)  # the lean anchorSimplePacked path
        with expect_revert("ForeignBatchId", **refused):
            chain.anchors(who).anchor_many([decoy, squat])
    assert chain.anchors().commitment_of(decoy.batch_id) is None  # the whole call reverted
    own = chain.anchors("supplier2").anchor(make_batch(chain, "orig", supplier="supplier2"))
    with expect_revert("ForeignBatchId", **refused):
        chain.anchors("supplier2").anchor_correction(squat, own.batch_id, own.header)
    assert chain.anchors().commitment_of(mine.batch_id) is None
    receipt = chain.anchors().anchor(mine)
    assert chain.anchors().commitment_of(mine.batch_id) == receipt.commitment


def test_anchor_by_stranger_reverts_and_stores_nothing(chain, expect_revert):
    batch = make_batch(chain, "s")
    with expect_revert("NotAuthorisedFor", supplier=chain.addr("supplier"), caller=chain.addr("stranger")) as exc:
        chain.anchors("stranger").anchor(batch)
    assert exc.value.tx_hash is not None  # fixed gas: mined with status 0, decoded by replay
    assert chain.anchors().commitment_of(batch.batch_id) is None


def test_anchor_for_non_supplier_or_inactive_supplier_reverts(chain, expect_revert):
    with expect_revert("NotSupplier", account=chain.addr("oem")):
        chain.anchors("oem").anchor(make_batch(chain, "o", supplier="oem"))
    with expect_revert("NotSupplier", account=chain.addr("stranger")):
        chain.anchors("stranger").anchor(make_batch(chain, "u", supplier="stranger"))
    chain.parties().deactivate(chain.addr("supplier"))
    with expect_revert("NotSupplier", account=chain.addr("supplier")):
        chain.anchors("supplier").anchor(make_batch(chain, "d"))


def test_duplicate_anchor_reverts_with_existing_commitment(chain):
    batch = make_batch(chain, "dup")
    first = chain.anchors().anchor(batch)
    again = make_batch(chain, "dup", root=h("another root"))
    with pytest.raises(AlreadyAnchoredError) as exc:
        chain.anchors().anchor(again)
    assert exc.value.name == "AlreadyAnchored"
    assert exc.value.batch_id == batch.batch_id
    assert exc.value.existing_commitment == first.commitment
    assert chain.anchors().commitment_of(batch.batch_id) == first.commitment  # nothing overwritten


@pytest.mark.parametrize(
    ("overrides", "error", "args"),
    [
        ({"root": ZERO32}, "EmptyRoot", lambda b: {"batchId": b.batch_id}),
        ({"record_count": 0}, "ZeroRecordCount", lambda b: {"batchId": b.batch_id}),
        ({"verdict": 3}, "InvalidVerdict", lambda b: {"batchId": b.batch_id, "verdict": 3}),
        ({"batch_id": ZERO32}, "ZeroBatchId", lambda b: {}),
    ],
)
def test_invalid_request_reverts(chain, expect_revert, overrides, error, args):
    batch = make_batch(chain, "bad", **overrides)
    with expect_revert(error, **args(batch)):
        chain.anchors().anchor(batch)


def test_revert_in_gas_estimation_is_decoded_without_tx(chain, expect_revert):
    batch = make_batch(chain, "est")
    call = chain.harness.functions.anchor(batch.supplier, batch.agreement_id, batch.request_tuple())
    with expect_revert("NotAuthorisedFor", supplier=batch.supplier, caller=chain.addr("stranger")) as exc:
        chain.sender("stranger").send(call)  # no fixed gas: the estimate reverts, nothing is sent
    assert exc.value.tx_hash is None


def test_clock_beyond_56_bits_reverts(chain, expect_revert):
    chain.set_time(2**56)
    with expect_revert("ClockOutOfRange", time=2**56):
        chain.anchors().anchor(make_batch(chain, "late"))


def test_anchor_many(chain):
    chain.set_time(T0)
    batches = [make_batch(chain, f"m{i}", record_count=10 + i, verdict=i % 3) for i in range(5)]
    receipts = chain.anchors().anchor_many(batches)
    assert [r.batch_id for r in receipts] == [b.batch_id for b in batches]
    assert len({r.tx_hash for r in receipts}) == 1
    assert all(r.anchored_at == T0 and r.batches_in_tx == 5 for r in receipts)
    for batch, receipt in zip(batches, receipts, strict=True):
        assert receipt.header == batch.header(T0)
        assert chain.anchors().commitment_of(batch.batch_id) == header_commitment(batch.header(T0))
    events = chain.events(_sent(chain, receipts[0]), "BatchAnchored")
    assert [e["batchId"] for e in events] == [b.batch_id for b in batches]
    assert [unpack_meta(e["meta"]) for e in events] == [(chain.addr("supplier"), 10 + i, i % 3, T0) for i in range(5)]


def test_anchor_many_with_an_anchored_batch_inside_reverts_whole_tx(chain):
    old = make_batch(chain, "m2")
    first = chain.anchors().anchor(old)
    batches = [make_batch(chain, f"m{i}") for i in range(5)]  # m2 is batches[2]
    with pytest.raises(AlreadyAnchoredError) as exc:
        chain.anchors().anchor_many(batches)
    assert (exc.value.batch_id, exc.value.existing_commitment) == (old.batch_id, first.commitment)
    for b in batches:
        if b.batch_id != old.batch_id:
            assert chain.anchors().commitment_of(b.batch_id) is None


def test_anchor_many_with_the_same_id_twice_reverts(chain):
    chain.set_time(T0)
    batch = make_batch(chain, "twice")
    with pytest.raises(AlreadyAnchoredError) as exc:
        chain.anchors().anchor_many([batch, make_batch(chain, "other"), batch])
    # the commitment written earlier in the same (reverted) transaction
    assert exc.value.existing_commitment == header_commitment(batch.header(T0))
    assert chain.anchors().commitment_of(batch.batch_id) is None


def test_anchor_many_reports_the_first_bad_request(chain, expect_revert):
    batches = [make_batch(chain, f"v{i}") for i in range(4)]
    batches[2] = make_batch(chain, "v2", root=ZERO32)
    batches[3] = make_batch(chain, "v3", record_count=0)
    with expect_revert("EmptyRoot", batchId=batches[2].batch_id):
        chain.anchors().anchor_many(batches)
    assert chain.anchors().commitment_of(batches[0].batch_id) is None


def test_anchor_many_empty_and_mixed_inputs(chain, expect_revert):
    call = chain.harness.functions.anchorMany(chain.addr("supplier"), ZERO32, [])
    with expect_revert("EmptyRequest"):
        chain.sender("supplier").send(call, gas=100_000)
    with pytest.raises(InvalidInput, match="same supplier and agreement_id"):
        chain.anchors().anchor_many([make_batch(chain, "a"), make_batch(chain, "b", agreement_id=h("other"))])
    with pytest.raises(InvalidInput, match="nothing to anchor"):
        chain.anchors().anchor_many([])


def test_correction_links_to_predecessor(chain):
    chain.set_time(T0)
    original = make_batch(chain, "orig", verdict=2)
    first = chain.anchors().anchor(original)
    chain.set_time(T0 + 3600)
    fixed = make_batch(chain, "orig-v2", record_count=249, verdict=1)
    receipt = chain.anchors().anchor_correction(fixed, original.batch_id, first.header)

    assert receipt.header == fixed.header(T0 + 3600, supersedes=original.batch_id)
    assert chain.anchors().commitment_of(fixed.batch_id) == header_commitment(receipt.header)
    assert chain.anchors().commitment_of(original.batch_id) == first.commitment  # untouched
    (event,) = chain.events(_sent(chain, receipt), "BatchCorrected")
    assert event == {
        "batchId": fixed.batch_id,
        "agreementId": fixed.agreement_id,
        "supersedes": original.batch_id,
        "root": fixed.root,
        "reportHash": fixed.report_hash,
        "meta": pack_meta(chain.addr("supplier"), 249, 1, T0 + 3600),
    }
    # the indexer view rebuilds both headers from events alone
    events = chain.anchors().anchored_events(first.block_number, receipt.block_number)
    assert [(e.batch_id, e.is_correction) for e in events] == [(original.batch_id, False), (fixed.batch_id, True)]
    assert [header_commitment(e.header) for e in events] == [first.commitment, receipt.commitment]
    assert events[1].supersedes == original.batch_id


def test_correction_of_foreign_unknown_or_misdescribed_batch_reverts(chain, expect_revert):
    chain.set_time(T0)
    original = make_batch(chain, "p")
    first = chain.anchors().anchor(original)
    theirs = make_batch(chain, "p-fix", supplier="supplier2")
    with expect_revert(
        "ForeignPredecessor",
        supersedes=original.batch_id,
        predecessorSupplier=chain.addr("supplier"),
        supplier=chain.addr("supplier2"),
    ):
        chain.anchors("supplier2").anchor_correction(theirs, original.batch_id, first.header)

    mine = make_batch(chain, "p-fix")
    unknown = h("batch:never")
    with expect_revert("UnknownPredecessor", batchId=mine.batch_id, supersedes=unknown):
        chain.anchors().anchor_correction(mine, unknown, first.header)

    wrong = original.header(T0 + 1)  # wrong anchoredAt
    with expect_revert(
        "PredecessorMismatch",
        supersedes=original.batch_id,
        storedCommitment=first.commitment,
        givenCommitment=header_commitment(wrong),
    ):
        chain.anchors().anchor_correction(mine, original.batch_id, wrong)

    with pytest.raises(AlreadyAnchoredError):
        chain.anchors().anchor_correction(original, original.batch_id, first.header)


def test_anchored_events_decodes_all_fields(chain):
    chain.set_time(T0)
    batches = [make_batch(chain, f"e{i}", record_count=2**32 - 1 - i, verdict=i) for i in range(3)]
    receipts = chain.anchors().anchor_many(batches)
    events = chain.anchors().anchored_events(receipts[0].block_number)
    assert [e.header for e in events] == [b.header(T0) for b in batches]
    assert {e.tx_hash for e in events} == {receipts[0].tx_hash}
    assert [e.log_index for e in events] == sorted(e.log_index for e in events)


header_strategy = st.fixed_dictionaries(
    dict(
        root=st.binary(min_size=32, max_size=32),
        report_hash=st.binary(min_size=32, max_size=32),
        agreement_id=st.binary(min_size=32, max_size=32),
        supplier=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
        record_count=st.integers(0, 2**32 - 1),
        verdict=st.integers(0, 255),
        anchored_at=st.integers(0, 2**64 - 1),
        supersedes=st.binary(min_size=32, max_size=32),
    )
).map(lambda fields: BatchHeader(**fields))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=header_strategy)
def test_python_header_commitment_equals_contract(chain, header):
    assert chain.anchors().onchain_commitment(header) == header_commitment(header)


def test_header_commitment_is_keccak_of_abi_encoded_fields():
    header = BatchHeader(
        root=b"\x01" * 32,
        report_hash=b"\x02" * 32,
        agreement_id=ZERO32,
        supplier="0x00000000000000000000000000000000000000aa",
        record_count=3,
        verdict=1,
        anchored_at=5,
        supersedes=ZERO32,
    )
    words = (
        b"\x01" * 32
        + b"\x02" * 32
        + ZERO32
        + (0xAA).to_bytes(32, "big")
        + (3).to_bytes(32, "big")
        + (1).to_bytes(32, "big")
        + (5).to_bytes(32, "big")
        + ZERO32
    )
    assert header_commitment(header) == keccak(words)
    assert abi_encode(["bytes32", "bytes32"], [b"\x01" * 32, b"\x02" * 32]) == words[:64]


def test_batch_in_validates_lengths():
    with pytest.raises(InvalidInput, match="batch_id: expected 32 bytes, got 31"):
        BatchIn(batch_id=b"\x01" * 31, supplier="0x" + "11" * 20, root=b"\x01" * 32, record_count=1)
    with pytest.raises(InvalidInput, match="record_count"):
        BatchIn(batch_id=b"\x01" * 32, supplier="0x" + "11" * 20, root=b"\x01" * 32, record_count=2**32)
    assert isinstance(InvalidInput("x", "y"), ValueError)
    assert not issubclass(AlreadyAnchoredError, InvalidInput)
    assert issubclass(AlreadyAnchoredError, ContractRevert)


def test_event_of_finds_the_anchor_of_one_batch(chain):
    batch = make_batch(chain, "find-me")
    chain.anchors().anchor(make_batch(chain, "noise"))
    receipt = chain.anchors().anchor(batch)
    event = chain.anchors().event_of(batch.batch_id)
    assert event is not None
    assert (event.batch_id, event.tx_hash, event.header) == (batch.batch_id, receipt.tx_hash, receipt.header)
    assert chain.anchors().event_of(h("batch:absent")) is None


def test_commitments_of_several_batches_come_back_in_order_from_one_batch_request(chain):
    """The worker's exactly-once check asks for a whole anchoring group at once: anchored and unknown batch ids
    mixed, answers in the order asked, None for a batch the chain does not have."""
    client = chain.anchors("supplier")
    first, second = make_batch(chain, "m1"), make_batch(chain, "m2")
    r1, r2 = client.anchor(first), client.anchor(second)
    unknown = make_batch(chain, "m-unknown")
    got = client.commitments_of([second.batch_id, unknown.batch_id, first.batch_id])
    assert got == [r2.commitment, None, r1.commitment]
    assert client.commitments_of([first.batch_id]) == [r1.commitment]
    assert client.commitments_of([]) == []


def test_a_refused_or_failed_commitment_batch_is_a_chain_error(chain, monkeypatch):
    from chain.errors import ChainError

    client = chain.anchors("supplier")
    ids = [make_batch(chain, "e1").batch_id, make_batch(chain, "e2").batch_id]
    refused = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch too large"}}
    monkeypatch.setattr(client.w3.provider, "make_batch_request", lambda _requests: refused, raising=False)
    with pytest.raises(ChainError, match=r"refused by the node.*batch too large"):
        client.commitments_of(ids)
    one_failed = [
        {"id": 0, "result": "0x" + "00" * 32},
        {"id": 1, "error": {"code": 3, "message": "execution reverted"}},
    ]
    monkeypatch.setattr(client.w3.provider, "make_batch_request", lambda _requests: one_failed, raising=False)
    with pytest.raises(ChainError, match=r"commitment look-up failed.*execution reverted"):
        client.commitments_of(ids)
    short = [{"id": 0, "result": "0x" + "00" * 32}]
    monkeypatch.setattr(client.w3.provider, "make_batch_request", lambda _requests: short, raising=False)
    with pytest.raises(ChainError, match="answered 1 of 2"):
        client.commitments_of(ids)
