"""AgreementRegistry: templates (publish, immutability, validation) and EIP-712 agreements (activation,
replay protection, signer rotation, party checks, lifecycle)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import test_agreements_support as support
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from test_agreements_support import (
    AGREEMENT_ID,
    DAY,
    T0,
    TEMPLATE_ID,
    AgreementEnv,
    default_template,
)

from chain.agreements import (
    AgreementState,
    TemplateField,
    Tier,
    agreement_digest,
    agreement_typed_data,
    sign_agreement,
)
from chain.cases import compact_signature
from chain.errors import InvalidInput

ZERO = "0x" + "00" * 20
OEM, SUPPLIER, LAB = 1, 2, 3

# shared fixtures (pytest finds them as module attributes)
active = support.active
agreements_session = support.agreements_session
env = support.env


# ----------------------------------------------------------------------------------------------- templates


def test_published_template_reads_back_with_publisher_and_time(env: AgreementEnv) -> None:
    terms, oem, published_at = env.client().template(env.addr("oem"), TEMPLATE_ID, 1)
    assert terms == env.template
    assert oem == env.addr("oem")
    assert published_at == T0
    assert env.client().latest_version(env.addr("oem"), TEMPLATE_ID) == 1
    assert env.client().templates_published(env.addr("oem")) == 1
    assert env.client().templates_published(env.addr("supplier")) == 0


def test_new_version_is_published_with_event(env: AgreementEnv) -> None:
    v2 = default_template(version=2, document_hash=keccak(text="v2"), deposit_base=2_000_000)
    env.set_time(T0 + 50)
    result = env.client("oem").publish_template(v2)
    assert result.event("TemplatePublished") == {
        "templateId": TEMPLATE_ID,
        "version": 2,
        "oem": env.addr("oem"),
        "documentHash": keccak(text="v2"),
        "depositBase": 2_000_000,
        "initialRatioBps": 1_000,
        "formulaVersion": 1,
    }
    assert env.client().template(env.addr("oem"), TEMPLATE_ID, 2) == (v2, env.addr("oem"), T0 + 50)
    assert env.client().template(env.addr("oem"), TEMPLATE_ID, 1)[0] == env.template  # v1 untouched
    assert env.client().latest_version(env.addr("oem"), TEMPLATE_ID) == 2
    assert env.client().templates_published(env.addr("oem")) == 2


def test_republishing_same_id_and_version_reverts(env: AgreementEnv, expect_revert) -> None:
    changed = default_template(document_hash=keccak(text="tampered"))
    with expect_revert("TemplateExists", templateId=TEMPLATE_ID, version=1):
        env.client("oem").publish_template(changed)
    assert env.client().template(env.addr("oem"), TEMPLATE_ID, 1)[0] == env.template


def test_older_version_after_newer_reverts(env: AgreementEnv, expect_revert) -> None:
    env.client("oem").publish_template(default_template(version=5))
    with expect_revert("VersionNotIncreasing", templateId=TEMPLATE_ID, latest=5, version=3):
        env.client("oem").publish_template(default_template(version=3))


@pytest.mark.parametrize("role, kind", [("supplier", OEM), ("stranger", OEM), ("lab", OEM)])
def test_only_active_oem_publishes(env: AgreementEnv, expect_revert, role: str, kind: int) -> None:
    with expect_revert("InactiveParty", account=env.addr(role), kind=kind):
        env.client(role).publish_template(default_template(template_id=keccak(text="other")))


def test_deactivated_oem_cannot_publish(env: AgreementEnv, expect_revert) -> None:
    env.chain.parties("admin").deactivate(env.addr("oem"))
    with expect_revert("InactiveParty", account=env.addr("oem"), kind=OEM):
        env.client("oem").publish_template(default_template(version=2))


@pytest.mark.parametrize(
    "changes, field, value",
    [
        ({"document_hash": b"\x00" * 32}, TemplateField.DOCUMENT_HASH, 0),
        ({"deposit_base": 0}, TemplateField.DEPOSIT_BASE, 0),
        ({"min_ratio_bps": 0, "tiers": (Tier(0, 1_000),)}, TemplateField.MIN_RATIO_BPS, 0),
        ({"max_ratio_bps": 400}, TemplateField.MAX_RATIO_BPS, 400),
        ({"initial_ratio_bps": 3_001}, TemplateField.INITIAL_RATIO_BPS, 3_001),
        ({"initial_ratio_bps": 499}, TemplateField.INITIAL_RATIO_BPS, 499),
        ({"max_step_bps": 0}, TemplateField.MAX_STEP_BPS, 0),
    ],
)
def test_invalid_template_fields_revert_naming_the_field(
    env: AgreementEnv, expect_revert, changes: dict, field: TemplateField, value: int
) -> None:
    with expect_revert("InvalidTemplateField", templateId=TEMPLATE_ID, field=field, value=value):
        env.client("oem").publish_template(default_template(version=2, **changes))


@pytest.mark.parametrize(
    "tiers, index, min_score, ratio",
    [
        ((Tier(10, 1_000),), 0, 10, 1_000),  # first tier must start at 0
        ((Tier(0, 1_000), Tier(50, 900), Tier(50, 800)), 2, 50, 800),  # not increasing
        ((Tier(0, 1_000), Tier(101, 900)), 1, 101, 900),  # score above 100
        ((Tier(0, 1_000), Tier(60, 3_500)), 1, 60, 3_500),  # ratio above max
        ((Tier(0, 400),), 0, 0, 400),  # ratio below min
    ],
)
def test_invalid_tiers_revert_with_index_and_values(
    env: AgreementEnv, expect_revert, tiers: tuple, index: int, min_score: int, ratio: int
) -> None:
    with expect_revert("InvalidTier", templateId=TEMPLATE_ID, index=index, minScore=min_score, ratioBps=ratio):
        env.client("oem").publish_template(default_template(version=2, tiers=tiers))


def test_unsupported_formula_reverts(env: AgreementEnv, expect_revert) -> None:
    with expect_revert("UnsupportedFormula", given=2, supported=1):
        env.client("oem").publish_template(default_template(version=2, formula_version=2))


def test_tier_count_checked_in_python() -> None:
    with pytest.raises(InvalidInput, match="tiers"):
        default_template(tiers=tuple(Tier(i * 10, 1_000) for i in range(9)))
    with pytest.raises(InvalidInput, match="tiers"):
        default_template(tiers=())


def test_unknown_template_view_reverts(env: AgreementEnv, expect_revert) -> None:
    with expect_revert("UnknownTemplate", templateId=TEMPLATE_ID, version=7):
        env.client().template(env.addr("oem"), TEMPLATE_ID, 7)
    assert env.client().latest_version(env.addr("oem"), keccak(text="nothing")) == 0


# ----------------------------------------------------------------------------------------------- EIP-712


def test_python_digest_equals_contract_and_eth_account(env: AgreementEnv) -> None:
    c = env.client()
    terms = env.terms()
    ours = agreement_digest(terms, chain_id=c.chain_id, verifying_contract=c.address)
    signable = encode_typed_data(
        full_message=agreement_typed_data(terms, chain_id=c.chain_id, verifying_contract=c.address)
    )
    theirs = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert ours == c.digest(terms) == theirs


def test_activation_sets_state_event_and_consumes_nonces(env: AgreementEnv) -> None:
    terms = env.terms()
    result = env.activate(terms, relayer="relayer")
    assert result.event("AgreementActivated") == {
        "agreementId": AGREEMENT_ID,
        "templateId": TEMPLATE_ID,
        "supplier": env.addr("supplier"),
        "templateVersion": 1,
        "oem": env.addr("oem"),
        "lab": env.addr("lab"),
        "ratioBps": 1_000,
        "topUpDeadline": T0 + 14 * DAY,
        "relayer": env.addr("relayer"),
    }
    a = env.client().agreement(AGREEMENT_ID)
    assert (a.state, a.late_top_up, a.template_id, a.template_version) == (AgreementState.ACTIVE, False, TEMPLATE_ID, 1)
    assert (a.oem, a.supplier, a.lab) == (env.addr("oem"), env.addr("supplier"), env.addr("lab"))
    assert (a.ratio_bps, a.activated_at, a.top_up_deadline, a.terminated_at, a.next_quarter) == (
        1_000,
        T0,
        T0 + 14 * DAY,
        0,
        0,
    )
    assert env.client().nonces(env.addr("oem")) == 1
    assert env.client().nonces(env.addr("supplier")) == 1


def test_plain_eth_account_signatures_activate(env: AgreementEnv) -> None:
    c = env.client("stranger")
    terms = env.terms(lab=ZERO)
    message = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Agreement": [
                {"name": "agreementId", "type": "bytes32"},
                {"name": "templateId", "type": "bytes32"},
                {"name": "templateVersion", "type": "uint32"},
                {"name": "oem", "type": "address"},
                {"name": "supplier", "type": "address"},
                {"name": "lab", "type": "address"},
                {"name": "oemNonce", "type": "uint256"},
                {"name": "supplierNonce", "type": "uint256"},
                {"name": "deadline", "type": "uint64"},
            ],
        },
        "primaryType": "Agreement",
        "domain": {
            "name": "qcn AgreementRegistry",
            "version": "1",
            "chainId": c.chain_id,
            "verifyingContract": c.address,
        },
        "message": {
            "agreementId": AGREEMENT_ID,
            "templateId": TEMPLATE_ID,
            "templateVersion": 1,
            "oem": env.addr("oem"),
            "supplier": env.addr("supplier"),
            "lab": ZERO,
            "oemNonce": 0,
            "supplierNonce": 0,
            "deadline": T0 + DAY,
        },
    }
    oem_sig = Account.sign_typed_data(env.accounts["oem"].key, full_message=message).signature
    supplier_sig = Account.sign_typed_data(env.accounts["supplier"].key, full_message=message).signature
    result = c.activate(terms, bytes(oem_sig), bytes(supplier_sig))
    assert result.event("AgreementActivated")["relayer"] == env.addr("stranger")
    assert c.agreement(AGREEMENT_ID).state == AgreementState.ACTIVE
    assert c.agreement(AGREEMENT_ID).lab == ZERO


def test_replayed_signatures_revert_with_invalid_nonce(env: AgreementEnv, expect_revert) -> None:
    terms = env.terms()
    c = env.client("relayer")
    oem_sig, sup_sig = c.sign(terms, env.accounts["oem"].key), c.sign(terms, env.accounts["supplier"].key)
    c.activate(terms, oem_sig, sup_sig)
    with expect_revert("InvalidNonce", party=env.addr("oem"), expected=1, given=0):
        c.activate(terms, oem_sig, sup_sig)


def test_stale_supplier_nonce_reverts(env: AgreementEnv, expect_revert) -> None:
    with expect_revert("InvalidNonce", party=env.addr("supplier"), expected=0, given=3):
        env.activate(env.terms(supplier_nonce=3))


def test_signature_for_other_chain_recovers_wrong_signer(env: AgreementEnv, expect_revert) -> None:
    c = env.client("relayer")
    terms = env.terms()
    foreign = sign_agreement(terms, env.accounts["oem"].key, chain_id=c.chain_id + 1, verifying_contract=c.address)
    recovered = Account._recover_hash(c.digest(terms), signature=foreign)
    assert recovered != env.addr("oem")
    with expect_revert("WrongSigner", party=env.addr("oem"), expectedSigner=env.addr("oem"), recovered=recovered):
        c.activate(terms, foreign, c.sign(terms, env.accounts["supplier"].key))
    assert c.nonces(env.addr("oem")) == 0  # nothing consumed


def test_signature_for_other_contract_recovers_wrong_signer(env: AgreementEnv, expect_revert) -> None:
    c = env.client("relayer")
    terms = env.terms()
    foreign = sign_agreement(
        terms, env.accounts["supplier"].key, chain_id=c.chain_id, verifying_contract=env.addr("lab")
    )
    recovered = Account._recover_hash(c.digest(terms), signature=foreign)
    with expect_revert(
        "WrongSigner", party=env.addr("supplier"), expectedSigner=env.addr("supplier"), recovered=recovered
    ):
        c.activate(terms, c.sign(terms, env.accounts["oem"].key), foreign)


def test_expired_deadline_reverts(env: AgreementEnv, expect_revert) -> None:
    env.set_time(T0 + DAY + 1)
    with expect_revert("SignatureExpired", deadline=T0 + DAY, at=T0 + DAY + 1):
        env.activate(env.terms())


def test_deadline_second_itself_is_valid(env: AgreementEnv) -> None:
    env.set_time(T0 + DAY)
    env.activate(env.terms())
    assert env.client().agreement(AGREEMENT_ID).activated_at == T0 + DAY


def test_wrong_signer_reverts_with_recovered_address(env: AgreementEnv, expect_revert) -> None:
    c = env.client("relayer")
    terms = env.terms()
    with expect_revert(
        "WrongSigner", party=env.addr("supplier"), expectedSigner=env.addr("supplier"), recovered=env.addr("stranger")
    ):
        c.activate(terms, c.sign(terms, env.accounts["oem"].key), c.sign(terms, env.accounts["stranger"].key))


def test_malformed_signature_reverts_with_zero_recovered(env: AgreementEnv, expect_revert) -> None:
    c = env.client("relayer")
    terms = env.terms()
    with expect_revert("WrongSigner", party=env.addr("oem"), expectedSigner=env.addr("oem"), recovered=ZERO):
        c.activate(terms, b"\x01" * 63, c.sign(terms, env.accounts["supplier"].key))


def test_agreements_accept_compact_signatures_like_cases(env: AgreementEnv) -> None:
    """One signature check (contracts/lib/SignatureCheck.sol) for agreements and cases: the 64-byte
    ERC-2098 form the case contract accepted is accepted for agreements too (the copies had diverged)."""
    c = env.client("relayer")
    terms = env.terms()
    oem_sig = compact_signature(c.sign(terms, env.accounts["oem"].key))
    assert len(oem_sig) == 64
    c.activate(terms, oem_sig, c.sign(terms, env.accounts["supplier"].key))
    assert c.agreement(AGREEMENT_ID).oem == env.addr("oem")


def test_signer_rotation_is_followed(env: AgreementEnv, expect_revert) -> None:
    env.chain.parties("supplier").set_signer(env.addr("supplier"), env.addr("signer2"))
    c = env.client("relayer")
    terms = env.terms()
    oem_sig = c.sign(terms, env.accounts["oem"].key)
    with expect_revert(
        "WrongSigner", party=env.addr("supplier"), expectedSigner=env.addr("signer2"), recovered=env.addr("supplier")
    ):
        c.activate(terms, oem_sig, c.sign(terms, env.accounts["supplier"].key))
    c.activate(terms, oem_sig, c.sign(terms, env.accounts["signer2"].key))
    assert c.agreement(AGREEMENT_ID).supplier == env.addr("supplier")


def test_inactive_supplier_reverts(env: AgreementEnv, expect_revert) -> None:
    env.chain.parties("admin").deactivate(env.addr("supplier"))
    with expect_revert("InactiveParty", account=env.addr("supplier"), kind=SUPPLIER):
        env.activate(env.terms())


def test_oem_as_supplier_reverts(env: AgreementEnv, expect_revert) -> None:
    terms = env.terms(supplier=env.addr("oem2"), supplier_nonce=0)
    c = env.client("relayer")
    with expect_revert("InactiveParty", account=env.addr("oem2"), kind=SUPPLIER):
        c.activate(terms, c.sign(terms, env.accounts["oem"].key), c.sign(terms, env.accounts["oem2"].key))


def test_deactivated_oem_cannot_sign(env: AgreementEnv, expect_revert) -> None:
    env.chain.parties("admin").deactivate(env.addr("oem"))
    with expect_revert("InactiveParty", account=env.addr("oem"), kind=OEM):
        env.activate(env.terms())


def test_lab_must_be_a_lab(env: AgreementEnv, expect_revert) -> None:
    with expect_revert("InactiveParty", account=env.addr("stranger"), kind=LAB):
        env.activate(env.terms(lab=env.addr("stranger")))


def test_lab_accreditation_must_be_valid(env: AgreementEnv, expect_revert) -> None:
    expiry = env.chain.lab_expiry
    env.set_time(expiry + 1)
    with expect_revert("LabAccreditationExpired", lab=env.addr("lab"), expiry=expiry, at=expiry + 1):
        env.activate(env.terms(deadline=expiry + 10))


def test_unknown_template_reverts(env: AgreementEnv, expect_revert) -> None:
    with expect_revert("UnknownTemplate", templateId=TEMPLATE_ID, version=9):
        env.activate(env.terms(template_version=9))


def test_oem_must_be_template_publisher(env: AgreementEnv, expect_revert) -> None:
    # template ids live in their OEM's namespace: another OEM naming the id finds no template of its own
    with expect_revert("UnknownTemplate", templateId=TEMPLATE_ID, version=1):
        env.activate(env.terms(oem=env.addr("oem2"), oem_nonce=0))


def test_template_ids_are_per_oem_so_nobody_can_squat_them(env: AgreementEnv) -> None:
    """Low finding: a global template namespace let one OEM squat another's id (TemplateExists)."""
    squat = replace(env.template, version=1, document_hash=keccak(text="squatter"))
    env.client("oem2").publish_template(squat)  # same id and version, another OEM: its own template
    assert env.client().template(env.addr("oem2"), TEMPLATE_ID, 1)[0] == squat
    assert env.client().template(env.addr("oem"), TEMPLATE_ID, 1)[0] == env.template
    assert env.client().latest_version(env.addr("oem2"), TEMPLATE_ID) == 1


def test_agreement_id_cannot_be_reused_or_zero(env: AgreementEnv, expect_revert) -> None:
    env.activate()
    with expect_revert("AgreementExists", agreementId=AGREEMENT_ID):
        env.activate(env.terms())
    with expect_revert("ZeroAgreementId"):
        env.activate(env.terms(agreement_id=b"\x00" * 32))


def test_unknown_agreement_reads_as_none(env: AgreementEnv, expect_revert) -> None:
    a = env.client().agreement(keccak(text="nope"))
    assert a.state == AgreementState.NONE
    with expect_revert("UnknownAgreement", agreementId=keccak(text="nope")):
        env.client().balances(keccak(text="nope"))


# ----------------------------------------------------------------------------------------------- lifecycle


def test_suspend_requires_late_flag_and_oem(active: AgreementEnv, expect_revert) -> None:
    with expect_revert("Unauthorized", agreementId=AGREEMENT_ID, caller=active.addr("supplier")):
        active.client("supplier").suspend(AGREEMENT_ID)
    with expect_revert("NotFlagged", agreementId=AGREEMENT_ID):
        active.client("oem").suspend(AGREEMENT_ID)


def test_resume_only_from_suspended(active: AgreementEnv, expect_revert) -> None:
    with expect_revert("AgreementNotActive", agreementId=AGREEMENT_ID, state=1):
        active.client("oem").resume(AGREEMENT_ID)


def test_terminate_by_supplier_binds_deposit_for_wind_down(active: AgreementEnv, expect_revert) -> None:
    active.client("supplier").deposit(AGREEMENT_ID, 100_000)
    active.set_time(T0 + 100)
    result = active.client("supplier").terminate(AGREEMENT_ID)
    wind_down = (5 + 10 + 7) * DAY
    assert result.event("AgreementTerminated") == {
        "agreementId": AGREEMENT_ID,
        "by": active.addr("supplier"),
        "windDownEnds": T0 + 100 + wind_down,
    }
    a = active.client().agreement(AGREEMENT_ID)
    assert (a.state, a.terminated_at) == (AgreementState.TERMINATED, T0 + 100)
    assert active.client().balances(AGREEMENT_ID).required == 100_000  # still bound
    with expect_revert("ExceedsExcess", agreementId=AGREEMENT_ID, amount=1, excess=0):
        active.client("supplier").withdraw(AGREEMENT_ID, 1)
    active.set_time(T0 + 100 + wind_down)
    assert active.client().balances(AGREEMENT_ID).required == 0
    active.client("supplier").withdraw(AGREEMENT_ID, 100_000)
    assert active.client().balances(AGREEMENT_ID).deposited == 0
    with expect_revert("AgreementNotActive", agreementId=AGREEMENT_ID, state=3):
        active.client("oem").terminate(AGREEMENT_ID)
    with expect_revert("AgreementNotActive", agreementId=AGREEMENT_ID, state=3):
        active.client("supplier").deposit(AGREEMENT_ID, 5)


def test_terminate_by_stranger_reverts(active: AgreementEnv, expect_revert) -> None:
    with expect_revert("Unauthorized", agreementId=AGREEMENT_ID, caller=active.addr("stranger")):
        active.client("stranger").terminate(AGREEMENT_ID)


def test_version_and_interfaces(env: AgreementEnv) -> None:
    c = env.client()
    assert c.version() == "2.0.0"
    assert c.contract.functions.FORMULA_VERSION().call() == 1
    assert c.contract.functions.QUARTER_SECONDS().call() == 91 * DAY
    assert c.token() == env.token.address
    assert c.contract.functions.partyRegistry().call() == env.chain.deployment.registry
    assert c.contract.functions.supportsInterface(bytes.fromhex("01ffc9a7")).call() is True
    assert c.contract.functions.supportsInterface(bytes.fromhex("deadbeef")).call() is False


def test_template_with_changed_tiers_is_a_new_version(env: AgreementEnv) -> None:
    v2 = replace(env.template, version=2, tiers=(Tier(0, 2_000), Tier(90, 600)))
    env.client("oem").publish_template(v2)
    assert env.client().template(env.addr("oem"), TEMPLATE_ID, 2)[0].tiers == (Tier(0, 2_000), Tier(90, 600))
    assert env.client().template(env.addr("oem"), TEMPLATE_ID, 1)[0].tiers == env.template.tiers
