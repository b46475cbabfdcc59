"""Per-quarter counters (recordBatch / deadline breaches) and the quarterly evaluation (score, tier curve,
bounds, step limit, once-only, in order, top-up after an increase)."""

from __future__ import annotations

import test_agreements_support as support
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from test_agreements_support import (
    AGREEMENT_ID,
    DAY,
    T0,
    AgreementEnv,
    default_template,
)

from chain.agreements import QUARTER_SECONDS, AgreementState, QuarterCounters, next_ratio, score_of
from chain.clients import BatchHeader

Q = QUARTER_SECONDS

# shared fixtures (pytest finds them as module attributes)
active = support.active
agreements_session = support.agreements_session
env = support.env


def _batches(env: AgreementEnv, accepted: int, rejected: int) -> None:
    env.inspect_batches(accepted, rejected)


def test_inspections_count_in_current_quarter(active: AgreementEnv) -> None:
    _batches(active, accepted=3, rejected=1)
    assert active.client().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters(batches=4, rejected=1)
    active.set_time(T0 + Q - 1)
    assert active.client().current_quarter(AGREEMENT_ID) == 0
    active.set_time(T0 + Q)
    assert active.client().current_quarter(AGREEMENT_ID) == 1
    _batches(active, accepted=0, rejected=1)
    assert active.client().quarter_counters(AGREEMENT_ID, 1) == QuarterCounters(batches=1, rejected=1)
    assert active.client().quarter_counters(AGREEMENT_ID, 0).batches == 4


def test_inspection_errors(active: AgreementEnv, expect_revert) -> None:
    header_batch = keccak(text="x")
    with expect_revert("UnknownAgreement", agreementId=keccak(text="x")):
        active.client("oem").record_inspection(keccak(text="x"), header_batch, _any_header(active), accepted=True)
    active.client("oem").terminate(AGREEMENT_ID)
    with expect_revert("AgreementNotActive", agreementId=AGREEMENT_ID, state=3):
        active.client("oem").record_inspection(AGREEMENT_ID, header_batch, _any_header(active), accepted=True)
    assert active.client().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters()


def _any_header(env: AgreementEnv) -> BatchHeader:
    return BatchHeader(
        root=keccak(text="r"),
        report_hash=b"\x00" * 32,
        agreement_id=AGREEMENT_ID,
        supplier=env.addr("supplier"),
        record_count=1,
        verdict=1,
        anchored_at=T0,
        supersedes=b"\x00" * 32,
    )


def test_deadline_breach_needs_the_case_contract(active: AgreementEnv, expect_revert) -> None:
    case = keccak(text="case-9")
    with expect_revert("NotCasesContract", caller=active.addr("oem")):
        active.client("oem").record_deadline_breach(AGREEMENT_ID, case)
    active.link_settler()
    active.set_time(T0 + Q + 5)
    result = active.client("settler").record_deadline_breach(AGREEMENT_ID, case)
    assert result.event("DeadlineBreachRecorded") == {
        "agreementId": AGREEMENT_ID,
        "caseId": case,
        "quarter": 1,
        "by": active.addr("settler"),
    }
    assert active.client().quarter_counters(AGREEMENT_ID, 1) == QuarterCounters(deadline_breaches=1)


def test_evaluate_before_quarter_end_reverts(active: AgreementEnv, expect_revert) -> None:
    active.set_time(T0 + Q - 1)
    with expect_revert("QuarterNotEnded", agreementId=AGREEMENT_ID, quarter=0, endsAt=T0 + Q, at=T0 + Q - 1):
        active.client("stranger").evaluate(AGREEMENT_ID, 0)


def test_good_quarter_lowers_ratio_by_at_most_one_step(active: AgreementEnv, expect_revert) -> None:
    active.client("supplier").deposit(AGREEMENT_ID, 100_000)
    _batches(active, accepted=10, rejected=0)
    active.set_time(T0 + Q)
    result = active.client("stranger").evaluate(AGREEMENT_ID, 0)
    assert result.event("Evaluated") == {
        "agreementId": AGREEMENT_ID,
        "quarter": 0,
        "score": 100,
        "oldRatioBps": 1_000,
        "newRatioBps": 500,
        "formulaVersion": 1,
        "required": 50_000,
        "topUpDeadline": 0,
    }
    a = active.client().agreement(AGREEMENT_ID)
    assert (a.ratio_bps, a.next_quarter) == (500, 1)
    assert active.client().balances(AGREEMENT_ID).required == 50_000
    active.client("supplier").withdraw(AGREEMENT_ID, 50_000)  # the excess is free now
    with expect_revert("AlreadyEvaluated", agreementId=AGREEMENT_ID, quarter=0):
        active.client("stranger").evaluate(AGREEMENT_ID, 0)
    with expect_revert("QuarterOutOfOrder", agreementId=AGREEMENT_ID, expected=1, quarter=2):
        active.client("stranger").evaluate(AGREEMENT_ID, 2)


def test_bad_quarter_raises_ratio_and_starts_top_up(active: AgreementEnv) -> None:
    active.client("supplier").deposit(AGREEMENT_ID, 100_000)
    _batches(active, accepted=6, rejected=4)  # 50 * 4 / 10 = 20 points
    active.link_settler()
    for i in range(7):  # 35 points
        active.client("settler").record_deadline_breach(AGREEMENT_ID, keccak(text=f"case-{i}"))
    counters = active.client().quarter_counters(AGREEMENT_ID, 0)
    assert score_of(counters) == 45 == active.client().score_of(counters)
    active.set_time(T0 + Q + 10)
    result = active.client("stranger").evaluate(AGREEMENT_ID, 0)
    ev = result.event("Evaluated")
    # tier (0 -> 3000) is the target, the step limit allows 1000 + 500
    assert (ev["score"], ev["oldRatioBps"], ev["newRatioBps"]) == (45, 1_000, 1_500)
    assert (ev["required"], ev["topUpDeadline"]) == (150_000, T0 + Q + 10 + 14 * DAY)
    a = active.client().agreement(AGREEMENT_ID)
    assert (a.ratio_bps, a.top_up_deadline) == (1_500, T0 + Q + 10 + 14 * DAY)
    active.set_time(T0 + Q + 10 + 14 * DAY + 1)
    active.client("stranger").flag_late_top_up(AGREEMENT_ID)
    active.client("oem").suspend(AGREEMENT_ID)
    assert active.client().agreement(AGREEMENT_ID).state == AgreementState.SUSPENDED


def test_ratio_walks_to_bounds_and_stays_there(active: AgreementEnv) -> None:
    c = active.client("stranger")
    active.link_settler()
    ratios = []
    for quarter in range(5):
        active.set_time(T0 + quarter * Q + 1)
        for i in range(3):  # 3 critical = 75 points -> score 25 -> tier 3000
            active.penalize(f"c{quarter}-{i}", 1)
        active.set_time(T0 + (quarter + 1) * Q)
        ratios.append(c.evaluate(AGREEMENT_ID, quarter).event("Evaluated")["newRatioBps"])
    assert ratios == [1_500, 2_000, 2_500, 3_000, 3_000]
    # an empty quarter (no inspection, no non-conformity, no breach) is no evidence: the ratio stays
    active.set_time(T0 + 6 * Q)
    empty = c.evaluate(AGREEMENT_ID, 5).event("Evaluated")
    assert (empty["score"], empty["oldRatioBps"], empty["newRatioBps"]) == (100, 3_000, 3_000)
    for quarter in range(6, 12):  # clean quarters, one accepted inspection each: score 100 -> tier 500
        active.set_time(T0 + quarter * Q + 1)
        _batches(active, accepted=1, rejected=0)
        active.set_time(T0 + (quarter + 1) * Q)
        ratios.append(c.evaluate(AGREEMENT_ID, quarter).event("Evaluated")["newRatioBps"])
    assert ratios[5:] == [2_500, 2_000, 1_500, 1_000, 500, 500]


def test_ratio_decrease_can_make_pending_top_up_unnecessary(active: AgreementEnv, expect_revert) -> None:
    active.client("supplier").deposit(AGREEMENT_ID, 60_000)  # short of 100k, deadline T0 + 14 d running
    _batches(active, accepted=1, rejected=0)
    active.set_time(T0 + Q)
    ev = active.client("stranger").evaluate(AGREEMENT_ID, 0).event("Evaluated")  # 500 bps -> 50k required
    assert (ev["required"], ev["topUpDeadline"]) == (50_000, 0)
    assert active.client().agreement(AGREEMENT_ID).top_up_deadline == 0
    with expect_revert("TopUpNotLate", agreementId=AGREEMENT_ID, deadline=0, at=T0 + Q):
        active.client("stranger").flag_late_top_up(AGREEMENT_ID)


def test_funding_state_is_recomputed_after_every_change(active: AgreementEnv, expect_revert) -> None:
    """Medium finding: after evaluate lowered the ratio the old (passed) deadline survived; the next
    shortfall reused it, so the OEM could suspend with zero grace or suspend a funded agreement."""
    active.client("supplier").deposit(AGREEMENT_ID, 60_000)  # short: deadline T0 + 14 d
    _batches(active, accepted=1, rejected=0)
    active.set_time(T0 + Q)
    active.client("stranger").evaluate(AGREEMENT_ID, 0)  # 50k required: funded, deadline cleared
    # a new shortfall (a penalty) starts a fresh grace period, not the passed one
    active.link_settler()
    active.set_time(T0 + Q + 100)
    active.penalize("case-1", 3)  # 5,000 minor -> 55,000 < 50k? no: still funded
    assert active.client().agreement(AGREEMENT_ID).top_up_deadline == 0
    active.penalize("case-2", 2)  # 20,000 -> 35,000 < 50,000: short now
    a = active.client().agreement(AGREEMENT_ID)
    assert a.top_up_deadline == T0 + Q + 100 + 14 * DAY
    with expect_revert("TopUpNotLate", agreementId=AGREEMENT_ID, deadline=a.top_up_deadline, at=T0 + Q + 100):
        active.client("stranger").flag_late_top_up(AGREEMENT_ID)
    with expect_revert("NotFlagged", agreementId=AGREEMENT_ID):
        active.client("oem").suspend(AGREEMENT_ID)
    # late, flagged, then funded: the flag clears with the deposit and suspension is refused
    active.set_time(a.top_up_deadline + 1)
    active.client("stranger").flag_late_top_up(AGREEMENT_ID)
    active.client("supplier").deposit(AGREEMENT_ID, 15_000)
    a = active.client().agreement(AGREEMENT_ID)
    assert (a.late_top_up, a.top_up_deadline) == (False, 0)
    with expect_revert("NotFlagged", agreementId=AGREEMENT_ID):
        active.client("oem").suspend(AGREEMENT_ID)


def test_evaluate_unknown_agreement_reverts(env: AgreementEnv, expect_revert) -> None:
    with expect_revert("UnknownAgreement", agreementId=AGREEMENT_ID):
        env.client().evaluate(AGREEMENT_ID, 0)


counter_values = st.builds(
    QuarterCounters,
    batches=st.integers(0, 2**32 - 1),
    rejected=st.integers(0, 2**32 - 1),
    nc_critical=st.integers(0, 2**16 - 1),
    nc_major=st.integers(0, 2**16 - 1),
    nc_minor=st.integers(0, 2**16 - 1),
    deadline_breaches=st.integers(0, 2**16 - 1),
)
small_counters = st.builds(
    QuarterCounters,
    batches=st.integers(0, 200),
    rejected=st.integers(0, 200),
    nc_critical=st.integers(0, 4),
    nc_major=st.integers(0, 10),
    nc_minor=st.integers(0, 30),
    deadline_breaches=st.integers(0, 20),
)


@settings(max_examples=150, deadline=None)
@given(counters=st.one_of(counter_values, small_counters))
def test_score_formula_matches_contract(agreements_session: AgreementEnv, counters: QuarterCounters) -> None:
    on_chain = agreements_session.client().score_of(counters)
    assert on_chain == score_of(counters)
    assert 0 <= on_chain <= 100


def test_score_worked_example() -> None:
    # docstring example: 20 batches, 2 rejected, one major -> 100 - 5 - 10
    assert score_of(QuarterCounters(batches=20, rejected=2, nc_major=1)) == 85
    assert score_of(QuarterCounters()) == 100
    assert score_of(QuarterCounters(nc_critical=5)) == 0


@settings(max_examples=300, deadline=None)
@given(score=st.integers(0, 100), old=st.integers(500, 3_000))
def test_next_ratio_stays_in_bounds_and_step(score: int, old: int) -> None:
    t = default_template()
    new = next_ratio(t, old, score)
    assert t.min_ratio_bps <= new <= t.max_ratio_bps
    assert abs(new - old) <= t.max_step_bps
