"""Anchoring under an agreement is checked against the agreement registry (refused for a suspended or
terminated or foreign agreement); the quality-score counts come from the OEM's incoming inspections, once
per batch, never from the supplier's own anchors; corrections are checked and counted; the link is once."""

from __future__ import annotations

import test_agreements_support as support
from eth_utils import keccak
from test_agreements_support import AGREEMENT_ID, AgreementEnv

from chain.agreements import QuarterCounters
from chain.clients import BatchIn, supplier_batch_id
from chain.contracts import contract_at

# shared fixtures (pytest finds them as module attributes)
active = support.active
agreements_session = support.agreements_session
env = support.env


def _link(env: AgreementEnv) -> None:
    registry = contract_at(env.w3, "ConsortiumRegistryHarness", env.chain.deployment.registry)
    env.chain.sender("admin").send(registry.functions.linkAgreementRegistry(env.registry_address))
    assert registry.functions.agreementRegistry().call() == env.registry_address


def _batch(env: AgreementEnv, name: str, verdict: int, supplier: str = "supplier") -> BatchIn:
    return BatchIn(
        batch_id=supplier_batch_id(env.addr(supplier), f"batch:{name}"),
        supplier=env.addr(supplier),
        root=keccak(text=f"root:{name}"),
        record_count=10,
        verdict=verdict,
        agreement_id=AGREEMENT_ID,
    )


def test_supplier_anchors_do_not_count_only_oem_inspections_do(active: AgreementEnv, expect_revert) -> None:
    """Medium finding: batch counts and the rejected flag were self-declared by the supplier (padding lowers
    its ratio for free). Now anchors count nothing; the OEM's inspection of an anchored batch counts once."""
    _link(active)
    anchors = active.chain.anchors("supplier")
    receipts = anchors.anchor_many([_batch(active, "a", 1), _batch(active, "b", 1), _batch(active, "c", 1)])
    padded = anchors.anchor_many([_batch(active, f"pad{i}", 1) for i in range(5)])
    assert padded and active.client().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters()
    oem = active.client("oem")
    oem.record_inspection(AGREEMENT_ID, receipts[0].batch_id, receipts[0].header, accepted=True)
    result = oem.record_inspection(AGREEMENT_ID, receipts[1].batch_id, receipts[1].header, accepted=False)
    ev = result.event("InspectionRecorded")
    assert (ev["batchId"], ev["quarter"], ev["accepted"], ev["by"]) == (
        receipts[1].batch_id, 0, False, active.addr("oem"))  # fmt: skip
    assert active.client().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters(batches=2, rejected=1)
    with expect_revert("AlreadyInspected", batchId=receipts[1].batch_id):
        oem.record_inspection(AGREEMENT_ID, receipts[1].batch_id, receipts[1].header, accepted=True)
    with expect_revert("Unauthorized", agreementId=AGREEMENT_ID, caller=active.addr("supplier")):
        active.client("supplier").record_inspection(
            AGREEMENT_ID, receipts[2].batch_id, receipts[2].header, accepted=True
        )
    forged = receipts[2].header.model_copy(update={"record_count": 999})
    with expect_revert("NotABatchOfAgreement", agreementId=AGREEMENT_ID, batchId=receipts[2].batch_id):
        oem.record_inspection(AGREEMENT_ID, receipts[2].batch_id, forged, accepted=False)
    assert active.client().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters(batches=2, rejected=1)


def test_the_agreement_link_is_once_and_cannot_be_switched_off(active: AgreementEnv, expect_revert) -> None:
    """High finding (part): linkAgreementRegistry(0) switched enforcement off."""
    _link(active)
    registry = contract_at(active.w3, "ConsortiumRegistryHarness", active.chain.deployment.registry)
    admin = active.chain.sender("admin")
    with expect_revert("InvalidAccount", account="0x" + "00" * 20):
        admin.send(registry.functions.linkAgreementRegistry("0x" + "00" * 20))
    with expect_revert("AgreementRegistryAlreadyLinked", registry=active.registry_address):
        admin.send(registry.functions.linkAgreementRegistry(active.addr("stranger")))


def test_corrections_are_checked_and_counted(active: AgreementEnv, expect_revert) -> None:
    """Low finding: anchorCorrection skipped agreement enforcement and counting."""
    _link(active)
    anchors = active.chain.anchors("supplier")
    original = anchors.anchor(_batch(active, "orig", 1))
    fix = _batch(active, "fix", 1)
    corrected = anchors.anchor_correction(fix, original.batch_id, original.header)
    assert corrected.header.supersedes == original.batch_id
    assert active.client().corrections(AGREEMENT_ID, 0) == 1
    active.client("oem").terminate(AGREEMENT_ID)
    with expect_revert("AgreementNotActive", agreementId=AGREEMENT_ID, state=3):
        anchors.anchor_correction(_batch(active, "fix2", 1), original.batch_id, original.header)
    assert active.client().corrections(AGREEMENT_ID, 0) == 1


def test_anchor_for_a_suspended_or_foreign_agreement_is_refused_with_nothing_stored(
    active: AgreementEnv, expect_revert
) -> None:
    _link(active)
    foreign = _batch(active, "x", 1, supplier="supplier2")
    with expect_revert("SupplierMismatch", agreementId=AGREEMENT_ID, expected=active.addr("supplier"),
                       given=active.addr("supplier2")):  # fmt: skip
        active.chain.anchors("supplier2").anchor(foreign)
    assert active.chain.anchors().commitment_of(foreign.batch_id) is None
    active.client("oem").terminate(AGREEMENT_ID)
    late = _batch(active, "late", 1)
    with expect_revert("AgreementNotActive", agreementId=AGREEMENT_ID, state=3):
        active.chain.anchors("supplier").anchor_many([late])
    assert active.chain.anchors().commitment_of(late.batch_id) is None


def test_without_a_linked_registry_agreement_ids_are_recorded_not_enforced(active: AgreementEnv) -> None:
    receipt = active.chain.anchors("supplier").anchor(_batch(active, "plain", 1))
    assert receipt.header.agreement_id == AGREEMENT_ID
    assert active.client().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters()
