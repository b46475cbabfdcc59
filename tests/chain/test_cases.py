# ruff: noqa: F811 - pytest fixtures are imported by name and requested as parameters
"""Tracing cases on chain: opening, supplier stage, lab-signed verdicts, acceptance, settlement with balances
and counters (against the real agreement registry + escrow)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account import Account
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
    LAB_VERDICT,
    POOL,
    ROOT_CAUSE,
    SUPPLIER_RESPONSE,
    T0,
    CasesEnv,
    agreements_session,
    anchor_batch,
    cases_session,
    cenv,
)

from chain.agreements import NcClass, QuarterCounters
from chain.cases import (
    CaseState,
    NcCode,
    OpenRequest,
    ResponsibleParty,
    acceptance_digest,
    case_id_for,
    verdict_digest,
)
from chain.clients import header_commitment, supplier_batch_id

PENALTY_MAJOR = 20_000


def _respond(env: CasesEnv, case_id: bytes) -> None:
    env.cases("supplier").respond(case_id, EVIDENCE)


def _submit(env: CasesEnv, case_id: bytes, **changes: Any) -> bytes:
    c = env.cases("relayer")
    v = env.verdict(case_id, **changes)
    result = c.submit_verdict(v, c.sign_verdict(v, env.key("lab")))
    return bytes(result.event("VerdictSubmitted")["verdictHash"])


# --------------------------------------------------------------------------- opening


def test_open_case_records_deadlines_parties_and_reserves_lab_fee(cenv: CasesEnv) -> None:
    c = cenv.cases("oracle")
    expected_id = case_id_for(BATCH_ID, 0)
    assert c.next_case_id(BATCH_ID) == expected_id
    result = c.open_case(OpenRequest(AGREEMENT_ID, BATCH_ID, ANALYSIS, EVIDENCE, lab_fee=LAB_FEE), cenv.header)
    ev = result.event("CaseOpened")
    assert bytes(ev["caseId"]) == expected_id
    assert ev["supplier"] == cenv.addr("supplier")
    assert ev["lab"] == cenv.addr("lab")  # the agreement's lab
    assert ev["supplierDeadline"] == T0 + SUPPLIER_RESPONSE
    assert ev["openedBy"] == cenv.addr("oracle")
    assert ev["seq"] == 0
    case = c.case(expected_id)
    assert case.state is CaseState.OPENED
    assert (case.oem, case.supplier, case.lab) == (cenv.addr("oem"), cenv.addr("supplier"), cenv.addr("lab"))
    assert case.deadline == T0 + SUPPLIER_RESPONSE
    assert case.opened_at == T0
    assert case.verdict_hash == b"\x00" * 32
    assert case.lab_fee == LAB_FEE
    assert c.open_case_of(BATCH_ID) == expected_id
    assert c.lab_fee_pool(cenv.addr("oem")) == POOL - LAB_FEE


def test_oem_may_open_but_the_lab_is_the_agreements(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    """Medium finding: the case opener picked the lab (and the fee): now the lab is the agreement's one."""
    with expect_revert("LabNotOfAgreement", agreementId=AGREEMENT_ID, lab=cenv.addr("lab"), given=cenv.addr("lab2")):
        cenv.open(role="oem", lab=cenv.addr("lab2"), lab_fee=0)
    case_id = cenv.open(role="oem", lab_fee=0)
    assert cenv.cases().case(case_id).lab == cenv.addr("lab")
    assert cenv.cases().lab_fee_pool(cenv.addr("oem")) == POOL


def test_lab_fee_is_capped_by_the_template(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    """Medium finding: the opener could name the OEM's whole pool as the fee; the template caps it."""
    cap = cenv.ag.template.lab_fee_cap
    with expect_revert("LabFeeAboveCap", agreementId=AGREEMENT_ID, fee=cap + 1, cap=cap):
        cenv.open(lab_fee=cap + 1)
    with expect_revert("LabFeeAboveCap", agreementId=AGREEMENT_ID, fee=POOL, cap=cap):
        cenv.open(role="oem", lab_fee=POOL)
    case_id = cenv.open(lab_fee=cap)
    assert cenv.cases().case(case_id).lab_fee == cap


def test_open_case_rejections(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    c = cenv.cases("stranger")
    req = OpenRequest(AGREEMENT_ID, BATCH_ID, ANALYSIS, EVIDENCE)
    with expect_revert("NotOracleOrOem", agreementId=AGREEMENT_ID, caller=cenv.addr("stranger")):
        c.open_case(req, cenv.header)
    o = cenv.cases("oracle")
    unknown = keccak(text="no such agreement")
    with expect_revert("UnknownAgreement", agreementId=unknown):
        o.open_case(OpenRequest(unknown, BATCH_ID, ANALYSIS), cenv.header)
    with expect_revert("MissingAnalysisHash", batchId=BATCH_ID):
        o.open_case(OpenRequest(AGREEMENT_ID, BATCH_ID, b"\x00" * 32), cenv.header)
    missing = keccak(text="never anchored")
    with expect_revert("BatchNotAnchored", batchId=missing):
        o.open_case(OpenRequest(AGREEMENT_ID, missing, ANALYSIS), cenv.header)
    forged = cenv.header.model_copy(update={"record_count": 1})
    with expect_revert(
        "BatchHeaderMismatch",
        batchId=BATCH_ID,
        stored=header_commitment(cenv.header),
        given=header_commitment(forged),
    ):
        o.open_case(OpenRequest(AGREEMENT_ID, BATCH_ID, ANALYSIS), forged)
    with expect_revert(
        "LabNotOfAgreement", agreementId=AGREEMENT_ID, lab=cenv.addr("lab"), given=cenv.addr("supplier2")
    ):
        o.open_case(OpenRequest(AGREEMENT_ID, BATCH_ID, ANALYSIS, lab=cenv.addr("supplier2")), cenv.header)
    cenv.cases("oem").withdraw_lab_fees(POOL - 100)
    with expect_revert("InsufficientLabFeePool", oem=cenv.addr("oem"), available=100, needed=LAB_FEE):
        o.open_case(OpenRequest(AGREEMENT_ID, BATCH_ID, ANALYSIS, lab_fee=LAB_FEE), cenv.header)
    case_id = cenv.open(lab_fee=0)
    with expect_revert("CaseAlreadyOpen", batchId=BATCH_ID, caseId=case_id):
        cenv.open()


def test_batch_of_another_agreement_is_refused(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    other = supplier_batch_id(cenv.addr("supplier"), "qcn/batch/no-agreement")
    header = anchor_batch(cenv.ag, other, agreement_id=b"\x00" * 32)
    with expect_revert(
        "BatchNotOfAgreement",
        batchId=other,
        agreementId=AGREEMENT_ID,
        supplier=cenv.addr("supplier"),
        headerAgreementId=b"\x00" * 32,
        headerSupplier=cenv.addr("supplier"),
    ):
        cenv.cases("oracle").open_case(OpenRequest(AGREEMENT_ID, other, ANALYSIS), header)


# --------------------------------------------------------------------------- supplier stage


def test_supplier_responds_before_deadline(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    with expect_revert("NotCaseParty", caseId=case_id, caller=cenv.addr("oem")):
        cenv.cases("oem").respond(case_id, EVIDENCE)
    cenv.set_time(T0 + DAY)
    ev = cenv.cases("supplier").respond(case_id, EVIDENCE).event("SupplierResponded")
    assert ev["labDeadline"] == T0 + DAY + LAB_VERDICT
    assert bytes(ev["evidenceHash"]) == EVIDENCE
    case = cenv.cases().case(case_id)
    assert case.state is CaseState.SUPPLIER_RESPONDED
    assert case.deadline == T0 + DAY + LAB_VERDICT
    with expect_revert("InvalidState", caseId=case_id, state=CaseState.SUPPLIER_RESPONDED):
        cenv.cases("supplier").respond(case_id, EVIDENCE)


def test_late_response_is_refused(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    late = T0 + SUPPLIER_RESPONSE + 1
    cenv.set_time(late)
    with expect_revert("DeadlinePassed", caseId=case_id, deadline=T0 + SUPPLIER_RESPONSE, at=late):
        cenv.cases("supplier").respond(case_id, EVIDENCE)


def test_silent_supplier_defaults_to_the_lab_with_a_breach(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    with expect_revert("DeadlineNotPassed", caseId=case_id, deadline=T0 + SUPPLIER_RESPONSE, at=T0):
        cenv.cases("stranger").advance_to_lab(case_id)
    at = T0 + SUPPLIER_RESPONSE + 1
    cenv.set_time(at)
    result = cenv.cases("stranger").advance_to_lab(case_id)
    ev = result.event("SupplierDefaulted")
    assert (ev["supplierDeadline"], ev["labDeadline"], ev["by"]) == (
        T0 + SUPPLIER_RESPONSE,
        at + LAB_VERDICT,
        cenv.addr("stranger"),
    )
    assert cenv.cases().case(case_id).state is CaseState.SUPPLIER_DEFAULTED
    counters = cenv.agreements().quarter_counters(AGREEMENT_ID, 0)
    assert counters == QuarterCounters(deadline_breaches=1)
    # the lab can still deliver; the whole case then settles
    vh = _submit(cenv, case_id)
    cenv.cases("oem").accept(case_id, vh)
    cenv.cases("supplier").accept(case_id, vh)
    cenv.cases("stranger").settle(case_id)
    counters = cenv.agreements().quarter_counters(AGREEMENT_ID, 0)
    assert counters == QuarterCounters(nc_major=1, deadline_breaches=1)


# --------------------------------------------------------------------------- verdict


def test_full_story_balances_counters_and_lab_fee(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    _respond(cenv, case_id)
    cenv.set_time(T0 + 2 * DAY)
    c = cenv.cases("relayer")
    v = cenv.verdict(case_id)
    vh = c.verdict_hash(v)
    assert c.verdict_digest(v) == vh
    result = c.submit_verdict(v, c.sign_verdict(v, cenv.key("lab")))
    ev = result.event("VerdictSubmitted")
    assert bytes(ev["verdictHash"]) == vh
    assert ev["lab"] == cenv.addr("lab")
    assert (ev["responsibleParty"], ev["ncClass"]) == (ResponsibleParty.SUPPLIER, NcCode.MAJOR)
    assert bytes(ev["rootCauseCode"]) == ROOT_CAUSE
    assert ev["disputeDeadline"] == T0 + 2 * DAY + DISPUTE_WINDOW
    case = c.case(case_id)
    assert case.state is CaseState.VERDICT_SUBMITTED
    assert case.verdict_hash == vh

    a1 = cenv.cases("oem").accept(case_id, vh).event("VerdictAccepted")
    assert (a1["party"], a1["caseAccepted"]) == (cenv.addr("oem"), False)
    with expect_revert("AlreadyAccepted", caseId=case_id, party=cenv.addr("oem")):
        cenv.cases("oem").accept(case_id, vh)
    acc = cenv.acceptance(case_id, vh)
    sig = c.sign_acceptance(acc, cenv.key("supplier"))
    a2 = c.submit_acceptance(acc, cenv.addr("supplier"), sig).event("VerdictAccepted")
    assert (a2["party"], a2["caseAccepted"]) == (cenv.addr("supplier"), True)
    assert c.case(case_id).state is CaseState.ACCEPTED

    settled = cenv.cases("stranger").settle(case_id)
    ev = settled.event("CaseSettled")
    assert (ev["penalized"], ev["labFeePaid"], ev["lab"]) == (True, LAB_FEE, cenv.addr("lab"))
    bal = cenv.agreements().balances(AGREEMENT_ID)
    assert bal.deposited == DEPOSIT - PENALTY_MAJOR
    assert bal.claimable == PENALTY_MAJOR
    assert cenv.agreements().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters(nc_major=1)
    nc = cenv.agreements().events("NonConformityRecorded")
    assert len(nc) == 1
    assert (bytes(nc[0]["caseId"]), nc[0]["class"], nc[0]["paid"]) == (case_id, NcClass.MAJOR, PENALTY_MAJOR)
    case = c.case(case_id)
    assert case.state is CaseState.SETTLED
    assert c.open_case_of(BATCH_ID) is None
    assert c.lab_fee_claimable(cenv.addr("lab")) == LAB_FEE

    with expect_revert("InvalidState", caseId=case_id, state=CaseState.SETTLED):
        cenv.cases("stranger").settle(case_id)

    before = cenv.token_balance(cenv.addr("lab"))
    claimed = cenv.cases("lab").claim_lab_fee().event("LabFeeClaimed")
    assert claimed["amount"] == LAB_FEE
    assert cenv.token_balance(cenv.addr("lab")) == before + LAB_FEE
    assert cenv.token_balance(cenv.cases_address) == POOL - LAB_FEE
    with expect_revert("NothingToClaim", account=cenv.addr("lab")):
        cenv.cases("lab").claim_lab_fee()
    oem_before = cenv.token_balance(cenv.addr("oem"))
    cenv.agreements("oem").claim(AGREEMENT_ID)
    assert cenv.token_balance(cenv.addr("oem")) == oem_before + PENALTY_MAJOR
    # one penalty per batch: a new case needs new evidence signed off by the case's lab
    with expect_revert("BatchAlreadyPenalized", batchId=BATCH_ID):
        cenv.open()
    new_evidence = keccak(text="second 8D report with new measurements")
    with expect_revert("NotCaseParty", caseId=case_id, caller=cenv.addr("oem")):
        cenv.cases("oem").approve_reopen(BATCH_ID, new_evidence)
    cenv.cases("lab").approve_reopen(BATCH_ID, new_evidence)
    with expect_revert("BatchAlreadyPenalized", batchId=BATCH_ID):
        cenv.open(evidence_hash=EVIDENCE)
    assert cenv.open(evidence_hash=new_evidence) == case_id_for(BATCH_ID, 1)


def test_three_signature_finalization(cenv: CasesEnv) -> None:
    case_id = cenv.open()
    _respond(cenv, case_id)
    c = cenv.cases("relayer")
    v = cenv.verdict(case_id, nc_class=NcCode.CRITICAL)
    vh = c.verdict_hash(v)
    deadline = T0 + DAY
    oem_sig = c.sign_acceptance(cenv.acceptance(case_id, vh, deadline=deadline), cenv.key("oem"))
    sup_sig = c.sign_acceptance(cenv.acceptance(case_id, vh, deadline=deadline), cenv.key("supplier"))
    result = c.submit_verdict_with_acceptances(
        v,
        c.sign_verdict(v, cenv.key("lab")),
        oem_deadline=deadline,
        oem_signature=oem_sig,
        supplier_deadline=deadline,
        supplier_signature=sup_sig,
    )
    # one event stands for the verdict and both acceptances (gas budget)
    assert [n for n, _ in result.events] == ["VerdictFinalized"]
    ev = result.event("VerdictFinalized")
    assert (bytes(ev["caseId"]), bytes(ev["verdictHash"])) == (case_id, vh)
    assert (bytes(ev["rootCauseCode"]), bytes(ev["analysisHash"])) == (v.root_cause_code, v.analysis_hash)
    assert (ev["responsibleParty"], ev["ncClass"], ev["round"]) == (ResponsibleParty.SUPPLIER, NcCode.CRITICAL, 0)
    case = c.case(case_id)
    assert (case.state, case.oem_accepted, case.supplier_accepted) == (CaseState.ACCEPTED, True, True)
    # the one-step path keeps the verdict hash in its event only (one storage write less: the 70k budget)
    assert (case.verdict_hash, case.responsible_party, case.nc_class, case.deadline) == (
        b"\x00" * 32,
        ResponsibleParty.SUPPLIER,
        NcCode.CRITICAL,
        0,
    )
    assert (case.lab, case.round) == (cenv.addr("lab"), 0)
    c.settle(case_id)
    bal = cenv.agreements().balances(AGREEMENT_ID)
    assert (bal.deposited, bal.claimable) == (DEPOSIT - 50_000, 50_000)
    assert cenv.agreements().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters(nc_critical=1)


def test_no_supplier_fault_moves_nothing_but_pays_the_lab(cenv: CasesEnv) -> None:
    case_id = cenv.open()
    _respond(cenv, case_id)
    _submit(cenv, case_id, responsible_party=ResponsibleParty.NONE, nc_class=NcCode.NONE)
    cenv.set_time(T0 + DISPUTE_WINDOW + 1)  # window closes in silence -> accepted
    ev = cenv.cases("stranger").settle(case_id).event("CaseSettled")
    assert (ev["penalized"], ev["labFeePaid"]) == (False, LAB_FEE)
    bal = cenv.agreements().balances(AGREEMENT_ID)
    assert (bal.deposited, bal.claimable) == (DEPOSIT, 0)
    assert cenv.agreements().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters()
    assert cenv.agreements().events("NonConformityRecorded") == []


def test_settle_waits_for_the_dispute_window(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    _respond(cenv, case_id)
    _submit(cenv, case_id)
    with expect_revert("DeadlineNotPassed", caseId=case_id, deadline=T0 + DISPUTE_WINDOW, at=T0):
        cenv.cases("stranger").settle(case_id)
    with expect_revert("UnknownCase", caseId=keccak(text="nope")):
        cenv.cases("stranger").settle(keccak(text="nope"))


def test_verdict_rejections(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    c = cenv.cases("relayer")
    v = cenv.verdict(case_id)
    with expect_revert("InvalidState", caseId=case_id, state=CaseState.OPENED):
        c.submit_verdict(v, c.sign_verdict(v, cenv.key("lab")))
    _respond(cenv, case_id)
    bad_batch = cenv.verdict(case_id, batch_id=keccak(text="other"))
    with expect_revert("BatchMismatch", caseId=case_id, expected=BATCH_ID, given=keccak(text="other")):
        c.submit_verdict(bad_batch, c.sign_verdict(bad_batch, cenv.key("lab")))
    expired = cenv.verdict(case_id, deadline=T0 - 1)
    with expect_revert("SignatureExpired", deadline=T0 - 1, at=T0):
        c.submit_verdict(expired, c.sign_verdict(expired, cenv.key("lab")))
    wrong_nonce = cenv.verdict(case_id, nonce=1)
    with expect_revert("InvalidNonce", caseId=case_id, expected=0, given=1):
        c.submit_verdict(wrong_nonce, c.sign_verdict(wrong_nonce, cenv.key("lab")))
    no_class = cenv.verdict(case_id, nc_class=NcCode.NONE)
    with expect_revert("InvalidVerdictFields", caseId=case_id, responsibleParty=1, ncClass=0):
        c.submit_verdict(no_class, c.sign_verdict(no_class, cenv.key("lab")))
    out_of_range = cenv.verdict(case_id, responsible_party=4)
    with expect_revert("InvalidVerdictFields", caseId=case_id, responsibleParty=4, ncClass=2):
        c.submit_verdict(out_of_range, c.sign_verdict(out_of_range, cenv.key("lab")))
    signer = Account.from_key(cenv.key("oem")).address
    with expect_revert("WrongSigner", party=cenv.addr("lab"), expectedSigner=cenv.addr("lab"), recovered=signer):
        c.submit_verdict(v, c.sign_verdict(v, cenv.key("oem")))
    late = T0 + LAB_VERDICT + 1
    cenv.set_time(late)
    with expect_revert("DeadlinePassed", caseId=case_id, deadline=T0 + LAB_VERDICT, at=late):
        c.submit_verdict(v, c.sign_verdict(v, cenv.key("lab")))


def test_replayed_verdict_and_acceptance_are_rejected(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    _respond(cenv, case_id)
    c = cenv.cases("relayer")
    v = cenv.verdict(case_id)
    sig = c.sign_verdict(v, cenv.key("lab"))
    vh = bytes(c.submit_verdict(v, sig).event("VerdictSubmitted")["verdictHash"])
    with expect_revert("InvalidState", caseId=case_id, state=CaseState.VERDICT_SUBMITTED):
        c.submit_verdict(v, sig)
    acc = cenv.acceptance(case_id, vh)
    acc_sig = c.sign_acceptance(acc, cenv.key("oem"))
    c.submit_acceptance(acc, cenv.addr("oem"), acc_sig)
    with expect_revert("AlreadyAccepted", caseId=case_id, party=cenv.addr("oem")):
        c.submit_acceptance(acc, cenv.addr("oem"), acc_sig)
    # the OEM's signature does not pass as the supplier's
    with expect_revert(
        "WrongSigner",
        party=cenv.addr("supplier"),
        expectedSigner=cenv.addr("supplier"),
        recovered=cenv.addr("oem"),
    ):
        c.submit_acceptance(acc, cenv.addr("supplier"), acc_sig)
    with expect_revert("NotCaseParty", caseId=case_id, caller=cenv.addr("lab")):
        c.submit_acceptance(acc, cenv.addr("lab"), acc_sig)
    other = cenv.acceptance(case_id, keccak(text="other verdict"))
    with expect_revert("VerdictMismatch", caseId=case_id, expected=vh, given=keccak(text="other verdict")):
        c.submit_acceptance(other, cenv.addr("supplier"), c.sign_acceptance(other, cenv.key("supplier")))
    stale = cenv.acceptance(case_id, vh, nonce=7)
    with expect_revert("InvalidNonce", caseId=case_id, expected=0, given=7):
        c.submit_acceptance(stale, cenv.addr("supplier"), c.sign_acceptance(stale, cenv.key("supplier")))
    expired = cenv.acceptance(case_id, vh, deadline=T0 - 5)
    with expect_revert("SignatureExpired", deadline=T0 - 5, at=T0):
        c.submit_acceptance(expired, cenv.addr("supplier"), c.sign_acceptance(expired, cenv.key("supplier")))


def test_signatures_from_plain_eth_account_are_accepted(cenv: CasesEnv) -> None:
    """A lab / party signing with its own wallet tooling (eth_account.sign_typed_data), not our helper."""
    case_id = cenv.open()
    _respond(cenv, case_id)
    c = cenv.cases("relayer")
    v = cenv.verdict(case_id)
    domain = {"name": "qcn TracingCases", "version": "1", "chainId": c.chain_id, "verifyingContract": c.address}
    verdict_types = {
        "Verdict": [
            {"name": "caseId", "type": "bytes32"},
            {"name": "batchId", "type": "bytes32"},
            {"name": "rootCauseCode", "type": "bytes32"},
            {"name": "responsibleParty", "type": "uint8"},
            {"name": "ncClass", "type": "uint8"},
            {"name": "analysisHash", "type": "bytes32"},
            {"name": "deadline", "type": "uint64"},
            {"name": "nonce", "type": "uint256"},
        ]
    }
    message = {
        "caseId": case_id,
        "batchId": BATCH_ID,
        "rootCauseCode": ROOT_CAUSE,
        "responsibleParty": 1,
        "ncClass": 2,
        "analysisHash": ANALYSIS,
        "deadline": v.deadline,
        "nonce": 0,
    }
    signed = Account.sign_typed_data(cenv.key("lab"), domain, verdict_types, message)
    result = c.submit_verdict(v, bytes(signed.signature))
    vh = bytes(result.event("VerdictSubmitted")["verdictHash"])
    assert vh == bytes(signed.message_hash)
    assert vh == verdict_digest(v, chain_id=c.chain_id, verifying_contract=c.address)
    acc_types = {
        "Acceptance": [
            {"name": "caseId", "type": "bytes32"},
            {"name": "verdictHash", "type": "bytes32"},
            {"name": "accept", "type": "bool"},
            {"name": "deadline", "type": "uint64"},
            {"name": "nonce", "type": "uint256"},
        ]
    }
    acc = cenv.acceptance(case_id, vh)
    acc_msg = {"caseId": case_id, "verdictHash": vh, "accept": True, "deadline": acc.deadline, "nonce": 0}
    signed_acc = Account.sign_typed_data(cenv.key("supplier"), domain, acc_types, acc_msg)
    assert bytes(signed_acc.message_hash) == acceptance_digest(acc, chain_id=c.chain_id, verifying_contract=c.address)
    c.submit_acceptance(acc, cenv.addr("supplier"), bytes(signed_acc.signature))
    assert c.case(case_id).supplier_accepted is True


def test_expired_accreditation_at_verdict_time_is_rejected(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    expiry = T0 + 3 * DAY
    cenv.parties("admin").set_accreditation(cenv.addr("lab"), "D-PL-12345-01-00", expiry)
    _respond(cenv, case_id)
    at = T0 + 4 * DAY
    cenv.set_time(at)
    c = cenv.cases("relayer")
    v = cenv.verdict(case_id)
    with expect_revert("LabAccreditationExpired", lab=cenv.addr("lab"), expiry=expiry, at=at):
        c.submit_verdict(v, c.sign_verdict(v, cenv.key("lab")))
    assert c.case(case_id).state is CaseState.SUPPLIER_RESPONDED


def test_rotated_lab_signer_is_required(cenv: CasesEnv, expect_revert: Callable[..., Any]) -> None:
    case_id = cenv.open()
    _respond(cenv, case_id)
    new_signer = Account.from_key(cenv.key("signer2")).address
    cenv.parties("lab").set_signer(cenv.addr("lab"), new_signer)
    c = cenv.cases("relayer")
    v = cenv.verdict(case_id)
    with expect_revert("WrongSigner", party=cenv.addr("lab"), expectedSigner=new_signer, recovered=cenv.addr("lab")):
        c.submit_verdict(v, c.sign_verdict(v, cenv.key("lab")))
    c.submit_verdict(v, c.sign_verdict(v, cenv.key("signer2")))
    assert c.case(case_id).state is CaseState.VERDICT_SUBMITTED
