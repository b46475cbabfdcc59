# ruff: noqa: F811 - pytest fixtures are imported by name and requested as parameters
"""The gas-budget entry points: ``anchorSimplePacked`` (one batch <= 50k), the registry's one-slot
``signerFor`` view and the 64-byte (ERC-2098) signatures TracingCases accepts (3-signature finalization)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak
from test_cases_support import (  # noqa: F401 - fixtures
    CasesEnv,
    agreements_session,
    cases_session,
    cenv,
)

from chain.cases import CaseState, compact_signature
from chain.clients import ZERO32, BatchHeader, BatchIn, PartyKind, header_commitment, supplier_batch_id
from chain.errors import ContractRevert

T0 = 1_767_225_600


def _batch(chain: Any, label: str, *, supplier: str = "supplier", **overrides: Any) -> BatchIn:
    fields: dict[str, Any] = {
        "batch_id": supplier_batch_id(chain.addr(supplier), f"simple:{label}"),
        "supplier": chain.addr(supplier),
        "root": keccak(text=f"simple-root:{label}"),
        "report_hash": keccak(text=f"simple-report:{label}"),
        "record_count": 1000,
        "verdict": 2,
    }
    fields.update(overrides)
    return BatchIn(**fields)


@pytest.mark.parametrize("role", ["supplier", "relayer"])
def test_simple_anchor_stores_the_same_commitment_and_decodes(chain: Any, role: str) -> None:
    chain.set_time(T0)
    if role == "relayer":
        chain.parties().approve_relayer(chain.addr("supplier"), chain.addr("relayer"))
    batch = _batch(chain, role)
    receipt = chain.anchors(role).anchor(batch)  # no agreement: anchorSimplePacked
    expected = BatchHeader(
        root=batch.root,
        report_hash=batch.report_hash,
        agreement_id=ZERO32,
        supplier=chain.addr("supplier"),
        record_count=1000,
        verdict=2,
        anchored_at=T0,
        supersedes=ZERO32,
    )
    assert receipt.header == expected
    assert chain.anchors().commitment_of(batch.batch_id) == header_commitment(expected) == receipt.commitment
    tx = chain.w3.eth.get_transaction(receipt.tx_hash)
    assert bytes(tx["input"][:4]).hex() == "016ae213"  # the lean entry, first in the dispatcher
    (event,) = chain.anchors().anchored_events(receipt.block_number, receipt.block_number)
    assert (event.batch_id, event.header, event.is_correction) == (batch.batch_id, expected, False)
    logs = chain.w3.eth.get_transaction_receipt(receipt.tx_hash)["logs"]
    assert bytes(logs[0]["topics"][0]) == keccak(text="BatchAnchoredSimple(bytes32,bytes32,bytes32,uint256)")
    assert len(bytes(logs[0]["data"])) == 96  # no agreementId word
    assert chain.anchors().event_of(batch.batch_id) == event


def test_simple_anchor_errors_match_anchor(chain: Any, expect_revert: Callable[..., Any]) -> None:
    anchors = chain.anchors("supplier")
    cases = [
        ({"root": ZERO32}, "EmptyRoot", lambda b: {"batchId": b.batch_id}),
        ({"record_count": 0}, "ZeroRecordCount", lambda b: {"batchId": b.batch_id}),
        ({"verdict": 3}, "InvalidVerdict", lambda b: {"batchId": b.batch_id, "verdict": 3}),
        ({"batch_id": ZERO32}, "ZeroBatchId", lambda b: {}),
    ]
    for overrides, error, args in cases:
        bad = _batch(chain, f"bad-{error}", **overrides)
        with expect_revert(error, **args(bad)):
            anchors.anchor(bad)
    first = anchors.anchor(_batch(chain, "dup"))
    with expect_revert("AlreadyAnchored", batchId=first.batch_id, existingCommitment=first.commitment):
        anchors.anchor(_batch(chain, "dup", root=keccak(text="other root")))
    with expect_revert("NotAuthorisedFor", supplier=chain.addr("supplier"), caller=chain.addr("stranger")):
        chain.anchors("stranger").anchor(_batch(chain, "stranger"))
    with expect_revert("NotSupplier", account=chain.addr("oem")):
        chain.anchors("oem").anchor(_batch(chain, "oem", supplier="oem"))
    # bits above the verdict are refused by their own error (the client never sets them)
    packed = _batch(chain, "high").packed_request() | (1 << 200)
    high = supplier_batch_id(chain.addr("supplier"), "high")
    call = anchors.contract.functions.anchorSimplePacked(high, keccak(text="r"), ZERO32, packed)
    with expect_revert("MalformedPackedRequest", packed=packed):
        chain.sender("supplier").send(call)
    assert chain.anchors().commitment_of(high) is None
    # an id bound to another supplier is refused on the simple path too, for the supplier and for itself (own)
    theirs = _batch(chain, "theirs", batch_id=supplier_batch_id(chain.addr("supplier2"), "theirs"))
    with expect_revert("ForeignBatchId", batchId=theirs.batch_id, supplier=chain.addr("supplier")):
        anchors.anchor(theirs)
    own = anchors.contract.functions.anchorSimplePacked(theirs.batch_id, theirs.root, ZERO32,
                                                         theirs.packed_request(own=True))  # fmt: skip
    with expect_revert("ForeignBatchId", batchId=theirs.batch_id, supplier=chain.addr("supplier")):
        chain.sender("supplier").send(own)
    assert chain.anchors().commitment_of(theirs.batch_id) is None


def test_packed_request_layout(chain: Any) -> None:
    batch = _batch(chain, "layout", record_count=7, verdict=1)
    supplier = int(chain.addr("supplier"), 16)
    assert batch.packed_request() == supplier | 7 << 160 | 1 << 192
    assert batch.packed_request(own=True) == 7 << 160 | 1 << 192


def test_signer_for_reads_the_first_party_word(chain: Any) -> None:
    chain.set_time(T0)
    lab = Account.create().address
    signer = Account.create().address
    parties = chain.parties()
    parties.register_party(
        lab, PartyKind.LAB, "Lab X", signer=signer, accreditation_id="D-PL-1", accreditation_expiry=T0 + 9
    )
    kind, active, expiry, current = parties.contract.functions.signerFor(lab).call()
    assert (kind, active, expiry, current) == (PartyKind.LAB, True, T0 + 9, signer)
    parties.deactivate(lab)
    assert parties.contract.functions.signerFor(lab).call()[:2] == [PartyKind.LAB, False]
    assert parties.contract.functions.signerFor(Account.create().address).call() == [0, False, 0, "0x" + "00" * 20]


def test_compact_signature_form() -> None:
    key = keccak(text="compact-key")
    digest = keccak(text="digest")
    sig = bytes(Account.unsafe_sign_hash(digest, key).signature)
    short = compact_signature(sig)
    assert len(short) == 64 and short[:32] == sig[:32]
    s, v = int.from_bytes(short[32:], "big") & ((1 << 255) - 1), (short[32] >> 7) + 27
    assert (s.to_bytes(32, "big"), v) == (sig[32:64], sig[64])
    assert compact_signature(b"\x01" * 70) == b"\x01" * 70  # not an ECDSA signature: unchanged
    high_s = sig[:32] + b"\xff" * 32 + sig[64:]
    assert compact_signature(high_s) == high_s  # the contract judges (and rejects) it as given


def test_verdict_accepts_a_64_byte_signature(cenv: CasesEnv) -> None:
    case_id = cenv.open()
    cenv.cases("supplier").respond(case_id, keccak(text="evidence"))
    c = cenv.cases("relayer")
    v = cenv.verdict(case_id)
    short = compact_signature(c.sign_verdict(v, cenv.key("lab")))
    assert len(short) == 64
    bad = short[:32] + (int.from_bytes(short[32:], "big") ^ (1 << 255)).to_bytes(32, "big")  # flipped v
    with pytest.raises(ContractRevert) as exc:
        c.submit_verdict(v, bad)
    assert exc.value.name == "WrongSigner"
    assert exc.value.arguments["party"] == exc.value.arguments["expectedSigner"] == cenv.addr("lab")
    sent = c.submit_verdict(v, short)
    assert bytes(sent.event("VerdictSubmitted")["verdictHash"]) == c.verdict_hash(v)
    assert c.case(case_id).state == CaseState.VERDICT_SUBMITTED
