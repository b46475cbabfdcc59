"""Anchoring under an agreement counts the batches in the agreement registry in the same transaction:
exactly once, refused for a suspended/terminated or foreign agreement, with rejected batches counted."""

from __future__ import annotations

import test_agreements_support as support
from eth_utils import keccak
from test_agreements_support import AGREEMENT_ID, AgreementEnv

from chain.agreements import QuarterCounters
from chain.clients import BatchIn
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
        batch_id=keccak(text=f"batch:{name}"),
        supplier=env.addr(supplier),
        root=keccak(text=f"root:{name}"),
        record_count=10,
        verdict=verdict,
        agreement_id=AGREEMENT_ID,
    )


def test_anchor_many_under_an_agreement_counts_batches_and_rejections_once(active: AgreementEnv, expect_revert) -> None:
    _link(active)
    anchors = active.chain.anchors("supplier")
    anchors.anchor_many([_batch(active, "a", 1), _batch(active, "b", 2), _batch(active, "c", 1)])
    first = anchors.anchor(_batch(active, "d", 2))
    assert active.client().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters(batches=4, rejected=2)
    # a failed anchor (duplicate) counts nothing
    with expect_revert("AlreadyAnchored", batchId=first.batch_id, existingCommitment=first.commitment):
        anchors.anchor(_batch(active, "d", 2))
    assert active.client().quarter_counters(AGREEMENT_ID, 0).batches == 4


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
