"""Deposit escrow: deposit, withdraw excess, penalties (capped), OEM claims, late top-up flag and suspension,
and a hostile re-entering ERC-20 that cannot drain anything."""

from __future__ import annotations

import test_agreements_support as support
from eth_utils import keccak
from test_agreements_support import (
    AGREEMENT_ID,
    DAY,
    MINTED,
    T0,
    AgreementEnv,
    default_template,
)

from chain.agreements import AgreementRegistryClient, AgreementState, AgreementTerms, QuarterCounters
from chain.contracts import contract_at, load_artifact

CASE = keccak(text="case-1")
GRACE = 14 * DAY

# shared fixtures (pytest finds them as module attributes)
active = support.active
agreements_session = support.agreements_session
env = support.env


def _escrow_balance(env: AgreementEnv) -> int:
    return env.token_balance(env.registry_address)


def test_deposit_funds_required_and_clears_top_up(active: AgreementEnv) -> None:
    result = active.client("supplier").deposit(AGREEMENT_ID, 120_000)
    assert result.event("Deposited") == {
        "agreementId": AGREEMENT_ID,
        "from": active.addr("supplier"),
        "amount": 120_000,
        "deposited": 120_000,
        "required": 100_000,
        "topUpCleared": True,
    }
    b = active.client().balances(AGREEMENT_ID)
    assert (b.deposited, b.claimable, b.required) == (120_000, 0, 100_000)
    assert active.client().agreement(AGREEMENT_ID).top_up_deadline == 0
    assert _escrow_balance(active) == 120_000
    assert active.token_balance(active.addr("supplier")) == MINTED - 120_000


def test_partial_deposit_keeps_deadline(active: AgreementEnv) -> None:
    result = active.client("supplier").deposit(AGREEMENT_ID, 40_000)
    assert result.event("Deposited")["topUpCleared"] is False
    assert active.client().agreement(AGREEMENT_ID).top_up_deadline == T0 + GRACE


def test_deposit_errors(active: AgreementEnv, expect_revert) -> None:
    with expect_revert("ZeroAmount", agreementId=AGREEMENT_ID):
        active.client("supplier").deposit(AGREEMENT_ID, 0)
    with expect_revert("UnknownAgreement", agreementId=CASE):
        active.client("supplier").deposit(CASE, 10)
    # more than approved: the token's own custom error surfaces decoded
    with expect_revert(
        "ERC20InsufficientAllowance", spender=active.registry_address, allowance=MINTED, needed=MINTED + 1
    ):
        active.client("supplier").deposit(AGREEMENT_ID, MINTED + 1)


def test_withdraw_only_excess(active: AgreementEnv, expect_revert) -> None:
    c = active.client("supplier")
    c.deposit(AGREEMENT_ID, 150_000)
    with expect_revert("ExceedsExcess", agreementId=AGREEMENT_ID, amount=50_001, excess=50_000):
        c.withdraw(AGREEMENT_ID, 50_001)
    result = c.withdraw(AGREEMENT_ID, 50_000)
    assert result.event("Withdrawn") == {
        "agreementId": AGREEMENT_ID,
        "to": active.addr("supplier"),
        "amount": 50_000,
        "deposited": 100_000,
    }
    assert active.client().balances(AGREEMENT_ID).deposited == 100_000
    assert _escrow_balance(active) == 100_000
    assert active.token_balance(active.addr("supplier")) == MINTED - 100_000
    with expect_revert("ExceedsExcess", agreementId=AGREEMENT_ID, amount=1, excess=0):
        c.withdraw(AGREEMENT_ID, 1)
    with expect_revert("ZeroAmount", agreementId=AGREEMENT_ID):
        c.withdraw(AGREEMENT_ID, 0)


def test_only_supplier_withdraws(active: AgreementEnv, expect_revert) -> None:
    active.client("supplier").deposit(AGREEMENT_ID, 150_000)
    with expect_revert("Unauthorized", agreementId=AGREEMENT_ID, caller=active.addr("oem")):
        active.client("oem").withdraw(AGREEMENT_ID, 1)


def test_non_conformity_penalty_moves_to_oem_and_starts_top_up(active: AgreementEnv) -> None:
    active.client("supplier").deposit(AGREEMENT_ID, 100_000)
    active.set_time(T0 + 10 * DAY)
    active.link_settler()
    result = active.penalize("case-1", 2)
    assert result.event("NonConformityRecorded") == {
        "agreementId": AGREEMENT_ID,
        "caseId": CASE,
        "quarter": 0,
        "class": 1,
        "due": 20_000,
        "paid": 20_000,
        "shortfall": 0,
        "by": active.addr("settler"),
    }
    assert result.event("DepositReleased")["amount"] == 50_000
    b = active.client().balances(AGREEMENT_ID)
    assert (b.deposited, b.claimable) == (80_000, 20_000)
    assert active.client().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters(nc_major=1)
    assert active.client().agreement(AGREEMENT_ID).top_up_deadline == T0 + 10 * DAY + GRACE
    assert _escrow_balance(active) == 100_000


def test_penalty_is_capped_at_deposit_with_shortfall(active: AgreementEnv) -> None:
    """Medium finding: the unpaid shortfall was only a number in an event; now it is the agreement's debt,
    paid to the OEM first from the next deposits."""
    active.client("supplier").deposit(AGREEMENT_ID, 30_000)
    active.link_settler()
    result = active.penalize("case-1", 1)
    ev = result.event("NonConformityRecorded")
    assert (ev["due"], ev["paid"], ev["shortfall"], ev["by"]) == (50_000, 30_000, 20_000, active.addr("settler"))
    assert result.event("DebtRecorded")["debt"] == 20_000
    b = active.client().balances(AGREEMENT_ID)
    assert (b.deposited, b.claimable, b.debt) == (0, 30_000, 20_000)
    again = active.penalize("case-2", 3)
    assert (again.event("NonConformityRecorded")["paid"], again.event("NonConformityRecorded")["shortfall"]) == (
        0,
        5_000,
    )
    assert active.client().balances(AGREEMENT_ID).claimable == 30_000
    assert active.client().quarter_counters(AGREEMENT_ID, 0) == QuarterCounters(nc_critical=1, nc_minor=1)
    # the next deposit pays the 25,000 debt to the OEM first, the rest is deposit
    paid = active.client("supplier").deposit(AGREEMENT_ID, 40_000)
    assert paid.event("DebtPaid") == {"agreementId": AGREEMENT_ID, "amount": 25_000, "debt": 0}
    b = active.client().balances(AGREEMENT_ID)
    assert (b.deposited, b.claimable, b.debt) == (15_000, 55_000, 0)
    assert _escrow_balance(active) == 70_000
    # a terminated agreement with debt still takes deposits (to pay it), without debt it refuses them
    active.penalize("case-3", 1)  # 15,000 paid, 35,000 debt
    active.client("supplier").terminate(AGREEMENT_ID)
    active.client("supplier").deposit(AGREEMENT_ID, 35_000)
    assert active.client().balances(AGREEMENT_ID).debt == 0


def test_no_party_and_no_operator_can_penalise_alone(active: AgreementEnv, expect_revert) -> None:
    """High finding: the OEM alone could seize the deposit (penalizePpm / recordNonConformity). Now only the
    case contract linked once at deployment moves money, and no key can link itself afterwards."""
    active.client("supplier").deposit(AGREEMENT_ID, 100_000)
    functions = {f["name"] for f in active.client().contract.abi if f.get("type") == "function"}
    assert not functions & {"penalizePpm", "recordNonConformity", "grantRole", "recordBatches"}
    for role in ("oem", "supplier", "stranger", "admin", "relayer"):
        with expect_revert("NotCasesContract", caller=active.addr(role)):
            active.client(role).close_case(AGREEMENT_ID, CASE, 1)
        with expect_revert("NotCasesContract", caller=active.addr(role)):
            active.client(role).open_case_for(AGREEMENT_ID, CASE)
    for role in ("oem", "supplier", "stranger"):
        with expect_revert("NotLinker", caller=active.addr(role)):
            active.client(role).link_cases(active.addr(role))
    active.link_settler()
    with expect_revert("CasesAlreadyLinked", cases=active.addr("settler")):
        active.client("admin").link_cases(active.addr("admin"))
    with expect_revert("NotCasesContract", caller=active.addr("admin")):
        active.client("admin").close_case(AGREEMENT_ID, CASE, 1)
    b = active.client().balances(AGREEMENT_ID)
    assert (b.deposited, b.claimable) == (100_000, 0)


def test_oem_claims_penalties_once(active: AgreementEnv, expect_revert) -> None:
    active.client("supplier").deposit(AGREEMENT_ID, 100_000)
    active.link_settler()
    active.penalize("case-1", 1)
    with expect_revert("Unauthorized", agreementId=AGREEMENT_ID, caller=active.addr("supplier")):
        active.client("supplier").claim(AGREEMENT_ID)
    result = active.client("oem").claim(AGREEMENT_ID)
    assert result.event("Claimed") == {"agreementId": AGREEMENT_ID, "to": active.addr("oem"), "amount": 50_000}
    assert active.token_balance(active.addr("oem")) == 50_000
    assert active.client().balances(AGREEMENT_ID).claimable == 0
    assert _escrow_balance(active) == 50_000
    with expect_revert("NothingToClaim", agreementId=AGREEMENT_ID):
        active.client("oem").claim(AGREEMENT_ID)


def test_late_top_up_flag_suspend_fund_resume(active: AgreementEnv, expect_revert) -> None:
    c = active.client("stranger")
    active.client("supplier").deposit(AGREEMENT_ID, 40_000)
    active.set_time(T0 + GRACE)
    with expect_revert("TopUpNotLate", agreementId=AGREEMENT_ID, deadline=T0 + GRACE, at=T0 + GRACE):
        c.flag_late_top_up(AGREEMENT_ID)
    active.set_time(T0 + GRACE + 1)
    result = c.flag_late_top_up(AGREEMENT_ID)
    assert result.event("LateTopUpFlagged") == {
        "agreementId": AGREEMENT_ID,
        "deadline": T0 + GRACE,
        "deposited": 40_000,
        "required": 100_000,
        "by": active.addr("stranger"),
    }
    assert active.client().agreement(AGREEMENT_ID).late_top_up is True
    with expect_revert("AlreadyFlagged", agreementId=AGREEMENT_ID):
        c.flag_late_top_up(AGREEMENT_ID)

    suspended = active.client("oem").suspend(AGREEMENT_ID)
    assert suspended.event("AgreementSuspended") == {"agreementId": AGREEMENT_ID, "by": active.addr("oem")}
    assert active.client().agreement(AGREEMENT_ID).state == AgreementState.SUSPENDED
    with expect_revert("AgreementNotActive", agreementId=AGREEMENT_ID, state=2):
        active.client().check_anchor(AGREEMENT_ID, active.addr("supplier"))
    with expect_revert("AgreementNotActive", agreementId=AGREEMENT_ID, state=2):
        active.client("oem").suspend(AGREEMENT_ID)

    funded = active.client("supplier").deposit(AGREEMENT_ID, 60_000)
    assert funded.event("Deposited")["topUpCleared"] is True
    a = active.client().agreement(AGREEMENT_ID)
    assert (a.late_top_up, a.top_up_deadline, a.state) == (False, 0, AgreementState.SUSPENDED)
    resumed = active.client("oem").resume(AGREEMENT_ID)
    assert resumed.event("AgreementResumed") == {"agreementId": AGREEMENT_ID, "by": active.addr("oem")}
    active.client().check_anchor(AGREEMENT_ID, active.addr("supplier"))


def test_flag_without_pending_top_up_reverts(active: AgreementEnv, expect_revert) -> None:
    active.client("supplier").deposit(AGREEMENT_ID, 100_000)
    active.set_time(T0 + GRACE + 1)
    with expect_revert("TopUpNotLate", agreementId=AGREEMENT_ID, deadline=0, at=T0 + GRACE + 1):
        active.client("stranger").flag_late_top_up(AGREEMENT_ID)


# ----------------------------------------------------------------------------------------------- re-entrancy

REENTRANT = keccak(text="ReentrancyGuardReentrantCall()")[:4]
HOSTILE_AGREEMENT = keccak(text="qcn/agreement/hostile")


def _deploy(env: AgreementEnv, name: str, *args: object) -> str:
    artifact = load_artifact(name)
    sent = env.sender("admin").deploy(artifact.abi, artifact.bytecode, *args, gas=6_000_000)
    return str(sent.receipt["contractAddress"])


def test_hostile_token_cannot_reenter_deposit_withdraw_or_claim(env: AgreementEnv) -> None:
    w3, admin = env.w3, env.sender("admin")
    token = contract_at(w3, "HostileToken", _deploy(env, "HostileToken"))
    oem_party = contract_at(w3, "ReentrantParty", _deploy(env, "ReentrantParty"))
    sup_party = contract_at(w3, "ReentrantParty", _deploy(env, "ReentrantParty"))
    parties = env.chain.parties("admin")
    parties.register_party(oem_party.address, 1, "Hostile OEM", signer=env.addr("settler"))
    parties.register_party(sup_party.address, 2, "Hostile Supplier", signer=env.addr("stranger"))
    escrow = AgreementRegistryClient.deploy(
        admin, party_registry=env.chain.deployment.registry, token=token.address, harness=True
    )
    escrow.set_time(T0)
    fn = escrow.contract.functions

    def act(party, call) -> None:  # the party contract calls the escrow / token
        admin.send(party.functions.execute(call.address, call._encode_transaction_data()))

    act(oem_party, fn.publishTemplate(default_template().to_abi()))
    terms = AgreementTerms(
        agreement_id=HOSTILE_AGREEMENT,
        template_id=default_template().template_id,
        template_version=1,
        oem=oem_party.address,
        supplier=sup_party.address,
        lab="",
        oem_nonce=0,
        supplier_nonce=0,
        deadline=T0 + DAY,
    )
    escrow.activate(
        terms, escrow.sign(terms, env.accounts["settler"].key), escrow.sign(terms, env.accounts["stranger"].key)
    )
    admin.send(token.functions.mint(sup_party.address, 300_000))
    act(sup_party, token.functions.approve(escrow.address, 300_000))

    def armed(party, call) -> None:
        admin.send(token.functions.setHook(party.address))
        admin.send(party.functions.arm(call.address, call._encode_transaction_data()))

    def last(party) -> tuple[int, bool, bytes]:
        attempts, ok, returned = party.functions.lastReentry().call()
        return int(attempts), bool(ok), bytes(returned)

    def escrow_holds_exactly_the_books() -> None:
        b = escrow.balances(HOSTILE_AGREEMENT)
        assert int(token.functions.balanceOf(escrow.address).call()) == b.deposited + b.claimable

    # deposit: the token calls the supplier mid-transferFrom, which tries to withdraw
    armed(sup_party, fn.withdraw(HOSTILE_AGREEMENT, 100_000))
    act(sup_party, fn.deposit(HOSTILE_AGREEMENT, 300_000))
    assert last(sup_party) == (1, False, REENTRANT)
    assert escrow.balances(HOSTILE_AGREEMENT).deposited == 300_000
    escrow_holds_exactly_the_books()

    # withdraw: re-entering withdraw for the same excess again is blocked
    armed(sup_party, fn.withdraw(HOSTILE_AGREEMENT, 200_000))
    act(sup_party, fn.withdraw(HOSTILE_AGREEMENT, 200_000))
    assert last(sup_party) == (2, False, REENTRANT)
    assert escrow.balances(HOSTILE_AGREEMENT).deposited == 100_000
    assert int(token.functions.balanceOf(sup_party.address).call()) == 200_000
    escrow_holds_exactly_the_books()

    # claim: the OEM party re-enters claim while receiving its penalty
    escrow.link_cases(admin.address)  # the admin stands in for the case contract here
    escrow.open_case_for(HOSTILE_AGREEMENT, CASE)
    escrow.close_case(HOSTILE_AGREEMENT, CASE, 1)
    armed(oem_party, fn.claim(HOSTILE_AGREEMENT))
    act(oem_party, fn.claim(HOSTILE_AGREEMENT))
    assert last(oem_party) == (1, False, REENTRANT)
    assert int(token.functions.balanceOf(oem_party.address).call()) == 50_000
    b = escrow.balances(HOSTILE_AGREEMENT)
    assert (b.deposited, b.claimable) == (50_000, 0)
    escrow_holds_exactly_the_books()
