"""Hypothesis stateful tests of the deposit escrow + quarterly evaluation.

Two machines share one set of rules (deposit / top-up / withdraw / case opened (deposit bound) / case
settled with or without a penalty by class / claim / OEM inspection / evaluate / flag / suspend / resume /
terminate / time advance); the case calls come from the ``settler`` account linked as the case contract:

- ``MirrorMachine`` runs a pure-Python mirror of the contract's accounting (``EscrowMirror``) only. It is
  fast, so it carries the bulk of the random sequences (300 in the fast tier, 2,000 in the ``slow`` tier).
- ``ContractMachine`` runs every step on the real ``AgreementRegistryHarness`` (eth-tester / py-evm) AND on
  the mirror, asserts both give the same outcome (success, or the same custom error with the same
  arguments) and that the state read back from the chain equals the mirror's (4 sequences fast, 200 slow).
  This differential check is what makes the mirror's 2,000 sequences evidence about the contract.

Invariants after every step (both machines): escrow token balance == deposited + claimable; no balance
negative; tokens are conserved (supplier + OEM + escrow == minted); ratio within [min, max]; each quarter
evaluated at most once (and a second evaluate is refused); the funding state is never stale (no top-up
deadline or late flag on a funded agreement, a deadline on every short one); the deposit never falls
below the amount bound for open cases through a withdrawal; money reaches the OEM only through a settled
case (claimable + debt == the penalties due).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import test_agreements_support as support
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from test_agreements_support import (
    AGREEMENT_ID,
    DAY,
    T0,
    AgreementEnv,
    default_template,
)

from chain.agreements import QUARTER_SECONDS, QuarterCounters, TemplateTerms, next_ratio, score_of
from chain.errors import ContractRevert

MINT = 10**9
ACTIVE, SUSPENDED, TERMINATED = 1, 2, 3
Outcome = tuple[str, dict[str, Any]] | None

# shared fixtures (pytest finds them as module attributes)
agreements_session = support.agreements_session


class MirrorRevert(Exception):
    """The mirror refuses an operation exactly as the contract would."""

    def __init__(self, name: str, **arguments: Any) -> None:
        super().__init__(name)
        self.name = name
        self.arguments = arguments


@dataclass
class EscrowMirror:
    """Pure-Python mirror of one agreement's state in ``AgreementRegistry`` (same rules, same errors)."""

    t: TemplateTerms
    now: int = T0
    activated_at: int = T0
    state: int = ACTIVE
    ratio: int = 0
    deposited: int = 0
    claimable: int = 0
    top_up_deadline: int = 0
    late: bool = False
    next_quarter: int = 0
    terminated_at: int = 0
    escrow_tokens: int = 0
    supplier_tokens: int = MINT
    oem_tokens: int = 0
    bound: int = 0
    debt: int = 0
    open_cases: int = 0
    penalties_due: int = 0
    counters: dict[int, QuarterCounters] = field(default_factory=dict)
    evaluated: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ratio = self.t.initial_ratio_bps
        self.top_up_deadline = self.activated_at + self.t.top_up_grace_seconds

    # -- helpers mirroring the contract's internals
    def required(self) -> int:
        wind_down = self.t.supplier_response_seconds + self.t.lab_verdict_seconds + self.t.dispute_window_seconds
        if self.state == TERMINATED and self.now >= self.terminated_at + wind_down:
            return self.bound
        return max(self.t.deposit_base * self.ratio // 10_000, self.bound)

    def quarter(self) -> int:
        return (self.now - self.activated_at) // QUARTER_SECONDS

    def _refresh(self) -> int:
        if self.deposited >= self.required():
            self.top_up_deadline, self.late = 0, False
        elif self.top_up_deadline == 0:
            self.top_up_deadline = self.now + self.t.top_up_grace_seconds
        return self.top_up_deadline

    def _bump(self, **delta: int) -> None:
        q = self.quarter()
        c = self.counters.get(q, QuarterCounters())
        self.counters[q] = QuarterCounters(**{k: getattr(c, k) + delta.get(k, 0) for k in c.__dataclass_fields__})

    def _penalize(self, due: int) -> int:
        paid = min(due, self.deposited)
        self.deposited -= paid
        self.claimable += paid
        self.debt += due - paid
        self.penalties_due += due
        return paid

    # -- operations
    def deposit(self, amount: int) -> None:
        if self.state == TERMINATED and self.debt == 0:
            raise MirrorRevert("AgreementNotActive", agreementId=AGREEMENT_ID, state=TERMINATED)
        if amount == 0:
            raise MirrorRevert("ZeroAmount", agreementId=AGREEMENT_ID)
        self.supplier_tokens -= amount
        self.escrow_tokens += amount
        pay = min(amount, self.debt)
        self.debt -= pay
        self.claimable += pay
        self.deposited += amount - pay
        self._refresh()

    def withdraw(self, amount: int) -> None:
        if amount == 0:
            raise MirrorRevert("ZeroAmount", agreementId=AGREEMENT_ID)
        excess = max(0, self.deposited - self.required())
        if amount > excess:
            raise MirrorRevert("ExceedsExcess", agreementId=AGREEMENT_ID, amount=amount, excess=excess)
        self.deposited -= amount
        self.escrow_tokens -= amount
        self.supplier_tokens += amount

    def claim(self) -> None:
        if self.claimable == 0:
            raise MirrorRevert("NothingToClaim", agreementId=AGREEMENT_ID)
        self.escrow_tokens -= self.claimable
        self.oem_tokens += self.claimable
        self.claimable = 0

    def open_case(self) -> None:
        if self.state not in (ACTIVE, SUSPENDED):
            raise MirrorRevert("AgreementNotActive", agreementId=AGREEMENT_ID, state=self.state)
        self.open_cases += 1
        self.bound += self.t.penalty_critical
        self._refresh()

    def close_case(self, nc_code: int) -> None:
        self.open_cases -= 1
        self.bound -= min(self.t.penalty_critical, self.bound)
        if nc_code:
            key, due = [
                ("nc_critical", self.t.penalty_critical),
                ("nc_major", self.t.penalty_major),
                ("nc_minor", self.t.penalty_minor),
            ][nc_code - 1]
            self._bump(**{key: 1})
            self._penalize(due)
        self._refresh()

    def inspect(self, accepted: bool) -> None:
        if self.state == TERMINATED:
            raise MirrorRevert("AgreementNotActive", agreementId=AGREEMENT_ID, state=self.state)
        self._bump(batches=1, rejected=int(not accepted))

    def evaluate(self, quarter: int) -> None:
        if quarter < self.next_quarter:
            raise MirrorRevert("AlreadyEvaluated", agreementId=AGREEMENT_ID, quarter=quarter)
        if quarter > self.next_quarter:
            raise MirrorRevert(
                "QuarterOutOfOrder", agreementId=AGREEMENT_ID, expected=self.next_quarter, quarter=quarter
            )
        ends_at = self.activated_at + (quarter + 1) * QUARTER_SECONDS
        if self.now < ends_at:
            raise MirrorRevert(
                "QuarterNotEnded", agreementId=AGREEMENT_ID, quarter=quarter, endsAt=ends_at, at=self.now
            )
        counters = self.counters.get(quarter, QuarterCounters())
        if counters != QuarterCounters(rejected=counters.rejected):  # empty quarter: ratio unchanged
            self.ratio = next_ratio(self.t, self.ratio, score_of(counters))
        self.next_quarter = quarter + 1
        self.evaluated.append(quarter)
        self._refresh()

    def flag(self) -> None:
        if self.late:
            raise MirrorRevert("AlreadyFlagged", agreementId=AGREEMENT_ID)
        if self.top_up_deadline == 0 or self.now <= self.top_up_deadline:
            raise MirrorRevert("TopUpNotLate", agreementId=AGREEMENT_ID, deadline=self.top_up_deadline, at=self.now)
        required = self.required()
        if self.deposited >= required:
            raise MirrorRevert("NotUnderfunded", agreementId=AGREEMENT_ID, deposited=self.deposited, required=required)
        self.late = True

    def suspend(self) -> None:
        if self.state != ACTIVE:
            raise MirrorRevert("AgreementNotActive", agreementId=AGREEMENT_ID, state=self.state)
        if not self.late or self.deposited >= self.required():
            raise MirrorRevert("NotFlagged", agreementId=AGREEMENT_ID)
        self.state = SUSPENDED

    def resume(self) -> None:
        if self.state != SUSPENDED:
            raise MirrorRevert("AgreementNotActive", agreementId=AGREEMENT_ID, state=self.state)
        self.state = ACTIVE

    def terminate(self) -> None:
        if self.state == TERMINATED:
            raise MirrorRevert("AgreementNotActive", agreementId=AGREEMENT_ID, state=TERMINATED)
        self.state, self.terminated_at = TERMINATED, self.now


amounts = st.integers(1, 250_000)
withdraw_picks = st.sampled_from(["all", "half", "one-more", "raw"])
advances = st.one_of(st.sampled_from([1, DAY, 14 * DAY, 30 * DAY, QUARTER_SECONDS]), st.integers(1, QUARTER_SECONDS))


class _Rules(RuleBasedStateMachine):
    """Rules shared by both machines; ``_apply`` runs one operation on the backend(s) under test."""

    mirror: EscrowMirror

    def _apply(self, op: str, *args: Any) -> Outcome:
        raise NotImplementedError

    def _mirror(self, op: str, *args: Any) -> Outcome:
        try:
            getattr(self.mirror, op)(*args)
        except MirrorRevert as exc:
            return exc.name, exc.arguments
        return None

    @rule(amount=amounts)
    def deposit(self, amount: int) -> None:
        self._apply("deposit", amount)

    @rule()
    def top_up_to_required(self) -> None:
        missing = self.mirror.required() - self.mirror.deposited
        self._apply("deposit", max(missing, 1))

    @rule(pick=withdraw_picks, raw=amounts)
    def withdraw(self, pick: str, raw: int) -> None:
        excess = max(0, self.mirror.deposited - self.mirror.required())
        amount = {"all": excess, "half": excess // 2, "one-more": excess + 1, "raw": raw}[pick]
        self._apply("withdraw", amount)

    @rule()
    def claim(self) -> None:
        self._apply("claim")

    @rule()
    def open_case(self) -> None:
        if self.mirror.open_cases < 3:
            self._apply("open_case")

    @rule(nc_code=st.integers(0, 3))
    def settle_case(self, nc_code: int) -> None:
        if self.mirror.open_cases > 0:  # the case contract closes only cases it opened
            self._apply("close_case", nc_code)

    @rule(accepted=st.booleans())
    def inspection(self, accepted: bool) -> None:
        self._apply("inspect", accepted)

    @rule(offset=st.integers(-1, 1))
    def evaluate(self, offset: int) -> None:
        before = list(self.mirror.evaluated)
        self._apply("evaluate", max(0, self.mirror.next_quarter + offset))
        if offset < 0 and before:
            assert self.mirror.evaluated == before  # a quarter is never evaluated twice

    @rule()
    def flag(self) -> None:
        self._apply("flag")

    @rule()
    def suspend(self) -> None:
        self._apply("suspend")

    @rule()
    def resume(self) -> None:
        self._apply("resume")

    @rule()
    def terminate(self) -> None:
        if self.mirror.next_quarter >= 2:  # terminate late in a sequence, so most steps run on live agreements
            self._apply("terminate")

    @rule(seconds=advances)
    def advance(self, seconds: int) -> None:
        self.mirror.now += seconds

    @invariant()
    def books_balance(self) -> None:
        m = self.mirror
        assert m.escrow_tokens == m.deposited + m.claimable
        assert min(m.deposited, m.claimable, m.escrow_tokens, m.supplier_tokens, m.oem_tokens) >= 0
        assert m.supplier_tokens + m.oem_tokens + m.escrow_tokens == MINT
        assert m.t.min_ratio_bps <= m.ratio <= m.t.max_ratio_bps
        assert len(m.evaluated) == len(set(m.evaluated))
        assert m.evaluated == list(range(len(m.evaluated)))
        # money reaches the OEM only through settled cases: what it got + what is owed == penalties due
        assert m.oem_tokens + m.claimable + m.debt == m.penalties_due
        assert m.bound == m.open_cases * m.t.penalty_critical
        # the funding state is never stale (the end of a wind-down lowers the requirement with time alone; the
        # contract then refuses flag and suspension on the current numbers, so a deadline left there is inert)
        if m.state != TERMINATED:
            if m.deposited >= m.required():
                assert (m.top_up_deadline, m.late) == (0, False)
            else:
                assert m.top_up_deadline != 0


class MirrorMachine(_Rules):
    """The rules on the pure-Python mirror only."""

    def __init__(self) -> None:
        super().__init__()
        self.mirror = EscrowMirror(default_template())

    def _apply(self, op: str, *args: Any) -> Outcome:
        return self._mirror(op, *args)


def _contract_machine(env: AgreementEnv) -> type[_Rules]:
    tester = env.w3.provider.ethereum_tester

    class ContractMachine(_Rules):
        """The rules on the contract and the mirror, compared step by step."""

        def __init__(self) -> None:
            super().__init__()
            self.snapshot = tester.take_snapshot()
            env.reset_senders()
            env.set_time(T0)
            env.activate()
            env.link_settler()
            env.fund("supplier", MINT)
            self.mirror = EscrowMirror(default_template())
            self.clock = T0
            self.calls = {
                "deposit": lambda a: env.client("supplier").deposit(AGREEMENT_ID, a),
                "withdraw": lambda a: env.client("supplier").withdraw(AGREEMENT_ID, a),
                "claim": lambda: env.client("oem").claim(AGREEMENT_ID),
                "open_case": lambda: env.client("settler").open_case_for(AGREEMENT_ID, keccak(text="case")),
                "close_case": lambda c: env.client("settler").close_case(AGREEMENT_ID, keccak(text="case"), c),
                "inspect": lambda ok: env.inspect_batches(int(ok), int(not ok)),
                "evaluate": lambda q: env.client("stranger").evaluate(AGREEMENT_ID, q),
                "flag": lambda: env.client("stranger").flag_late_top_up(AGREEMENT_ID),
                "suspend": lambda: env.client("oem").suspend(AGREEMENT_ID),
                "resume": lambda: env.client("oem").resume(AGREEMENT_ID),
                "terminate": lambda: env.client("supplier").terminate(AGREEMENT_ID),
            }

        def teardown(self) -> None:
            tester.revert_to_snapshot(self.snapshot)
            env.reset_senders()

        def _apply(self, op: str, *args: Any) -> Outcome:
            if self.clock != self.mirror.now:
                env.set_time(self.mirror.now)
                self.clock = self.mirror.now
            try:
                self.calls[op](*args)
                chain_outcome: Outcome = None
            except ContractRevert as exc:
                chain_outcome = (exc.name, exc.arguments)
            mirror_outcome = self._mirror(op, *args)
            assert chain_outcome == mirror_outcome, f"{op}{args}: chain {chain_outcome} != mirror {mirror_outcome}"
            return chain_outcome

        @invariant()
        def chain_equals_mirror(self) -> None:
            m = self.mirror
            c = env.client()
            b = c.balances(AGREEMENT_ID)
            a = c.agreement(AGREEMENT_ID)
            assert (b.deposited, b.claimable, b.bound, b.debt) == (m.deposited, m.claimable, m.bound, m.debt)
            assert env.token_balance(env.registry_address) == b.deposited + b.claimable == m.escrow_tokens
            assert env.token_balance(env.addr("supplier")) == m.supplier_tokens
            assert env.token_balance(env.addr("oem")) == m.oem_tokens
            assert (a.ratio_bps, a.next_quarter, a.top_up_deadline, a.late_top_up, int(a.state)) == (
                m.ratio,
                m.next_quarter,
                m.top_up_deadline,
                m.late,
                m.state,
            )
            if self.clock == m.now:
                assert b.required == m.required()

    return ContractMachine


def test_mirror_stateful_fast() -> None:
    run_state_machine_as_test(MirrorMachine, settings=settings(max_examples=300, stateful_step_count=30, deadline=None))


@pytest.mark.slow
def test_mirror_stateful_2000_sequences() -> None:
    run_state_machine_as_test(
        MirrorMachine, settings=settings(max_examples=2_000, stateful_step_count=40, deadline=None)
    )


_CONTRACT_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


def test_contract_matches_mirror_fast(agreements_session: AgreementEnv) -> None:
    run_state_machine_as_test(
        _contract_machine(agreements_session),
        settings=settings(max_examples=4, stateful_step_count=10, **_CONTRACT_SETTINGS),
    )


@pytest.mark.slow
def test_contract_matches_mirror_slow(agreements_session: AgreementEnv) -> None:
    # every step is a transaction on the in-process EVM: 60 sequences keep CI within minutes (200 were run
    # during development); the 2,000-sequence run is on the mirror above, which this test ties to the contract
    run_state_machine_as_test(
        _contract_machine(agreements_session),
        settings=settings(max_examples=60, stateful_step_count=25, **_CONTRACT_SETTINGS),
    )
