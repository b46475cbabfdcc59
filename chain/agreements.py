"""Typed client, EIP-712 helpers and pure-Python mirrors of the agreement contracts (``AgreementRegistry``).

The deployed ``AgreementRegistry`` holds OEM templates, EIP-712 agreements signed by OEM and supplier,
per-quarter counters, the quarterly evaluation and the supplier deposit escrow (ERC-20). This module gives:

- frozen dataclasses for what goes in and comes out (``TemplateTerms``, ``AgreementTerms``, ``Agreement``,
  ``QuarterCounters``, ``Balances``, ``TxResult``);
- EIP-712 helpers: ``agreement_typed_data`` (the full message dict any EIP-712 wallet / ``eth_account``
  signs), ``agreement_digest`` (computed here with keccak only) and ``sign_agreement``;
- the evaluation formula in Python (``score_of``, ``next_ratio``, ``required_deposit``), identical to the
  contract's so the gateway can preview an evaluation;
- ``AgreementRegistryClient``: deploy, transactions signed locally with an ``eth_account`` account, views,
  and event decoding. Reverts come back as ``chain.errors.ContractRevert`` with the decoded custom error.

Errors: everything derives from ``chain.errors.ChainError``; invalid input built here raises
``chain.errors.InvalidInput`` (also a ``ValueError``) naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from eth_utils import keccak, to_checksum_address

from chain.abi import bytes32 as _b32
from chain.abi import eip712_domain_separator
from chain.client import ContractClient, RoleClient, TxResult
from chain.contracts import load_artifact
from chain.errors import InvalidInput
from chain.tx import TxSender

if TYPE_CHECKING:  # web3 and eth-account load on first use (the gateway starts without them)
    pass

__all__ = [
    "AGREEMENT_REGISTRY",
    "AGREEMENT_REGISTRY_HARNESS",
    "AGREEMENT_TYPE",
    "BPS",
    "EIP712_NAME",
    "EIP712_VERSION",
    "FORMULA_VERSION",
    "MAX_TIERS",
    "QUARTER_SECONDS",
    "TEST_TOKEN",
    "Agreement",
    "AgreementRegistryClient",
    "AgreementState",
    "AgreementTerms",
    "Balances",
    "ContractClient",
    "NcClass",
    "QuarterCounters",
    "TemplateField",
    "TemplateTerms",
    "Tier",
    "TxResult",
    "agreement_digest",
    "agreement_typed_data",
    "deploy_contract",
    "deploy_test_token",
    "domain_separator",
    "next_ratio",
    "required_deposit",
    "score_of",
    "sign_agreement",
]

EIP712_NAME = "qcn AgreementRegistry"
EIP712_VERSION = "1"
FORMULA_VERSION = 1
QUARTER_SECONDS = 7_862_400  # 91 days; quarter q of an agreement starts at activatedAt + q * QUARTER_SECONDS
BPS = 10_000
MAX_TIERS = 8
AGREEMENT_REGISTRY = "AgreementRegistry"
AGREEMENT_REGISTRY_HARNESS = "AgreementRegistryHarness"  # test only: settable clock
TEST_TOKEN = "TestToken"  # noqa: S105 - artifact name of the dev-chain token (open mint), not a secret
_DEPLOY_GAS = 8_000_000
_ZERO_ADDRESS = "0x" + "00" * 20

AGREEMENT_TYPE: list[dict[str, str]] = [
    {"name": "agreementId", "type": "bytes32"},
    {"name": "templateId", "type": "bytes32"},
    {"name": "templateVersion", "type": "uint32"},
    {"name": "oem", "type": "address"},
    {"name": "supplier", "type": "address"},
    {"name": "lab", "type": "address"},
    {"name": "oemNonce", "type": "uint256"},
    {"name": "supplierNonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
]
_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_AGREEMENT_TYPEHASH = keccak(text="Agreement(" + ",".join(f"{f['type']} {f['name']}" for f in AGREEMENT_TYPE) + ")")


class AgreementState(IntEnum):
    """Lifecycle of an agreement (``NONE`` = unknown id)."""

    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    TERMINATED = 3


class TemplateField(IntEnum):
    """Template field named by the ``InvalidTemplateField`` revert."""

    DOCUMENT_HASH = 0
    DEPOSIT_BASE = 1
    MIN_RATIO_BPS = 2
    MAX_RATIO_BPS = 3
    INITIAL_RATIO_BPS = 4
    MAX_STEP_BPS = 5
    TIER_COUNT = 6
    TEMPLATE_COUNT = 7
    SUPPLIER_RESPONSE_SECONDS = 8
    LAB_VERDICT_SECONDS = 9
    DISPUTE_WINDOW_SECONDS = 10
    TOP_UP_GRACE_SECONDS = 11


class NcClass(IntEnum):
    """Class of a confirmed non-conformity."""

    CRITICAL = 0
    MAJOR = 1
    MINOR = 2


@dataclass(frozen=True)
class Tier:
    """Scores >= ``min_score`` map to ``ratio_bps`` (unless a later tier applies)."""

    min_score: int
    ratio_bps: int


@dataclass(frozen=True)
class TemplateTerms:
    """The numbers of a template the chain enforces (see ``IAgreementRegistry.TemplateTerms``)."""

    template_id: bytes
    version: int
    document_hash: bytes
    deposit_base: int
    initial_ratio_bps: int
    min_ratio_bps: int
    max_ratio_bps: int
    max_step_bps: int
    tiers: tuple[Tier, ...]
    penalty_critical: int
    penalty_major: int
    penalty_minor: int
    penalty_per_ppm: int
    ppm_target: int
    supplier_response_seconds: int
    lab_verdict_seconds: int
    dispute_window_seconds: int
    top_up_grace_seconds: int
    formula_version: int = FORMULA_VERSION
    lab_fee_cap: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "template_id", _b32(self.template_id, "template_id"))
        object.__setattr__(self, "document_hash", _b32(self.document_hash, "document_hash"))
        object.__setattr__(self, "tiers", tuple(self.tiers))
        if not 1 <= len(self.tiers) <= MAX_TIERS:
            raise InvalidInput("tiers", f"1..{MAX_TIERS} tiers required, got {len(self.tiers)}")

    def to_abi(self) -> tuple[Any, ...]:
        """The ABI tuple of ``TemplateTerms`` (field order of the Solidity struct)."""
        return (
            self.template_id,
            self.version,
            self.document_hash,
            self.deposit_base,
            self.initial_ratio_bps,
            self.min_ratio_bps,
            self.max_ratio_bps,
            self.max_step_bps,
            [(t.min_score, t.ratio_bps) for t in self.tiers],
            self.penalty_critical,
            self.penalty_major,
            self.penalty_minor,
            self.penalty_per_ppm,
            self.ppm_target,
            self.supplier_response_seconds,
            self.lab_verdict_seconds,
            self.dispute_window_seconds,
            self.top_up_grace_seconds,
            self.formula_version,
            self.lab_fee_cap,
        )

    @classmethod
    def from_abi(cls, value: Sequence[Any]) -> TemplateTerms:
        """Build from the ABI tuple a view returns."""
        v = list(value)
        return cls(
            template_id=bytes(v[0]),
            version=int(v[1]),
            document_hash=bytes(v[2]),
            deposit_base=int(v[3]),
            initial_ratio_bps=int(v[4]),
            min_ratio_bps=int(v[5]),
            max_ratio_bps=int(v[6]),
            max_step_bps=int(v[7]),
            tiers=tuple(Tier(int(t[0]), int(t[1])) for t in v[8]),
            penalty_critical=int(v[9]),
            penalty_major=int(v[10]),
            penalty_minor=int(v[11]),
            penalty_per_ppm=int(v[12]),
            ppm_target=int(v[13]),
            supplier_response_seconds=int(v[14]),
            lab_verdict_seconds=int(v[15]),
            dispute_window_seconds=int(v[16]),
            top_up_grace_seconds=int(v[17]),
            formula_version=int(v[18]),
            lab_fee_cap=int(v[19]),
        )


@dataclass(frozen=True)
class AgreementTerms:
    """What OEM and supplier sign (EIP-712 primary type ``Agreement``)."""

    agreement_id: bytes
    template_id: bytes
    template_version: int
    oem: str
    supplier: str
    lab: str
    oem_nonce: int
    supplier_nonce: int
    deadline: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "agreement_id", _b32(self.agreement_id, "agreement_id"))
        object.__setattr__(self, "template_id", _b32(self.template_id, "template_id"))
        for name in ("oem", "supplier", "lab"):
            object.__setattr__(self, name, to_checksum_address(getattr(self, name) or _ZERO_ADDRESS))

    def to_abi(self) -> tuple[Any, ...]:
        """The ABI tuple of ``AgreementTerms``."""
        return (
            self.agreement_id,
            self.template_id,
            self.template_version,
            self.oem,
            self.supplier,
            self.lab,
            self.oem_nonce,
            self.supplier_nonce,
            self.deadline,
        )

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` object (field names of the Solidity struct)."""
        return {f["name"]: v for f, v in zip(AGREEMENT_TYPE, self.to_abi(), strict=True)}


@dataclass(frozen=True)
class Agreement:
    """An agreement read back from the chain."""

    state: AgreementState
    late_top_up: bool
    template_id: bytes
    template_version: int
    oem: str
    supplier: str
    lab: str
    ratio_bps: int
    activated_at: int
    top_up_deadline: int
    terminated_at: int
    next_quarter: int
    bound: int = 0
    debt: int = 0


@dataclass(frozen=True)
class QuarterCounters:
    """Counters of one agreement-quarter."""

    batches: int = 0
    rejected: int = 0
    nc_critical: int = 0
    nc_major: int = 0
    nc_minor: int = 0
    deadline_breaches: int = 0

    def to_abi(self) -> tuple[int, ...]:
        """The ABI tuple of ``QuarterCounters``."""
        return (self.batches, self.rejected, self.nc_critical, self.nc_major, self.nc_minor, self.deadline_breaches)


@dataclass(frozen=True)
class Balances:
    """Escrow balances of one agreement (token units)."""

    deposited: int
    claimable: int
    required: int
    bound: int = 0
    debt: int = 0


def score_of(counters: QuarterCounters) -> int:
    """Formula-1 quarterly score in 0..100.

    ``100 - floor(50 * rejected / batches) - 25 * critical - 10 * major - 3 * minor - 5 * breaches``,
    floored at 0 (the rejection term is 0 without batches). Example: 20 batches, 2 rejected, one major
    non-conformity -> 100 - 5 - 10 = 85.
    """
    deduction = 25 * counters.nc_critical + 10 * counters.nc_major + 3 * counters.nc_minor
    deduction += 5 * counters.deadline_breaches
    if counters.batches:
        deduction += (50 * min(counters.rejected, counters.batches)) // counters.batches
    return max(0, 100 - deduction)


def next_ratio(template: TemplateTerms, old_ratio_bps: int, score: int) -> int:
    """Ratio after a quarter with ``score``: the tier target, clamped to [min, max] and old +- max step."""
    target = 0
    for tier in template.tiers:
        if score < tier.min_score:
            break
        target = tier.ratio_bps
    target = min(max(target, template.min_ratio_bps), template.max_ratio_bps)
    step = template.max_step_bps
    return min(max(target, old_ratio_bps - step), old_ratio_bps + step)


def required_deposit(deposit_base: int, ratio_bps: int) -> int:
    """Required deposit ``base * ratio / 10_000`` (floor), as the contract computes it."""
    return deposit_base * ratio_bps // BPS


# --------------------------------------------------------------------------- EIP-712


def agreement_typed_data(terms: AgreementTerms, *, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """Full EIP-712 message (``types``, ``primaryType``, ``domain``, ``message``) for any EIP-712 signer.

    Pass it as ``full_message`` to ``eth_account.messages.encode_typed_data`` or to a wallet's
    ``eth_signTypedData_v4``.
    """
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "Agreement": AGREEMENT_TYPE},
        "primaryType": "Agreement",
        "domain": {
            "name": EIP712_NAME,
            "version": EIP712_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(verifying_contract),
        },
        "message": terms.message(),
    }


def domain_separator(*, chain_id: int, verifying_contract: str) -> bytes:
    """EIP-712 domain separator of an ``AgreementRegistry`` at ``verifying_contract`` on ``chain_id``."""
    return eip712_domain_separator(
        name=EIP712_NAME, version=EIP712_VERSION, chain_id=chain_id, verifying_contract=verifying_contract
    )


def agreement_digest(terms: AgreementTerms, *, chain_id: int, verifying_contract: str) -> bytes:
    """The 32-byte EIP-712 digest both parties sign, computed with keccak only (no wallet library)."""
    from eth_abi import encode as abi_encode  # eth-abi loads on first use, not at start

    struct_hash = keccak(
        abi_encode(
            [
                "bytes32",
                "bytes32",
                "bytes32",
                "uint32",
                "address",
                "address",
                "address",
                "uint256",
                "uint256",
                "uint64",
            ],
            [_AGREEMENT_TYPEHASH, *terms.to_abi()],
        )
    )
    return keccak(
        b"\x19\x01" + domain_separator(chain_id=chain_id, verifying_contract=verifying_contract) + struct_hash
    )


def sign_agreement(terms: AgreementTerms, private_key: bytes | str, *, chain_id: int, verifying_contract: str) -> bytes:
    """65-byte signature (r || s || v, v in {27, 28}) of the agreement digest with ``private_key``."""
    digest = agreement_digest(terms, chain_id=chain_id, verifying_contract=verifying_contract)
    from eth_account import Account

    signed = Account.unsafe_sign_hash(digest, private_key)
    return bytes(signed.signature)


# --------------------------------------------------------------------------- client


def deploy_contract(sender: TxSender, name: str, *args: Any, gas: int = _DEPLOY_GAS) -> str:
    """Deploy artifact ``name`` with constructor ``args`` signed by ``sender``; return its address."""
    artifact = load_artifact(name)
    sent = sender.deploy(artifact.abi, artifact.bytecode, *args, gas=gas)
    return str(to_checksum_address(str(sent.receipt["contractAddress"])))


def deploy_test_token(sender: TxSender) -> str:
    """Deploy the dev-chain ``TestToken`` (18 decimals, open mint); return its address."""
    return deploy_contract(sender, TEST_TOKEN)


class AgreementRegistryClient(RoleClient):
    """Typed access to a deployed ``AgreementRegistry`` (or its test harness).

    Writes are sent by the ``sender`` given at construction (``with_sender`` gives a copy sending as
    someone else) and return a ``TxResult`` with this contract's decoded events. Reverts raise
    ``chain.errors.ContractRevert`` whose ``name``/``arguments`` are the contract's custom error.
    """

    DEFAULT_ARTIFACT = AGREEMENT_REGISTRY

    @classmethod
    def deploy(
        cls,
        sender: TxSender,
        *,
        party_registry: str,
        token: str,
        linker: str | None = None,
        harness: bool = False,
    ) -> AgreementRegistryClient:
        """Deploy an ``AgreementRegistry`` (``harness=True``: the settable-clock test harness).

        ``linker`` (default: the sender) may link the case contract once (``link_cases``); the contract has
        no other operator power.
        """
        name = AGREEMENT_REGISTRY_HARNESS if harness else AGREEMENT_REGISTRY
        address = deploy_contract(sender, name, linker or sender.address, party_registry, token)
        return cls(sender.w3, address, sender, artifact=name)

    # ----------------------------------------------------------------- templates
    def publish_template(self, terms: TemplateTerms) -> TxResult:
        """OEM: publish an immutable template version. Event ``TemplatePublished``."""
        return self._tx(self.contract.functions.publishTemplate(terms.to_abi()))

    def link_cases(self, cases: str) -> TxResult:
        """Deployer, once: link the case contract (the only caller of the case functions)."""
        return self._tx(self.contract.functions.linkCases(to_checksum_address(cases)))

    def cases_contract(self) -> str:
        """The linked case contract (zero address until linked)."""
        return str(to_checksum_address(self._call(self.contract.functions.casesContract())))

    def template(self, oem: str, template_id: bytes, version: int) -> tuple[TemplateTerms, str, int]:
        """(terms, oem, published_at) of ``oem``'s template; ``UnknownTemplate`` revert otherwise."""
        fn = self.contract.functions.template(to_checksum_address(oem), template_id, version)
        terms, oem, published_at = self._call(fn)
        return TemplateTerms.from_abi(terms), str(to_checksum_address(oem)), int(published_at)

    def templates_published(self, oem: str) -> int:
        """Number of template versions ``oem`` has published."""
        return int(self._call(self.contract.functions.templatesPublished(to_checksum_address(oem))))

    def latest_version(self, oem: str, template_id: bytes) -> int:
        """Newest published version of ``oem``'s ``template_id`` (0 if none)."""
        return int(self._call(self.contract.functions.latestVersion(to_checksum_address(oem), template_id)))

    # ----------------------------------------------------------------- agreements
    def cancel_nonce(self) -> TxResult:
        """The sender voids its current agreement nonce. Event ``NonceCancelled``."""
        return self._tx(self.contract.functions.cancelNonce())

    def nonces(self, party: str) -> int:
        """Nonce ``party`` must sign its next agreement with."""
        return int(self._call(self.contract.functions.nonces(to_checksum_address(party))))

    def digest(self, terms: AgreementTerms) -> bytes:
        """The contract's EIP-712 digest of ``terms`` (equals ``agreement_digest`` for this chain/address)."""
        return bytes(self._call(self.contract.functions.agreementDigest(terms.to_abi())))

    def typed_data(self, terms: AgreementTerms) -> dict[str, Any]:
        """The EIP-712 message of ``terms`` for this contract and chain."""
        return agreement_typed_data(terms, chain_id=self.chain_id, verifying_contract=self.address)

    def sign(self, terms: AgreementTerms, private_key: bytes | str) -> bytes:
        """Sign ``terms`` for this contract and chain with ``private_key``."""
        return sign_agreement(terms, private_key, chain_id=self.chain_id, verifying_contract=self.address)

    def activate(self, terms: AgreementTerms, oem_signature: bytes, supplier_signature: bytes) -> TxResult:
        """Anyone: activate with both signatures. Event ``AgreementActivated``."""
        return self._tx(self.contract.functions.activate(terms.to_abi(), oem_signature, supplier_signature))

    def agreement(self, agreement_id: bytes) -> Agreement:
        """The agreement (state ``NONE`` if unknown)."""
        v = self._call(self.contract.functions.agreement(agreement_id))
        return Agreement(
            state=AgreementState(int(v[0])),
            late_top_up=bool(v[1]),
            template_id=bytes(v[2]),
            template_version=int(v[3]),
            oem=str(to_checksum_address(v[4])),
            supplier=str(to_checksum_address(v[5])),
            lab=str(to_checksum_address(v[6])),
            ratio_bps=int(v[7]),
            activated_at=int(v[8]),
            top_up_deadline=int(v[9]),
            terminated_at=int(v[10]),
            next_quarter=int(v[11]),
            bound=int(v[12]),
            debt=int(v[13]),
        )

    def suspend(self, agreement_id: bytes) -> TxResult:
        """OEM: suspend an agreement flagged for a late top-up."""
        return self._tx(self.contract.functions.suspend(agreement_id))

    def resume(self, agreement_id: bytes) -> TxResult:
        """OEM: resume a suspended agreement."""
        return self._tx(self.contract.functions.resume(agreement_id))

    def terminate(self, agreement_id: bytes) -> TxResult:
        """OEM or supplier: terminate the agreement."""
        return self._tx(self.contract.functions.terminate(agreement_id))

    # ----------------------------------------------------------------- counters / evaluation
    def record_inspection(self, agreement_id: bytes, batch_id: bytes, header: Any, *, accepted: bool) -> TxResult:
        """OEM: record its incoming inspection of an anchored batch (``header``: its ``BatchHeader``).
        Event ``InspectionRecorded``; counts a batch (and a rejection) of the quarter's score."""
        fn = self.contract.functions.recordInspection(agreement_id, batch_id, header.as_tuple(), accepted)
        return self._tx(fn)

    def corrections(self, agreement_id: bytes, quarter: int) -> int:
        """Corrections anchored under the agreement in ``quarter``."""
        return int(self._call(self.contract.functions.corrections(agreement_id, quarter)))

    def check_anchor(self, agreement_id: bytes, supplier: str) -> None:
        """Reverts (``ContractRevert``) unless ``supplier`` may anchor under the agreement now."""
        self._call(self.contract.functions.checkAnchor(agreement_id, to_checksum_address(supplier)))

    def open_case_for(self, agreement_id: bytes, case_id: bytes) -> TxResult:
        """Linked case contract only: a case opens; binds the maximum penalty. Event ``DepositBound``."""
        return self._tx(self.contract.functions.openCaseFor(agreement_id, case_id))

    def close_case(self, agreement_id: bytes, case_id: bytes, nc_code: int) -> TxResult:
        """Linked case contract only: a case settled (``nc_code`` 1/2/3 = penalty of that class, 0 = none)."""
        return self._tx(self.contract.functions.closeCase(agreement_id, case_id, nc_code))

    def record_deadline_breach(self, agreement_id: bytes, case_id: bytes) -> TxResult:
        """Case contract only: count a supplier tracing deadline breach."""
        return self._tx(self.contract.functions.recordDeadlineBreach(agreement_id, case_id))

    def quarter_counters(self, agreement_id: bytes, quarter: int) -> QuarterCounters:
        """Counters of ``quarter``."""
        v = self._call(self.contract.functions.quarterCounters(agreement_id, quarter))
        return QuarterCounters(*(int(x) for x in v))

    def current_quarter(self, agreement_id: bytes) -> int:
        """The quarter the agreement is in now."""
        return int(self._call(self.contract.functions.currentQuarter(agreement_id)))

    def evaluate(self, agreement_id: bytes, quarter: int) -> TxResult:
        """Anyone: evaluate an ended quarter (once, in order). Event ``Evaluated``."""
        return self._tx(self.contract.functions.evaluate(agreement_id, quarter))

    def score_of(self, counters: QuarterCounters) -> int:
        """The contract's score of ``counters``."""
        return int(self._call(self.contract.functions.scoreOf(counters.to_abi())))

    # ----------------------------------------------------------------- escrow
    def deposit(self, agreement_id: bytes, amount: int) -> TxResult:
        """Deposit ``amount`` (the sender must have approved this contract on the token)."""
        return self._tx(self.contract.functions.deposit(agreement_id, amount))

    def withdraw(self, agreement_id: bytes, amount: int) -> TxResult:
        """Supplier: withdraw excess above the required deposit."""
        return self._tx(self.contract.functions.withdraw(agreement_id, amount))

    def claim(self, agreement_id: bytes) -> TxResult:
        """OEM: claim all penalties owed."""
        return self._tx(self.contract.functions.claim(agreement_id))

    def flag_late_top_up(self, agreement_id: bytes) -> TxResult:
        """Anyone: flag an agreement whose top-up deadline passed while under-funded."""
        return self._tx(self.contract.functions.flagLateTopUp(agreement_id))

    def balances(self, agreement_id: bytes) -> Balances:
        """Deposited, claimable and required amounts."""
        v = self._call(self.contract.functions.balances(agreement_id))
        return Balances(int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]))

    def token(self) -> str:
        """Address of the settlement token."""
        return str(to_checksum_address(self._call(self.contract.functions.token())))

    def events(self, name: str, *, from_block: int = 0, to_block: int | str = "latest") -> list[dict[str, Any]]:
        """Decoded ``name`` events (args plus ``blockNumber``/``transactionHash``) in a block range."""
        logs = self._call(lambda: self.contract.events[name]().get_logs(from_block=from_block, to_block=to_block))
        return [
            {
                **dict(log["args"]),
                "blockNumber": int(log["blockNumber"]),
                "transactionHash": "0x" + bytes(log["transactionHash"]).hex(),
            }
            for log in logs
        ]
