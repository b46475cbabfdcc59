# ruff: noqa: F811 - pytest fixtures are imported by name and requested as parameters
"""Tracing cases: disputes and arbitration, a silent lab (breach, re-assignment, stale signatures), the OEM's
lab-fee pool, and a hostile token / receiver that tries to re-enter claims and settlement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account import Account
from eth_utils import keccak
from test_agreements_support import default_template
from test_cases_support import (  # noqa: F401 - fixtures
    AGREEMENT_ID,
    ANALYSIS,
    BATCH_ID,
    DAY,
    DEPOSIT,
    DISPUTE_WINDOW,
    EVIDENCE,
    LAB_FEE,
    LAB_VERDICT,
    POOL,
    T0,
    CasesEnv,
    agreements_session,
    anchor_batch,
    cases_session,
    cenv,
)

from chain.agreements import AgreementRegistryClient, AgreementTerms, QuarterCounters
from chain.cases import CaseState, NcCode, OpenRequest, ResponsibleParty, TracingCasesClient
from chain.clients import PartyKind, supplier_batch_id
from chain.contracts import contract_at, load_artifact
from chain.errors import decode_revert

RULING = keccak(text="arbitration ruling #7")
PENALTY_MINOR = 5_000


def _to_verdict(env: CasesEnv, case_id: bytes, **changes: Any) -> bytes:
    env.cases("supplier").respond(case_id, EVIDENCE)
    c = env.cases("relayer")
    v = env.verdict(case_id, **changes)
    return bytes(c.submit_verdict(v, c.sign_verdict(v, env.key("lab"))).event("VerdictSubmitted")["verdictHash"])


# --------------------------------------------------------------------------- dispute + arbitration


def test_dispute_then_arbitration_settles_the_ruling(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    vh = _to_verdict(cenv, case_id)  # lab: supplier fault, major
    cenv.cases("oem").accept(case_id, vh)
    with expect_revert("NotCaseParty", caseId=case_id, caller=cenv.addr("stranger")):
        cenv.cases("stranger").dispute(case_id, EVIDENCE)
    with expect_revert("AlreadyAccepted", caseId=case_id, party=cenv.addr("oem")):
        cenv.cases("oem").dispute(case_id, EVIDENCE)
    counter = keccak(text="supplier counter-analysis")
    ev = cenv.cases("supplier").dispute(case_id, counter).event("VerdictDisputed")
    assert (ev["party"], bytes(ev["evidenceHash"]), bytes(ev["verdictHash"])) == (cenv.addr("supplier"), counter, vh)
    assert cenv.cases().case(case_id).state is CaseState.DISPUTED
    arbitration_deadline = T0 + 14 * DAY
    assert ev["arbitrationDeadline"] == arbitration_deadline
    with expect_revert("DeadlineNotPassed", caseId=case_id, deadline=arbitration_deadline, at=T0):
        cenv.cases("stranger").settle(case_id)
    role = cenv.cases().role("ARBITER_ROLE")
    with expect_revert("AccessControlUnauthorizedAccount", account=cenv.addr("oem"), neededRole=role):
        cenv.cases("oem").arbitrate(case_id, ResponsibleParty.SUPPLIER, NcCode.MINOR, keccak(text="rc"), RULING)
    # the consortium admin is not the arbiter (separate keys)
    with expect_revert("AccessControlUnauthorizedAccount", account=cenv.addr("admin"), neededRole=role):
        cenv.cases("admin").arbitrate(case_id, ResponsibleParty.SUPPLIER, NcCode.MINOR, keccak(text="rc"), RULING)
    with expect_revert("MissingRulingHash", caseId=case_id):
        cenv.cases("arbiter").arbitrate(case_id, 1, 3, keccak(text="rc"), b"\x00" * 32)
    with expect_revert("InvalidVerdictFields", caseId=case_id, responsibleParty=1, ncClass=0):
        cenv.cases("arbiter").arbitrate(case_id, 1, 0, keccak(text="rc"), RULING)
    # never harsher than the lab's verdict (major): critical is refused
    with expect_revert("ArbitrationExceedsVerdict", caseId=case_id, responsibleParty=1, ncClass=NcCode.MAJOR):
        cenv.cases("arbiter").arbitrate(case_id, 1, NcCode.CRITICAL, keccak(text="rc"), RULING)
    arb = cenv.cases("arbiter").arbitrate(case_id, ResponsibleParty.SUPPLIER, NcCode.MINOR, keccak(text="rc"), RULING)
    ev = arb.event("CaseArbitrated")
    assert (ev["responsibleParty"], ev["ncClass"], bytes(ev["rulingHash"]), ev["upheld"], ev["arbiter"]) == (
        1,
        3,
        RULING,
        False,
        cenv.addr("arbiter"),
    )
    case = cenv.cases().case(case_id)
    assert (case.state, case.nc_class) == (CaseState.ARBITRATED, NcCode.MINOR)
    settled = cenv.cases("stranger").settle(case_id).event("CaseSettled")
    # lab-fee outcome rule: a lowered verdict does not stand, the fee returns to the OEM's pool
    assert (settled["penalized"], settled["ncClass"], settled["labFeePaid"]) == (True, 3, 0)
    assert cenv.cases().lab_fee_pool(cenv.addr("oem")) == POOL
    bal = cenv.agreements().balances(AGREEMENT_ID)
    assert (bal.deposited, bal.claimable) == (DEPOSIT - PENALTY_MINOR, PENALTY_MINOR)
    assert cenv.agreements().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters(nc_minor=1)


def test_signed_dispute_and_late_dispute(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    vh = _to_verdict(cenv, case_id)
    late = T0 + DISPUTE_WINDOW + 1
    cenv.set_time(late)
    with expect_revert("DeadlinePassed", caseId=case_id, deadline=T0 + DISPUTE_WINDOW, at=late):
        cenv.cases("supplier").dispute(case_id, EVIDENCE)
    cenv.set_time(T0 + DAY)
    c = cenv.cases("relayer")
    no = cenv.acceptance(case_id, vh, accept=False)
    ev = c.submit_acceptance(no, cenv.addr("supplier"), c.sign_acceptance(no, cenv.key("supplier")))
    assert ev.event("VerdictDisputed")["party"] == cenv.addr("supplier")
    assert c.case(case_id).state is CaseState.DISPUTED


def test_arbiter_clears_supplier_and_nothing_moves(cenv: CasesEnv) -> None:
    case_id = cenv.open()
    _to_verdict(cenv, case_id)
    cenv.cases("supplier").dispute(case_id, EVIDENCE)
    cenv.cases("arbiter").arbitrate(case_id, ResponsibleParty.OEM, NcCode.MAJOR, keccak(text="drawing error"), RULING)
    ev = cenv.cases("stranger").settle(case_id).event("CaseSettled")
    assert (ev["penalized"], ev["responsibleParty"]) == (False, ResponsibleParty.OEM)
    bal = cenv.agreements().balances(AGREEMENT_ID)
    assert (bal.deposited, bal.claimable) == (DEPOSIT, 0)
    assert cenv.agreements().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters()


# --------------------------------------------------------------------------- silent lab


def test_silent_lab_breach_reassignment_and_stale_signature(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    cenv.cases("supplier").respond(case_id, EVIDENCE)
    c = cenv.cases("relayer")
    old = cenv.verdict(case_id)
    old_sig = c.sign_verdict(old, cenv.key("lab"))
    with expect_revert("DeadlineNotPassed", caseId=case_id, deadline=T0 + LAB_VERDICT, at=T0):
        c.mark_lab_deadline_missed(case_id)
    late = T0 + LAB_VERDICT + 1
    cenv.set_time(late)
    ev = c.mark_lab_deadline_missed(case_id).event("LabDeadlineMissed")
    assert (ev["lab"], ev["deadline"], ev["breaches"]) == (cenv.addr("lab"), T0 + LAB_VERDICT, 1)
    assert c.lab_breaches(cenv.addr("lab")) == 1
    with expect_revert("LabBreachAlreadyRecorded", caseId=case_id, round=0):
        c.mark_lab_deadline_missed(case_id)
    # the supplier's quarter is not charged for the lab's silence
    assert cenv.agreements().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters()
    # the lab changes only when OEM and supplier both approved the same accredited lab
    with expect_revert("NotCaseParty", caseId=case_id, caller=cenv.addr("admin")):
        cenv.cases("admin").approve_lab(case_id, cenv.addr("lab2"))
    with expect_revert("NotActiveLab", lab=cenv.addr("supplier2")):
        cenv.cases("oem").approve_lab(case_id, cenv.addr("supplier2"))
    first = cenv.cases("oem").approve_lab(case_id, cenv.addr("lab2"))
    assert [n for n, _ in first.events] == ["LabChangeApproved"]
    assert c.case(case_id).lab == cenv.addr("lab")
    moved = cenv.cases("supplier").approve_lab(case_id, cenv.addr("lab2")).event("LabReassigned")
    assert (moved["previousLab"], moved["newLab"], moved["round"], moved["labDeadline"]) == (
        cenv.addr("lab"),
        cenv.addr("lab2"),
        1,
        late + LAB_VERDICT,
    )
    case = c.case(case_id)
    assert (case.lab, case.round, case.lab_deadline_missed) == (cenv.addr("lab2"), 1, False)
    # the old lab's round-0 signature is void now
    with expect_revert("InvalidNonce", caseId=case_id, expected=0 + 1, given=0):
        c.submit_verdict(old, old_sig)
    new = cenv.verdict(case_id, nonce=1)
    with expect_revert(
        "WrongSigner", party=cenv.addr("lab2"), expectedSigner=cenv.addr("lab2"), recovered=cenv.addr("lab")
    ):
        c.submit_verdict(new, c.sign_verdict(new, cenv.key("lab")))
    vh = bytes(c.submit_verdict(new, c.sign_verdict(new, cenv.key("lab2"))).event("VerdictSubmitted")["verdictHash"])
    cenv.cases("oem").accept(case_id, vh)
    cenv.cases("supplier").accept(case_id, vh)
    ev = c.settle(case_id).event("CaseSettled")
    assert (ev["lab"], ev["labFeePaid"]) == (cenv.addr("lab2"), LAB_FEE)
    assert c.lab_fee_claimable(cenv.addr("lab2")) == LAB_FEE
    assert c.lab_fee_claimable(cenv.addr("lab")) == 0


def test_silent_lab_times_out_without_penalty_and_refunds_the_fee(
    cenv: CasesEnv, expect_revert: Callable[..., Any]
) -> None:
    """Low finding: no timeout for a lab that never answers (and the arbiter could rule without a verdict)."""
    case_id = cenv.open()
    cenv.cases("supplier").respond(case_id, EVIDENCE)
    with expect_revert("InvalidState", caseId=case_id, state=CaseState.SUPPLIER_RESPONDED):
        cenv.cases("arbiter").arbitrate(case_id, 1, 1, keccak(text="no verdict"), RULING)
    assert cenv.agreements().balances(AGREEMENT_ID).bound == 50_000  # the critical penalty, while open
    closes = T0 + 2 * LAB_VERDICT
    cenv.set_time(closes)
    with expect_revert("DeadlineNotPassed", caseId=case_id, deadline=closes, at=closes):
        cenv.cases("stranger").settle(case_id)
    cenv.set_time(closes + 1)
    ev = cenv.cases("stranger").settle(case_id).event("CaseSettled")
    assert (ev["penalized"], ev["labFeePaid"]) == (False, 0)
    assert cenv.cases().lab_fee_pool(cenv.addr("oem")) == POOL
    assert cenv.cases().lab_fee_claimable(cenv.addr("lab")) == 0
    bal = cenv.agreements().balances(AGREEMENT_ID)
    assert (bal.deposited, bal.claimable, bal.bound) == (DEPOSIT, 0, 0)


# --------------------------------------------------------------------------- lab-fee pool


def test_oem_withdraws_only_unreserved_fees(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    cenv.open()
    available = POOL - LAB_FEE
    with expect_revert("ExceedsPool", oem=cenv.addr("oem"), amount=available + 1, available=available):
        cenv.cases("oem").withdraw_lab_fees(available + 1)
    with expect_revert("ZeroAmount"):
        cenv.cases("oem").withdraw_lab_fees(0)
    before = cenv.token_balance(cenv.addr("oem"))
    ev = cenv.cases("oem").withdraw_lab_fees(available).event("LabFeesWithdrawn")
    assert (ev["amount"], ev["available"]) == (available, 0)
    assert cenv.token_balance(cenv.addr("oem")) == before + available
    assert cenv.token_balance(cenv.cases_address) == LAB_FEE  # the reserved fee stays for the lab


# --------------------------------------------------------------------------- hostile token / receiver


def _hostile_world(cenv: CasesEnv) -> dict[str, Any]:
    """A second agreement whose settlement token calls receiving contracts, with a contract account as lab."""
    ag = cenv.ag
    admin = ag.sender("admin")
    from chain.agreements import deploy_contract

    token_addr = deploy_contract(admin, "TracingHostileToken")
    token = contract_at(cenv.w3, "TracingHostileToken", token_addr)
    lab_addr = deploy_contract(admin, "TracingReentrantParty")
    lab = contract_at(cenv.w3, "TracingReentrantParty", lab_addr)
    signer = Account.from_key(cenv.key("signer2"))
    cenv.parties("admin").register_party(
        lab_addr,
        PartyKind.LAB,
        "Hostile Lab",
        signer=signer.address,
        accreditation_id="D-PL-66666-01-00",
        accreditation_expiry=T0 + 400 * DAY,
    )
    agreements = AgreementRegistryClient.deploy(
        admin, party_registry=ag.chain.deployment.registry, token=token_addr, harness=True
    )
    agreements.set_time(T0)
    agreements.with_sender(ag.sender("oem")).publish_template(default_template())
    agreement_id = keccak(text="qcn/agreement/hostile")
    terms = AgreementTerms(
        agreement_id=agreement_id,
        template_id=default_template().template_id,
        template_version=1,
        oem=cenv.addr("oem"),
        supplier=cenv.addr("supplier"),
        lab=lab_addr,
        oem_nonce=0,
        supplier_nonce=0,
        deadline=T0 + DAY,
    )
    agreements.activate(terms, agreements.sign(terms, cenv.key("oem")), agreements.sign(terms, cenv.key("supplier")))
    sup = ag.sender("supplier")
    sup.send(token.functions.mint(cenv.addr("supplier"), DEPOSIT))
    sup.send(token.functions.approve(agreements.address, DEPOSIT))
    agreements.with_sender(sup).deposit(agreement_id, DEPOSIT)
    batch_id = supplier_batch_id(cenv.addr("supplier"), "qcn/batch/hostile")
    header = anchor_batch(ag, batch_id, agreement_id=agreement_id)
    cases = TracingCasesClient.deploy(
        admin,
        party_registry=ag.chain.deployment.registry,
        anchor_registry=ag.chain.deployment.registry,
        agreement_registry=agreements.address,
        harness=True,
    )
    cases.set_time(T0)
    agreements.link_cases(cases.address)
    oem = ag.sender("oem")
    oem.send(token.functions.mint(cenv.addr("oem"), POOL))
    oem.send(token.functions.approve(cases.address, POOL))
    as_oem = cases.with_sender(oem)
    as_oem.fund_lab_fees(cenv.addr("oem"), POOL)
    case_id = bytes(
        as_oem.open_case(OpenRequest(agreement_id, batch_id, ANALYSIS, lab_fee=LAB_FEE), header).event("CaseOpened")[
            "caseId"
        ]
    )
    cases.with_sender(sup).respond(case_id, EVIDENCE)
    relayer = cases.with_sender(ag.sender("relayer"))
    v = cenv.verdict(case_id, batch_id=batch_id)
    vh = bytes(relayer.submit_verdict(v, relayer.sign_verdict(v, signer.key)).event("VerdictSubmitted")["verdictHash"])
    as_oem.accept(case_id, vh)
    cases.with_sender(sup).accept(case_id, vh)
    relayer.settle(case_id)
    return {"token": token, "lab": lab, "cases": cases, "case_id": case_id, "agreements": agreements}


def test_hostile_receiver_cannot_claim_twice_or_resettle(cenv: CasesEnv) -> None:
    w = _hostile_world(cenv)
    cases, lab, token, case_id = w["cases"], w["lab"], w["token"], w["case_id"]
    assert cases.lab_fee_claimable(lab.address) == LAB_FEE
    abi_target = cenv.w3.eth.contract(abi=load_artifact("TracingCases").abi)
    claim_data = abi_target.encode_abi("claimLabFee", [])
    settle_data = abi_target.encode_abi("settle", [case_id])
    relayer = cenv.ag.sender("relayer")
    escrow_before = int(token.functions.balanceOf(cases.address).call())

    relayer.send(lab.functions.arm(cases.address, claim_data))
    # fixed gas: the token's hook is try/catch, so an estimate could starve the re-entry and hide it
    relayer.send(lab.functions.execute(cases.address, claim_data), gas=1_000_000)  # no estimate: see below
    attempts, ok, returned = lab.functions.lastReentry().call()
    assert (attempts, ok) == (1, False)
    err = decode_revert(bytes(returned))
    assert err.name == "ReentrancyGuardReentrantCall"  # type: ignore[attr-defined]
    assert int(token.functions.balanceOf(lab.address).call()) == LAB_FEE
    assert int(token.functions.balanceOf(cases.address).call()) == escrow_before - LAB_FEE
    assert cases.lab_fee_claimable(lab.address) == 0

    # a second armed attempt through settle: the case is settled once, nothing moves
    bal_before = w["agreements"].balances(keccak(text="qcn/agreement/hostile"))
    relayer.send(lab.functions.arm(cases.address, settle_data))
    relayer.send(token.functions.mint(relayer.address, 1))
    relayer.send(token.functions.transfer(lab.address, 1), gas=1_000_000)  # the hook runs outside any guard
    attempts, ok, returned = lab.functions.lastReentry().call()
    assert (attempts, ok) == (2, False)
    err = decode_revert(bytes(returned))
    assert (err.name, err.arguments) == (  # type: ignore[attr-defined]
        "InvalidState",
        {"caseId": case_id, "state": CaseState.SETTLED},
    )
    assert w["agreements"].balances(keccak(text="qcn/agreement/hostile")) == bal_before
    assert int(token.functions.balanceOf(cases.address).call()) == escrow_before - LAB_FEE
