# ruff: noqa: F811 - pytest fixtures are imported by name and requested as parameters
"""Attacks by permitted roles (docs/trust-model.md): each role tries what the trust model forbids it and the
contracts refuse with the exact custom error, leaving every balance where it was.

Roles: consortium admin (``admin``, DEFAULT_ADMIN_ROLE; also the registrar in these tests), arbiter
(``arbiter``), oracle / relayer (``oracle``, ``relayer``), OEM (``oem``), supplier (``supplier``), lab
(``lab``). Each test names the finding of issue 10 it covers where it covers one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_utils import keccak
from test_cases_support import (  # noqa: F401 - fixtures
    AGREEMENT_ID,
    ANALYSIS,
    BATCH_ID,
    DAY,
    DEPOSIT,
    DISPUTE_WINDOW,
    EVIDENCE,
    LAB_FEE,
    POOL,
    T0,
    CasesEnv,
    agreements_session,
    anchor_batch,
    cases_session,
    cenv,
)

from chain.cases import CaseState, NcCode, OpenRequest, ResponsibleParty
from chain.clients import PartyKind, supplier_batch_id

ZERO = "0x" + "00" * 20
RULING = keccak(text="arbitration ruling")
ADMIN_ROLE = b"\x00" * 32
PENALTY_CRITICAL = 50_000
PENALTY_MAJOR = 20_000
ARBITRATION = 14 * DAY


def _verdict_submitted(env: CasesEnv, **changes: Any) -> tuple[bytes, bytes]:
    case_id = env.open()
    env.cases("supplier").respond(case_id, EVIDENCE)
    c = env.cases("relayer")
    v = env.verdict(case_id, **changes)
    vh = bytes(c.submit_verdict(v, c.sign_verdict(v, env.key("lab"))).event("VerdictSubmitted")["verdictHash"])
    return case_id, vh


def _balances(env: CasesEnv) -> tuple[int, int]:
    b = env.agreements().balances(AGREEMENT_ID)
    return b.deposited, b.claimable


# --------------------------------------------------------------------------- OEM


def test_malicious_oem_cannot_seize_the_deposit(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    """High finding 1: penalizePpm / recordNonConformity by the OEM alone moved the deposit."""
    oem = cenv.agreements("oem")
    with expect_revert("NotCasesContract", caller=cenv.addr("oem")):
        oem.close_case(AGREEMENT_ID, keccak(text="fake case"), 1)
    with expect_revert("NotCasesContract", caller=cenv.addr("oem")):
        oem.record_deadline_breach(AGREEMENT_ID, keccak(text="fake case"))
    with expect_revert("Unauthorized", agreementId=AGREEMENT_ID, caller=cenv.addr("oem")):
        oem.withdraw(AGREEMENT_ID, 1)
    with expect_revert("NothingToClaim", agreementId=AGREEMENT_ID):
        oem.claim(AGREEMENT_ID)
    # its own case: without a lab-signed verdict nothing moves, and it cannot settle early
    case_id = cenv.open(role="oem")
    with expect_revert("InvalidState", caseId=case_id, state=CaseState.OPENED):
        cenv.cases("oem").settle(case_id)
    assert _balances(cenv) == (DEPOSIT, 0)


def test_malicious_oem_cannot_forge_the_lab_or_the_supplier(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    cenv.cases("supplier").respond(case_id, EVIDENCE)
    c = cenv.cases("oem")
    v = cenv.verdict(case_id, nc_class=NcCode.CRITICAL)
    with expect_revert(
        "WrongSigner", party=cenv.addr("lab"), expectedSigner=cenv.addr("lab"), recovered=cenv.addr("oem")
    ):
        c.submit_verdict(v, c.sign_verdict(v, cenv.key("oem")))
    vh = bytes(c.submit_verdict(v, c.sign_verdict(v, cenv.key("lab"))).event("VerdictSubmitted")["verdictHash"])
    fake = cenv.acceptance(case_id, vh)
    with expect_revert(
        "WrongSigner", party=cenv.addr("supplier"), expectedSigner=cenv.addr("supplier"), recovered=cenv.addr("oem")
    ):
        c.submit_acceptance(fake, cenv.addr("supplier"), c.sign_acceptance(fake, cenv.key("oem")))
    assert c.case(case_id).state is CaseState.VERDICT_SUBMITTED


def test_malicious_oem_cannot_change_the_lab_alone(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    cenv.cases("supplier").respond(case_id, EVIDENCE)
    cenv.cases("oem").approve_lab(case_id, cenv.addr("lab2"))
    cenv.cases("oem").approve_lab(case_id, cenv.addr("lab2"))  # approving twice is still one party
    assert cenv.cases().case(case_id).lab == cenv.addr("lab")
    c = cenv.cases("relayer")
    v = cenv.verdict(case_id)
    with expect_revert(
        "WrongSigner", party=cenv.addr("lab"), expectedSigner=cenv.addr("lab"), recovered=cenv.addr("lab2")
    ):
        c.submit_verdict(v, c.sign_verdict(v, cenv.key("lab2")))


def test_malicious_oem_cannot_suspend_a_funded_agreement(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    """Medium finding (stale deadline): suspension needs a late flag on a still short deposit."""
    cenv.set_time(T0 + 100 * DAY)
    with expect_revert("NotFlagged", agreementId=AGREEMENT_ID):
        cenv.agreements("oem").suspend(AGREEMENT_ID)
    with expect_revert("TopUpNotLate", agreementId=AGREEMENT_ID, deadline=0, at=T0 + 100 * DAY):
        cenv.agreements("oem").flag_late_top_up(AGREEMENT_ID)


# --------------------------------------------------------------------------- supplier


def test_supplier_cannot_escape_a_pending_penalty(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    """Medium finding: dispute, terminate, withdraw after the wind-down; the penalty then settled with 0 paid.
    Now the deposit stays bound to the open case, the dispute has a deadline and the verdict then stands."""
    case_id, _vh = _verdict_submitted(cenv, nc_class=NcCode.CRITICAL)
    sup = cenv.agreements("supplier")
    cenv.cases("supplier").dispute(case_id, keccak(text="we disagree"))
    sup.terminate(AGREEMENT_ID)
    late = T0 + 60 * DAY  # the wind-down (5 + 10 + 7 days) is over, the case is not
    cenv.set_time(late)
    bal = sup.balances(AGREEMENT_ID)
    assert (bal.required, bal.bound) == (PENALTY_CRITICAL, PENALTY_CRITICAL)
    with expect_revert("ExceedsExcess", agreementId=AGREEMENT_ID, amount=DEPOSIT, excess=DEPOSIT - PENALTY_CRITICAL):
        sup.withdraw(AGREEMENT_ID, DEPOSIT)
    sup.withdraw(AGREEMENT_ID, DEPOSIT - PENALTY_CRITICAL)  # the unbound part is free
    # the arbiter stayed silent: past the arbitration deadline (T0 + 14 days) the lab's verdict stands
    settled = cenv.cases("stranger").settle(case_id).event("CaseSettled")
    assert (settled["penalized"], settled["ncClass"], settled["labFeePaid"]) == (True, NcCode.CRITICAL, LAB_FEE)
    b = sup.balances(AGREEMENT_ID)
    assert (b.deposited, b.claimable, b.bound, b.debt, b.required) == (0, PENALTY_CRITICAL, 0, 0, 0)


def test_supplier_cannot_escape_a_case_by_terminating_first(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    """Outside review: the supplier terminated before the case on a delivered lot was opened, every case was then
    refused (AgreementNotActive) and the whole deposit was withdrawn after the wind-down. Now cases open on
    already-anchored lots during the wind-down and bind the penalty beyond it."""
    second = supplier_batch_id(cenv.addr("supplier"), "qcn/batch/B-0043")
    second_header = anchor_batch(cenv.ag, second)  # a second lot delivered while the agreement was active
    sup = cenv.agreements("supplier")
    sup.terminate(AGREEMENT_ID)
    cenv.set_time(T0 + 20 * DAY)  # inside the wind-down (5 + 10 + 7 days)
    case_id = cenv.open()
    assert cenv.cases("oem").case(case_id).state == CaseState.OPENED
    cenv.set_time(T0 + 60 * DAY)  # the wind-down is over, the case is not
    bal = sup.balances(AGREEMENT_ID)
    assert (bal.required, bal.bound) == (PENALTY_CRITICAL, PENALTY_CRITICAL)
    with expect_revert("ExceedsExcess", agreementId=AGREEMENT_ID, amount=DEPOSIT, excess=DEPOSIT - PENALTY_CRITICAL):
        sup.withdraw(AGREEMENT_ID, DEPOSIT)
    # after the wind-down no new case opens on the terminated agreement
    late = OpenRequest(
        agreement_id=AGREEMENT_ID, batch_id=second, analysis_hash=ANALYSIS, evidence_hash=EVIDENCE, lab_fee=LAB_FEE
    )
    with expect_revert("AgreementNotActive", agreementId=AGREEMENT_ID, state=3):
        cenv.cases("oracle").open_case(late, second_header)


def test_supplier_cannot_forge_the_oem_or_block_with_disputes(
    cenv: CasesEnv, expect_revert: Callable[..., Any]
) -> None:
    case_id, vh = _verdict_submitted(cenv)
    c = cenv.cases("supplier")
    fake = cenv.acceptance(case_id, vh)
    with expect_revert(
        "WrongSigner", party=cenv.addr("oem"), expectedSigner=cenv.addr("oem"), recovered=cenv.addr("supplier")
    ):
        c.submit_acceptance(fake, cenv.addr("oem"), c.sign_acceptance(fake, cenv.key("supplier")))
    c.dispute(case_id, keccak(text="delay"))
    with expect_revert("InvalidState", caseId=case_id, state=CaseState.DISPUTED):
        c.dispute(case_id, keccak(text="delay again"))
    with expect_revert("Unauthorized", agreementId=AGREEMENT_ID, caller=cenv.addr("supplier")):
        cenv.agreements("supplier").claim(AGREEMENT_ID)


# --------------------------------------------------------------------------- lab


def test_malicious_lab_cannot_sign_other_cases_or_collect_an_overturned_fee(
    cenv: CasesEnv, expect_revert: Callable[..., Any]
) -> None:
    """Medium finding: the lab fee was paid even when the verdict was disputed and overturned."""
    case_id, _vh = _verdict_submitted(cenv)
    cenv.cases("supplier").dispute(case_id, keccak(text="counter analysis"))
    cenv.cases("arbiter").arbitrate(case_id, ResponsibleParty.OTHER, NcCode.NONE, keccak(text="lab error"), RULING)
    ev = cenv.cases("stranger").settle(case_id).event("CaseSettled")
    assert (ev["penalized"], ev["labFeePaid"]) == (False, 0)
    with expect_revert("NothingToClaim", account=cenv.addr("lab")):
        cenv.cases("lab").claim_lab_fee()
    assert cenv.cases().lab_fee_pool(cenv.addr("oem")) == POOL
    assert _balances(cenv) == (DEPOSIT, 0)
    with expect_revert("BatchNotPenalized", batchId=BATCH_ID):
        cenv.cases("lab").approve_reopen(BATCH_ID, keccak(text="new evidence"))
    # lab2 is accredited but not this agreement's lab: its signature is worthless here
    second = cenv.open()
    cenv.cases("supplier").respond(second, EVIDENCE)
    c = cenv.cases("lab2")
    v = cenv.verdict(second)
    with expect_revert(
        "WrongSigner", party=cenv.addr("lab"), expectedSigner=cenv.addr("lab"), recovered=cenv.addr("lab2")
    ):
        c.submit_verdict(v, c.sign_verdict(v, cenv.key("lab2")))


# --------------------------------------------------------------------------- oracle / relayer


def test_oracle_cannot_pick_lab_or_fee_or_penalise_a_batch_twice(
    cenv: CasesEnv, expect_revert: Callable[..., Any]
) -> None:
    o = cenv.cases("oracle")
    with expect_revert("LabNotOfAgreement", agreementId=AGREEMENT_ID, lab=cenv.addr("lab"), given=cenv.addr("oracle")):
        o.open_case(OpenRequest(AGREEMENT_ID, BATCH_ID, ANALYSIS, lab=cenv.addr("oracle")), cenv.header)
    with expect_revert("LabFeeAboveCap", agreementId=AGREEMENT_ID, fee=POOL, cap=5_000):
        o.open_case(OpenRequest(AGREEMENT_ID, BATCH_ID, ANALYSIS, lab_fee=POOL), cenv.header)
    plain_id = supplier_batch_id(cenv.addr("supplier"), "plain batch")
    foreign = anchor_batch(cenv.ag, plain_id, agreement_id=b"\x00" * 32)
    with expect_revert(
        "BatchNotOfAgreement",
        batchId=plain_id,
        agreementId=AGREEMENT_ID,
        supplier=cenv.addr("supplier"),
        headerAgreementId=b"\x00" * 32,
        headerSupplier=cenv.addr("supplier"),
    ):
        o.open_case(OpenRequest(AGREEMENT_ID, plain_id, ANALYSIS), foreign)
    case_id, vh = _verdict_submitted(cenv)
    cenv.cases("oem").accept(case_id, vh)
    cenv.cases("supplier").accept(case_id, vh)
    cenv.cases("oracle").settle(case_id)
    assert _balances(cenv) == (DEPOSIT - PENALTY_MAJOR, PENALTY_MAJOR)
    with expect_revert("BatchAlreadyPenalized", batchId=BATCH_ID):
        cenv.open()


# --------------------------------------------------------------------------- arbiter


def test_arbiter_is_bounded_by_state_deadline_and_the_lab_verdict(
    cenv: CasesEnv, expect_revert: Callable[..., Any]
) -> None:
    a = cenv.cases("arbiter")
    case_id, vh = _verdict_submitted(cenv, responsible_party=ResponsibleParty.OEM, nc_class=NcCode.NONE)
    with expect_revert("InvalidState", caseId=case_id, state=CaseState.VERDICT_SUBMITTED):
        a.arbitrate(case_id, ResponsibleParty.SUPPLIER, NcCode.MINOR, keccak(text="rc"), RULING)
    cenv.cases("oem").dispute(case_id, keccak(text="OEM disputes"))
    # the lab found the OEM responsible: the arbiter cannot turn that into a supplier penalty
    with expect_revert("ArbitrationExceedsVerdict", caseId=case_id, responsibleParty=ResponsibleParty.OEM, ncClass=0):
        a.arbitrate(case_id, ResponsibleParty.SUPPLIER, NcCode.CRITICAL, keccak(text="rc"), RULING)
    deadline = T0 + ARBITRATION
    cenv.set_time(deadline + 1)
    with expect_revert("DeadlinePassed", caseId=case_id, deadline=deadline, at=deadline + 1):
        a.arbitrate(case_id, ResponsibleParty.NONE, NcCode.NONE, keccak(text="rc"), RULING)
    cenv.cases("stranger").settle(case_id)
    assert _balances(cenv) == (DEPOSIT, 0)
    assert vh


# --------------------------------------------------------------------------- admin / registrar


def test_admin_cannot_make_itself_settler_arbiter_of_money_or_admin_at_once(
    cenv: CasesEnv, expect_revert: Callable[..., Any]
) -> None:
    """High finding 2: one admin key ruled everything (SETTLER_ROLE to itself, unlink enforcement...)."""
    agreements = cenv.agreements("admin")
    names = {f["name"] for f in agreements.contract.abi if f.get("type") == "function"}
    assert not names & {"grantRole", "penalizePpm", "recordNonConformity", "recordBatches"}
    with expect_revert("CasesAlreadyLinked", cases=cenv.cases_address):
        agreements.link_cases(cenv.addr("admin"))
    with expect_revert("NotCasesContract", caller=cenv.addr("admin")):
        agreements.close_case(AGREEMENT_ID, keccak(text="x"), 1)
    cases = cenv.cases("admin")
    # the admin role itself cannot be granted, only handed over after the delay
    with expect_revert("AccessControlEnforcedDefaultAdminRules"):
        cases.grant_role("DEFAULT_ADMIN_ROLE", cenv.addr("stranger"))
    scheduled = cases.begin_admin_transfer(cenv.addr("stranger"))
    assert [n for n, _ in scheduled.events] == ["DefaultAdminTransferScheduled"]
    now = int(cenv.w3.eth.get_block("latest")["timestamp"])
    with expect_revert("AccessControlEnforcedDefaultAdminDelay", schedule=now + 2 * DAY):
        cenv.cases("stranger")._tx(cenv.cases("stranger").contract.functions.acceptDefaultAdminTransfer())
    # a role grant is an event; even as arbiter the admin can only lower a lab verdict
    granted = cases.grant_role("ARBITER_ROLE", cenv.addr("admin"))
    assert [n for n, _ in granted.events] == ["RoleGranted"]
    case_id, _ = _verdict_submitted(cenv, nc_class=NcCode.MINOR)
    cenv.cases("supplier").dispute(case_id, keccak(text="no"))
    with expect_revert("ArbitrationExceedsVerdict", caseId=case_id, responsibleParty=1, ncClass=NcCode.MINOR):
        cases.arbitrate(case_id, ResponsibleParty.SUPPLIER, NcCode.CRITICAL, keccak(text="rc"), RULING)
    assert _balances(cenv) == (DEPOSIT, 0)


def test_registrar_cannot_forge_a_party_or_plant_its_lab(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    """High finding 2: the registrar rotated a party's signer and forged an accepted verdict; the admin
    registered its own lab and opened a case naming it with the OEM's whole pool as the fee."""
    parties = cenv.parties("admin")
    with expect_revert("NotPartyOrRegistrar", account=cenv.addr("supplier"), caller=cenv.addr("admin")):
        parties.set_signer(cenv.addr("supplier"), cenv.addr("admin"))
    parties.propose_signer(cenv.addr("supplier"), cenv.addr("admin"))  # announced, 7 days, cancellable
    assert cenv.parties().party(cenv.addr("supplier")).signer == cenv.addr("supplier")
    cenv.parties("supplier").cancel_signer_change(cenv.addr("supplier"))
    parties.register_party(
        cenv.addr("outsider"),
        PartyKind.LAB,
        "Admin's own lab",
        accreditation_id="D-PL-00000-01-00",
        accreditation_expiry=T0 + 400 * DAY,
    )
    with expect_revert(
        "LabNotOfAgreement", agreementId=AGREEMENT_ID, lab=cenv.addr("lab"), given=cenv.addr("outsider")
    ):
        cenv.open(role="oracle", lab=cenv.addr("outsider"))
    with expect_revert("LabFeeAboveCap", agreementId=AGREEMENT_ID, fee=POOL, cap=5_000):
        cenv.open(role="oracle", lab_fee=POOL)
    assert cenv.cases().lab_fee_pool(cenv.addr("oem")) == POOL


def test_cancelled_nonce_voids_a_signed_agreement(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    """Low finding: no way to cancel a signed but unused agreement."""
    ag = cenv.ag
    terms = ag.terms(agreement_id=keccak(text="second agreement"), deadline=T0 + 30 * DAY)
    c = ag.client("relayer")
    oem_sig, sup_sig = c.sign(terms, ag.accounts["oem"].key), c.sign(terms, ag.accounts["supplier"].key)
    cancelled = ag.client("supplier").cancel_nonce().event("NonceCancelled")
    assert (cancelled["party"], cancelled["nonce"]) == (ag.addr("supplier"), terms.supplier_nonce)
    with expect_revert(
        "InvalidNonce", party=ag.addr("supplier"), expected=terms.supplier_nonce + 1, given=terms.supplier_nonce
    ):
        c.activate(terms, oem_sig, sup_sig)


def test_template_windows_have_minimums(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    """Low finding: zero-length response / verdict / dispute / top-up windows were accepted."""
    from dataclasses import replace

    from chain.agreements import TemplateField

    oem = cenv.agreements("oem")
    for name, field in (
        ("supplier_response_seconds", TemplateField.SUPPLIER_RESPONSE_SECONDS),
        ("lab_verdict_seconds", TemplateField.LAB_VERDICT_SECONDS),
        ("dispute_window_seconds", TemplateField.DISPUTE_WINDOW_SECONDS),
        ("top_up_grace_seconds", TemplateField.TOP_UP_GRACE_SECONDS),
    ):
        bad = replace(cenv.ag.template, version=9, **{name: 0})
        with expect_revert("InvalidTemplateField", templateId=bad.template_id, field=field, value=0):
            oem.publish_template(bad)
    assert DISPUTE_WINDOW >= 3600
