# ruff: noqa: F811 - pytest fixtures are imported by name and requested as parameters
"""Stateful invariant test of the trust model on the real contracts (hypothesis, in-process EVM).

Handlers for every role, honest and malicious: the oracle and the OEM open cases (also naming another lab
or a fee above the cap), the supplier responds, disputes, deposits, withdraws (also more than it may) and
terminates, the lab signs verdicts (another lab signs too, and the OEM tries to sign as the lab), OEM and
supplier accept, the arbiter rules (also harsher than the lab, or on cases that are not disputed), the OEM
and the admin try to move money directly, anyone settles, time passes.

Invariants after every step, read back from the chain:

- the escrow holds exactly deposited + claimable, the case contract exactly pool + earned lab fees +
  fees reserved by open cases;
- money reached the OEM (claimable + claimed + debt) only for settled, penalised cases, each with the
  template's penalty for its class, and every such case carried a verdict signed by the agreement's lab
  (its ``submitVerdict`` with the lab's signature went through);
- the bound deposit is the critical penalty times the open cases; no withdrawal left the deposit below it.

CI runs a few short sequences; ``make bench`` runs the campaign (``QCN_INVARIANT_SEQUENCES``) and records
the calls made and violations found in ``bench/results/contracts.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from test_cases_support import (  # noqa: F401 - fixtures
    AGREEMENT_ID,
    ANALYSIS,
    DAY,
    EVIDENCE,
    T0,
    CasesEnv,
    agreements_session,
    anchor_batch,
    cases_session,
)

from chain.cases import CaseState, OpenRequest
from chain.clients import supplier_batch_id
from chain.errors import ContractRevert

PENALTY = {1: 50_000, 2: 20_000, 3: 5_000}
CAP = 5_000
ALLOWED_FAILURES = {
    # refusals of honest-but-badly-timed calls; anything else from an honest call is a finding
    "BatchMismatch",  # the machine draws a batch header independently of the case it acts on
    "InvalidState",
    "DeadlinePassed",
    "DeadlineNotPassed",
    "CaseAlreadyOpen",
    "BatchAlreadyPenalized",
    "AgreementNotActive",
    "InsufficientLabFeePool",
    "ExceedsExcess",
    "ZeroAmount",
    "NothingToClaim",
    "AlreadyAccepted",
    "SignatureExpired",
    "LabAccreditationExpired",
    "NotCaseParty",
    "ArbitrationExceedsVerdict",
    "VerdictMismatch",
}


def _machine(env: CasesEnv, counter: dict[str, int]) -> type[RuleBasedStateMachine]:
    tester = env.w3.provider.ethereum_tester
    batches = [supplier_batch_id(env.ag.addr("supplier"), f"inv/batch/{i}") for i in range(3)]

    class TrustMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = tester.take_snapshot()
            env.ag.reset_senders()
            self.now = T0
            env.set_time(T0)
            self.headers = {b: anchor_batch(env.ag, b) for b in batches}
            self.cases: list[bytes] = []
            self.claimed = 0
            self.verdicts: set[bytes] = set()  # cases with a verdict the agreement's lab signed
            self.due = 0  # penalties of settled, penalised cases

        def teardown(self) -> None:
            tester.revert_to_snapshot(self.snapshot)
            env.ag.reset_senders()

        # ----------------------------------------------------------------- plumbing
        def _call(
            self,
            fn: Callable[[], Any],
            *,
            honest: bool = True,
            expect: str | None = None,
            or_else: frozenset[str] | set[str] = frozenset(),
        ) -> Any:
            """``expect``: the attack's refusal; ``or_else``: refusals the contract may meet first (still refused)."""
            counter["calls"] += 1
            try:
                result = fn()
            except ContractRevert as exc:
                if expect is not None:
                    assert exc.name == expect or exc.name in or_else, f"expected {expect}, got {exc}"
                    return None
                assert not honest or exc.name in ALLOWED_FAILURES, f"honest call refused: {exc}"
                return None
            assert expect is None, f"an attack succeeded (expected {expect})"
            return result

        def _case(self, pick: int) -> bytes | None:
            return self.cases[pick % len(self.cases)] if self.cases else None

        # ----------------------------------------------------------------- oracle / OEM
        @rule(which=st.integers(0, 2), fee=st.integers(0, CAP + 2_000), by=st.sampled_from(["oracle", "oem"]))
        def open_case(self, which: int, fee: int, by: str) -> None:
            batch = batches[which]
            request = OpenRequest(AGREEMENT_ID, batch, ANALYSIS, EVIDENCE, lab_fee=fee)
            result = self._call(
                lambda: env.cases(by).open_case(request, self.headers[batch]),
                expect="LabFeeAboveCap" if fee > CAP else None,
                # a batch that already has a case (or was penalised) is refused before its fee is looked at
                or_else={"CaseAlreadyOpen", "BatchAlreadyPenalized", "AgreementNotActive"},
                honest=fee <= CAP,
            )
            if result is not None:
                self.cases.append(bytes(result.event("CaseOpened")["caseId"]))

        @rule(which=st.integers(0, 2))
        def oem_names_its_own_lab(self, which: int) -> None:
            batch = batches[which]
            request = OpenRequest(AGREEMENT_ID, batch, ANALYSIS, lab=env.addr("lab2"))
            counter["calls"] += 1
            try:
                env.cases("oem").open_case(request, self.headers[batch])
            except ContractRevert as exc:
                assert exc.name in {
                    "LabNotOfAgreement",
                    "CaseAlreadyOpen",
                    "BatchAlreadyPenalized",
                    "AgreementNotActive",
                }
            else:
                raise AssertionError("a case opened with a lab the agreement does not name")

        @rule(code=st.integers(1, 3), by=st.sampled_from(["oem", "admin", "supplier", "oracle", "arbiter"]))
        def anyone_moves_money_directly(self, code: int, by: str) -> None:
            self._call(
                lambda: env.agreements(by).close_case(AGREEMENT_ID, keccak(text="x"), code), expect="NotCasesContract"
            )

        # ----------------------------------------------------------------- supplier
        @rule(pick=st.integers(0, 50))
        def respond(self, pick: int) -> None:
            case_id = self._case(pick)
            if case_id is not None:
                self._call(lambda: env.cases("supplier").respond(case_id, EVIDENCE))

        @rule(pick=st.integers(0, 50), by=st.sampled_from(["oem", "supplier"]))
        def dispute(self, pick: int, by: str) -> None:
            case_id = self._case(pick)
            if case_id is not None:
                self._call(lambda: env.cases(by).dispute(case_id, keccak(text="disagree")))

        @rule(amount=st.integers(1, 200_000))
        def withdraw(self, amount: int) -> None:
            self._call(lambda: env.agreements("supplier").withdraw(AGREEMENT_ID, amount))

        @rule(amount=st.integers(1, 60_000))
        def deposit(self, amount: int) -> None:
            env.ag.fund("supplier", amount)
            self._call(lambda: env.agreements("supplier").deposit(AGREEMENT_ID, amount))

        @precondition(lambda self: len(self.cases) >= 3)
        @rule()
        def terminate(self) -> None:
            self._call(lambda: env.agreements("supplier").terminate(AGREEMENT_ID))

        # ----------------------------------------------------------------- lab
        @rule(pick=st.integers(0, 50), code=st.integers(0, 3), signer=st.sampled_from(["lab", "lab", "lab2", "oem"]))
        def verdict(self, pick: int, code: int, signer: str) -> None:
            case_id = self._case(pick)
            if case_id is None:
                return
            case = env.cases().case(case_id)
            c = env.cases("relayer")
            v = env.verdict(
                case_id,
                batch_id=case.batch_id,  # the case's batch: a forged signature must meet WrongSigner, not BatchMismatch
                responsible_party=1 if code else 2,
                nc_class=code,
                deadline=self.now + DAY,
                nonce=case.round,
            )
            if signer != "lab":
                if (
                    case.state in (CaseState.SUPPLIER_RESPONDED, CaseState.SUPPLIER_DEFAULTED)
                    and self.now <= case.deadline
                ):
                    self._call(lambda: c.submit_verdict(v, c.sign_verdict(v, env.key(signer))), expect="WrongSigner")
                return
            if self._call(lambda: c.submit_verdict(v, c.sign_verdict(v, env.key("lab")))) is not None:
                self.verdicts.add(case_id)

        @rule(pick=st.integers(0, 50), by=st.sampled_from(["oem", "supplier"]))
        def accept(self, pick: int, by: str) -> None:
            case_id = self._case(pick)
            if case_id is not None:
                vh = env.cases().case(case_id).verdict_hash
                self._call(lambda: env.cases(by).accept(case_id, vh))

        # ----------------------------------------------------------------- operators
        @rule(pick=st.integers(0, 50), responsible=st.integers(0, 3), code=st.integers(0, 3))
        def arbitrate(self, pick: int, responsible: int, code: int) -> None:
            case_id = self._case(pick)
            if case_id is None or (responsible == 1) != (code != 0):
                return
            self._call(
                lambda: env.cases("arbiter").arbitrate(case_id, responsible, code, keccak(text="rc"), keccak(text="r"))
            )

        @rule()
        def registrar_rotates_supplier_signer(self) -> None:
            self._call(
                lambda: env.parties("admin").set_signer(env.addr("supplier"), env.addr("admin")),
                expect="NotPartyOrRegistrar",
            )

        # ----------------------------------------------------------------- anyone
        @rule(pick=st.integers(0, 50))
        def settle(self, pick: int) -> None:
            case_id = self._case(pick)
            if case_id is None:
                return
            result = self._call(lambda: env.cases("stranger").settle(case_id))
            if result is not None:
                settled = result.event("CaseSettled")
                if settled["penalized"]:
                    assert case_id in self.verdicts, "money moved for a case without a lab-signed verdict"
                    self.due += PENALTY[settled["ncClass"]]

        @rule()
        def oem_claims(self) -> None:
            before = env.agreements().balances(AGREEMENT_ID).claimable
            if self._call(lambda: env.agreements("oem").claim(AGREEMENT_ID)) is not None:
                self.claimed += before

        @rule(seconds=st.sampled_from([3600, DAY, 6 * DAY, 11 * DAY, 15 * DAY]))
        def advance(self, seconds: int) -> None:
            self.now += seconds
            env.set_time(self.now)

        # ----------------------------------------------------------------- invariants
        @invariant()
        def funds_move_only_per_the_trust_model(self) -> None:
            ag, cases = env.agreements(), env.cases()
            b = ag.balances(AGREEMENT_ID)
            assert env.token_balance(env.ag.registry_address) == b.deposited + b.claimable
            opened = [cases.case(c) for c in self.cases]
            open_cases = [c for c in opened if c.state is not CaseState.SETTLED]
            reserved = sum(c.lab_fee for c in open_cases)
            lab_fees = cases.lab_fee_claimable(env.addr("lab")) + cases.lab_fee_claimable(env.addr("lab2"))
            assert env.token_balance(env.cases_address) == cases.lab_fee_pool(env.addr("oem")) + lab_fees + reserved
            assert b.bound == PENALTY[1] * len(open_cases)
            assert b.claimable + self.claimed + b.debt == self.due

    return TrustMachine


def run_invariant_campaign(env: CasesEnv, *, sequences: int, steps: int) -> dict[str, int]:
    """Run ``sequences`` random sequences of ``steps`` role actions; returns calls made and violations."""
    counter = {"calls": 0}
    violations = 0
    try:
        run_state_machine_as_test(
            _machine(env, counter),
            settings=settings(
                max_examples=sequences,
                stateful_step_count=steps,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                database=None,
            ),
        )
    except AssertionError:
        violations = 1
        raise
    finally:
        report = os.environ.get("QCN_INVARIANT_REPORT")
        if report:
            Path(report).write_text(
                json.dumps({"invariant_calls": counter["calls"], "invariant_violations": violations})
            )
    return {"invariant_calls": counter["calls"], "invariant_violations": violations}


def test_trust_invariants_hold_for_every_role(cases_session: CasesEnv) -> None:
    sequences = int(os.environ.get("QCN_INVARIANT_SEQUENCES", "3"))
    steps = int(os.environ.get("QCN_INVARIANT_STEPS", "15"))
    result = run_invariant_campaign(cases_session, sequences=sequences, steps=steps)
    assert result["invariant_violations"] == 0
    assert result["invariant_calls"] > 0


@pytest.mark.bench  # ~7 minutes on py-evm: `make bench`; CI runs the bounded campaign above
def test_trust_invariants_long_run(cases_session: CasesEnv) -> None:
    result = run_invariant_campaign(cases_session, sequences=25, steps=40)
    assert result["invariant_violations"] == 0
