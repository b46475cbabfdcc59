"""Typed client and EIP-712 helpers of the tracing-case contract (``TracingCases``).

A tracing case ties an anchored, anomalous batch to its OEM, its supplier and an ISO/IEC 17025 lab. The
lab signs a ``Verdict``, OEM and supplier sign (or send) an ``Acceptance``; anyone may relay the
signatures. This module gives:

- frozen dataclasses for what goes in and comes out (``OpenRequest``, ``Verdict``, ``Acceptance``,
  ``Case``) and the enums ``CaseState``, ``ResponsibleParty``, ``NcCode``;
- EIP-712 helpers that need no wallet library: ``verdict_typed_data`` / ``acceptance_typed_data`` (the
  full message dict any EIP-712 signer takes, e.g. ``eth_account.Account.sign_typed_data(key,
  full_message=...)``), ``verdict_digest`` / ``acceptance_digest`` (keccak only) and ``sign_verdict`` /
  ``sign_acceptance``;
- ``TracingCasesClient``: deploy, every transaction, views, and decoded events. Reverts raise
  ``chain.errors.ContractRevert`` with the contract's custom error name and arguments.

Nonces: a verdict's and an acceptance's ``nonce`` is the case's current ``round`` (``Case.round``); it only
changes when the arbiter or OEM re-assigns the lab. ``verdict_hash`` is the EIP-712 digest of the verdict.

Errors: everything derives from ``chain.errors.ChainError``; bad input built here raises
``chain.errors.InvalidInput`` (also a ``ValueError``) naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils import keccak, to_checksum_address

from chain.abi import bytes32 as _b32
from chain.abi import eip712_domain_separator
from chain.agreements import deploy_contract
from chain.client import RoleClient, TxResult
from chain.clients import BatchHeader
from chain.errors import InvalidInput
from chain.tx import TxSender

__all__ = [
    "ACCEPTANCE_TYPE",
    "EIP712_NAME",
    "EIP712_VERSION",
    "TRACING_CASES",
    "TRACING_CASES_HARNESS",
    "VERDICT_TYPE",
    "Acceptance",
    "Case",
    "CaseState",
    "NcCode",
    "OpenRequest",
    "ResponsibleParty",
    "TracingCasesClient",
    "Verdict",
    "acceptance_digest",
    "acceptance_typed_data",
    "case_id_for",
    "compact_signature",
    "domain_separator",
    "sign_acceptance",
    "sign_verdict",
    "verdict_digest",
    "verdict_typed_data",
]

EIP712_NAME = "qcn TracingCases"
EIP712_VERSION = "1"
TRACING_CASES = "TracingCases"
TRACING_CASES_HARNESS = "TracingCasesHarness"  # test only: settable clock
_ZERO_ADDRESS = "0x" + "00" * 20
_ZERO32 = b"\x00" * 32

VERDICT_TYPE: list[dict[str, str]] = [
    {"name": "caseId", "type": "bytes32"},
    {"name": "batchId", "type": "bytes32"},
    {"name": "rootCauseCode", "type": "bytes32"},
    {"name": "responsibleParty", "type": "uint8"},
    {"name": "ncClass", "type": "uint8"},
    {"name": "analysisHash", "type": "bytes32"},
    {"name": "deadline", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
]
ACCEPTANCE_TYPE: list[dict[str, str]] = [
    {"name": "caseId", "type": "bytes32"},
    {"name": "verdictHash", "type": "bytes32"},
    {"name": "accept", "type": "bool"},
    {"name": "deadline", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
]
_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _type_string(name: str, fields: list[dict[str, str]]) -> str:
    return name + "(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


_VERDICT_TYPEHASH = keccak(text=_type_string("Verdict", VERDICT_TYPE))
_ACCEPTANCE_TYPEHASH = keccak(text=_type_string("Acceptance", ACCEPTANCE_TYPE))


class CaseState(IntEnum):
    """Lifecycle of a case (``NONE`` = unknown id); values of ``ITracingCases.CaseState``."""

    NONE = 0
    OPENED = 1
    SUPPLIER_RESPONDED = 2
    SUPPLIER_DEFAULTED = 3
    VERDICT_SUBMITTED = 4
    ACCEPTED = 5
    DISPUTED = 6
    ARBITRATED = 7
    SETTLED = 8


class ResponsibleParty(IntEnum):
    """Who caused the non-conformity according to the verdict."""

    NONE = 0
    SUPPLIER = 1
    OEM = 2
    OTHER = 3


class NcCode(IntEnum):
    """Non-conformity class as a verdict carries it (0 = none; the agreement registry's NcClass is code - 1)."""

    NONE = 0
    CRITICAL = 1
    MAJOR = 2
    MINOR = 3


def _uint(value: int, bits: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**bits:
        raise InvalidInput(name, f"expected an integer in [0, 2^{bits}), got {value!r}")
    return value


def case_id_for(batch_id: bytes, seq: int) -> bytes:
    """Id of the ``seq``-th case (0-based) of ``batch_id``: ``keccak256(abi.encode(batchId, seq))``."""
    from eth_abi import encode as abi_encode  # eth-abi loads on first use, not at start

    return keccak(abi_encode(["bytes32", "uint256"], [_b32(batch_id, "batch_id"), _uint(seq, 256, "seq")]))


@dataclass(frozen=True)
class OpenRequest:
    """What opens a case (``ITracingCases.OpenRequest``); ``lab`` empty/zero = the agreement's lab."""

    agreement_id: bytes
    batch_id: bytes
    analysis_hash: bytes
    evidence_hash: bytes = _ZERO32
    lab: str = _ZERO_ADDRESS
    lab_fee: int = 0

    def __post_init__(self) -> None:
        for name in ("agreement_id", "batch_id", "analysis_hash", "evidence_hash"):
            object.__setattr__(self, name, _b32(getattr(self, name), name))
        object.__setattr__(self, "lab", to_checksum_address(self.lab or _ZERO_ADDRESS))
        _uint(self.lab_fee, 96, "lab_fee")

    def to_abi(self) -> tuple[Any, ...]:
        """The ABI tuple of ``OpenRequest``."""
        return (self.agreement_id, self.batch_id, self.analysis_hash, self.evidence_hash, self.lab, self.lab_fee)


@dataclass(frozen=True)
class Verdict:
    """The lab's verdict (EIP-712 primary type ``Verdict``); ``nonce`` is the case's round."""

    case_id: bytes
    batch_id: bytes
    root_cause_code: bytes
    responsible_party: int
    nc_class: int
    analysis_hash: bytes
    deadline: int
    nonce: int = 0

    def __post_init__(self) -> None:
        for name in ("case_id", "batch_id", "root_cause_code", "analysis_hash"):
            object.__setattr__(self, name, _b32(getattr(self, name), name))
        _uint(int(self.responsible_party), 8, "responsible_party")
        _uint(int(self.nc_class), 8, "nc_class")
        object.__setattr__(self, "responsible_party", int(self.responsible_party))
        object.__setattr__(self, "nc_class", int(self.nc_class))
        _uint(self.deadline, 64, "deadline")
        _uint(self.nonce, 256, "nonce")

    def to_abi(self) -> tuple[Any, ...]:
        """The ABI tuple of ``Verdict`` (field order of the Solidity struct)."""
        return (
            self.case_id,
            self.batch_id,
            self.root_cause_code,
            self.responsible_party,
            self.nc_class,
            self.analysis_hash,
            self.deadline,
            self.nonce,
        )

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` object."""
        return {f["name"]: v for f, v in zip(VERDICT_TYPE, self.to_abi(), strict=True)}


@dataclass(frozen=True)
class Acceptance:
    """A party's answer to a verdict (EIP-712 primary type ``Acceptance``); ``accept=False`` disputes."""

    case_id: bytes
    verdict_hash: bytes
    accept: bool
    deadline: int
    nonce: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "case_id", _b32(self.case_id, "case_id"))
        object.__setattr__(self, "verdict_hash", _b32(self.verdict_hash, "verdict_hash"))
        if not isinstance(self.accept, bool):
            raise InvalidInput("accept", f"expected a bool, got {self.accept!r}")
        _uint(self.deadline, 64, "deadline")
        _uint(self.nonce, 256, "nonce")

    def to_abi(self) -> tuple[Any, ...]:
        """The ABI tuple of ``Acceptance``."""
        return (self.case_id, self.verdict_hash, self.accept, self.deadline, self.nonce)

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` object."""
        return {f["name"]: v for f, v in zip(ACCEPTANCE_TYPE, self.to_abi(), strict=True)}


@dataclass(frozen=True)
class Case:
    """A case read back (``ITracingCases.CaseView``); ``verdict_hash`` is zero until a verdict exists."""

    state: CaseState
    agreement_id: bytes
    batch_id: bytes
    oem: str
    supplier: str
    lab: str
    opened_at: int
    deadline: int
    round: int
    oem_accepted: bool
    supplier_accepted: bool
    lab_deadline_missed: bool
    responsible_party: int
    nc_class: int
    verdict_hash: bytes
    lab_fee: int

    @classmethod
    def from_abi(cls, v: Any) -> Case:
        """Build from the tuple ``caseOf`` returns."""
        return cls(
            state=CaseState(int(v[0])),
            agreement_id=bytes(v[1]),
            batch_id=bytes(v[2]),
            oem=str(to_checksum_address(v[3])),
            supplier=str(to_checksum_address(v[4])),
            lab=str(to_checksum_address(v[5])),
            opened_at=int(v[6]),
            deadline=int(v[7]),
            round=int(v[8]),
            oem_accepted=bool(v[9]),
            supplier_accepted=bool(v[10]),
            lab_deadline_missed=bool(v[11]),
            responsible_party=int(v[12]),
            nc_class=int(v[13]),
            verdict_hash=bytes(v[14]),
            lab_fee=int(v[15]),
        )


# --------------------------------------------------------------------------- EIP-712


def _domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "name": EIP712_NAME,
        "version": EIP712_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def verdict_typed_data(verdict: Verdict, *, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """Full EIP-712 message of ``verdict`` for any EIP-712 signer (``eth_signTypedData_v4``,
    ``eth_account.Account.sign_typed_data(key, full_message=...)``)."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "Verdict": VERDICT_TYPE},
        "primaryType": "Verdict",
        "domain": _domain(chain_id, verifying_contract),
        "message": verdict.message(),
    }


def acceptance_typed_data(acceptance: Acceptance, *, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """Full EIP-712 message of ``acceptance`` for any EIP-712 signer."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "Acceptance": ACCEPTANCE_TYPE},
        "primaryType": "Acceptance",
        "domain": _domain(chain_id, verifying_contract),
        "message": acceptance.message(),
    }


def domain_separator(*, chain_id: int, verifying_contract: str) -> bytes:
    """EIP-712 domain separator of a ``TracingCases`` at ``verifying_contract`` on ``chain_id``."""
    return eip712_domain_separator(
        name=EIP712_NAME, version=EIP712_VERSION, chain_id=chain_id, verifying_contract=verifying_contract
    )


def _digest(struct_hash: bytes, chain_id: int, verifying_contract: str) -> bytes:
    return keccak(
        b"\x19\x01" + domain_separator(chain_id=chain_id, verifying_contract=verifying_contract) + struct_hash
    )


def verdict_digest(verdict: Verdict, *, chain_id: int, verifying_contract: str) -> bytes:
    """EIP-712 digest of ``verdict`` = the ``verdictHash`` the contract stores and acceptances refer to."""
    from eth_abi import encode as abi_encode  # eth-abi loads on first use, not at start

    types = ["bytes32"] + [f["type"] for f in VERDICT_TYPE]
    struct_hash = keccak(abi_encode(types, [_VERDICT_TYPEHASH, *verdict.to_abi()]))
    return _digest(struct_hash, chain_id, verifying_contract)


def acceptance_digest(acceptance: Acceptance, *, chain_id: int, verifying_contract: str) -> bytes:
    """EIP-712 digest of ``acceptance`` (what OEM / supplier sign)."""
    from eth_abi import encode as abi_encode  # eth-abi loads on first use, not at start

    types = ["bytes32"] + [f["type"] for f in ACCEPTANCE_TYPE]
    struct_hash = keccak(abi_encode(types, [_ACCEPTANCE_TYPEHASH, *acceptance.to_abi()]))
    return _digest(struct_hash, chain_id, verifying_contract)


def sign_verdict(verdict: Verdict, private_key: bytes | str, *, chain_id: int, verifying_contract: str) -> bytes:
    """65-byte signature (r || s || v) of the verdict digest with the lab signer's ``private_key``."""
    digest = verdict_digest(verdict, chain_id=chain_id, verifying_contract=verifying_contract)
    from eth_account import Account

    return bytes(Account.unsafe_sign_hash(digest, private_key).signature)


def sign_acceptance(
    acceptance: Acceptance, private_key: bytes | str, *, chain_id: int, verifying_contract: str
) -> bytes:
    """65-byte signature of the acceptance digest with the party signer's ``private_key``."""
    digest = acceptance_digest(acceptance, chain_id=chain_id, verifying_contract=verifying_contract)
    from eth_account import Account

    return bytes(Account.unsafe_sign_hash(digest, private_key).signature)


_HALF_ORDER_BIT = 1 << 255


def compact_signature(signature: bytes) -> bytes:
    """The 64-byte ERC-2098 form (r || vs, vs = s | (v - 27) << 255) of a 65-byte ECDSA signature.

    TracingCases accepts both forms; the short one is 32 calldata bytes (~140 gas) cheaper per signature.
    Anything that is not a 65-byte signature with v 27/28 (0/1) and s below 2^255 (e.g. an ERC-1271
    contract signature) is returned unchanged, so the contract judges it exactly as given.
    """
    sig = bytes(signature)
    if len(sig) != 65:
        return sig
    v = sig[64] + 27 if sig[64] < 27 else sig[64]
    s = int.from_bytes(sig[32:64], "big")
    if v not in (27, 28) or s >= _HALF_ORDER_BIT:
        return sig
    return sig[:32] + (s | ((v - 27) << 255)).to_bytes(32, "big")


# --------------------------------------------------------------------------- client


class TracingCasesClient(RoleClient):
    """Typed access to a deployed ``TracingCases`` (or its test harness).

    Writes are sent by ``sender`` (``with_sender`` gives a copy sending as someone else) and return a
    ``TxResult`` with this contract's decoded events. Reverts raise ``chain.errors.ContractRevert``.
    """

    DEFAULT_ARTIFACT = TRACING_CASES

    @classmethod
    def deploy(
        cls,
        sender: TxSender,
        *,
        party_registry: str,
        anchor_registry: str,
        agreement_registry: str,
        escrow: str | None = None,
        admin: str | None = None,
        harness: bool = False,
    ) -> TracingCasesClient:
        """Deploy ``TracingCases`` (``harness=True``: the settable-clock test harness).

        ``escrow`` defaults to ``agreement_registry`` (one contract holds both). The agreement registry's
        deployer must then link the new contract (``AgreementRegistryClient.link_cases``), and the admin
        grant ``ARBITER_ROLE`` / ``ORACLE_ROLE`` to their (separate) keys.
        """
        name = TRACING_CASES_HARNESS if harness else TRACING_CASES
        address = deploy_contract(
            sender,
            name,
            to_checksum_address(admin or sender.address),
            to_checksum_address(party_registry),
            to_checksum_address(anchor_registry),
            to_checksum_address(agreement_registry),
            to_checksum_address(escrow or agreement_registry),
        )
        return cls(sender.w3, address, sender, artifact=name)

    # ----------------------------------------------------------------- signing
    def verdict_typed_data(self, verdict: Verdict) -> dict[str, Any]:
        """EIP-712 message of ``verdict`` for this contract and chain."""
        return verdict_typed_data(verdict, chain_id=self.chain_id, verifying_contract=self.address)

    def acceptance_typed_data(self, acceptance: Acceptance) -> dict[str, Any]:
        """EIP-712 message of ``acceptance`` for this contract and chain."""
        return acceptance_typed_data(acceptance, chain_id=self.chain_id, verifying_contract=self.address)

    def verdict_hash(self, verdict: Verdict) -> bytes:
        """The verdict's EIP-712 digest computed locally (equals the contract's ``verdictDigest``)."""
        return verdict_digest(verdict, chain_id=self.chain_id, verifying_contract=self.address)

    def sign_verdict(self, verdict: Verdict, private_key: bytes | str) -> bytes:
        """Sign ``verdict`` for this contract and chain."""
        return sign_verdict(verdict, private_key, chain_id=self.chain_id, verifying_contract=self.address)

    def sign_acceptance(self, acceptance: Acceptance, private_key: bytes | str) -> bytes:
        """Sign ``acceptance`` for this contract and chain."""
        return sign_acceptance(acceptance, private_key, chain_id=self.chain_id, verifying_contract=self.address)

    # ----------------------------------------------------------------- transactions
    def open_case(self, request: OpenRequest, header: BatchHeader) -> TxResult:
        """ORACLE_ROLE or OEM: open a case on an anchored batch (``header`` = its anchored header).
        Event ``CaseOpened`` (its ``caseId`` is the new id)."""
        return self._tx(self.contract.functions.openCase(request.to_abi(), header.as_tuple()))

    def respond(self, case_id: bytes, evidence_hash: bytes) -> TxResult:
        """Supplier: respond with evidence before the deadline. Event ``SupplierResponded``."""
        return self._tx(self.contract.functions.respond(case_id, evidence_hash))

    def advance_to_lab(self, case_id: bytes) -> TxResult:
        """Anyone, after a silent supplier's deadline. Event ``SupplierDefaulted``."""
        return self._tx(self.contract.functions.advanceToLab(case_id))

    def submit_verdict(self, verdict: Verdict, lab_signature: bytes) -> TxResult:
        """Anyone: relay the lab-signed verdict. Event ``VerdictSubmitted``."""
        return self._tx(self.contract.functions.submitVerdict(verdict.to_abi(), lab_signature))

    def submit_verdict_with_acceptances(
        self,
        verdict: Verdict,
        lab_signature: bytes,
        *,
        oem_deadline: int,
        oem_signature: bytes,
        supplier_deadline: int,
        supplier_signature: bytes,
    ) -> TxResult:
        """Anyone: verdict + OEM and supplier acceptances (``Acceptance(caseId, verdictHash, true, deadline,
        verdict.nonce)``) in one transaction; the case ends ``ACCEPTED`` (event ``VerdictFinalized``).

        65-byte signatures are sent in their ERC-2098 64-byte form (``compact_signature``; same signer).
        """
        return self._tx(
            self.contract.functions.submitVerdictWithAcceptances(
                verdict.to_abi(),
                compact_signature(lab_signature),
                oem_deadline,
                compact_signature(oem_signature),
                supplier_deadline,
                compact_signature(supplier_signature),
            )
        )

    def accept(self, case_id: bytes, verdict_hash: bytes) -> TxResult:
        """OEM or supplier (direct call): accept the verdict. Event ``VerdictAccepted``."""
        return self._tx(self.contract.functions.accept(case_id, verdict_hash))

    def dispute(self, case_id: bytes, evidence_hash: bytes) -> TxResult:
        """OEM or supplier (direct call): dispute inside the window. Event ``VerdictDisputed``."""
        return self._tx(self.contract.functions.dispute(case_id, evidence_hash))

    def submit_acceptance(self, acceptance: Acceptance, party: str, signature: bytes) -> TxResult:
        """Anyone: relay ``party``'s signed acceptance (or dispute)."""
        return self._tx(
            self.contract.functions.submitAcceptance(acceptance.to_abi(), to_checksum_address(party), signature)
        )

    def mark_lab_deadline_missed(self, case_id: bytes) -> TxResult:
        """Anyone, after the lab deadline: count the lab's breach. Event ``LabDeadlineMissed``."""
        return self._tx(self.contract.functions.markLabDeadlineMissed(case_id))

    def approve_lab(self, case_id: bytes, new_lab: str) -> TxResult:
        """OEM or supplier: approve ``new_lab`` for a case waiting for its lab (changes once both approved).
        Events ``LabChangeApproved`` and, on the second approval, ``LabReassigned``."""
        return self._tx(self.contract.functions.approveLab(case_id, to_checksum_address(new_lab)))

    def approve_reopen(self, batch_id: bytes, evidence_hash: bytes) -> TxResult:
        """Lab of a penalised batch's case: sign off new evidence so one more case may open. ``ReopenApproved``."""
        return self._tx(self.contract.functions.approveReopen(batch_id, evidence_hash))

    def arbitrate(
        self, case_id: bytes, responsible_party: int, nc_class: int, root_cause_code: bytes, ruling_hash: bytes
    ) -> TxResult:
        """ARBITER_ROLE: rule on a disputed case. Event ``CaseArbitrated``."""
        return self._tx(
            self.contract.functions.arbitrate(
                case_id, int(responsible_party), int(nc_class), root_cause_code, ruling_hash
            )
        )

    def settle(self, case_id: bytes) -> TxResult:
        """Anyone: settle once. Event ``CaseSettled`` (+ the agreement registry's ``NonConformityRecorded``)."""
        return self._tx(self.contract.functions.settle(case_id))

    def fund_lab_fees(self, oem: str, amount: int) -> TxResult:
        """Anyone: add ``amount`` tokens (approved to this contract) to ``oem``'s lab-fee pool."""
        return self._tx(self.contract.functions.fundLabFees(to_checksum_address(oem), amount))

    def withdraw_lab_fees(self, amount: int) -> TxResult:
        """OEM: withdraw unreserved lab-fee pool."""
        return self._tx(self.contract.functions.withdrawLabFees(amount))

    def claim_lab_fee(self) -> TxResult:
        """Lab: claim every fee earned."""
        return self._tx(self.contract.functions.claimLabFee())

    # ----------------------------------------------------------------- views
    def case(self, case_id: bytes) -> Case:
        """The case (state ``NONE`` if unknown)."""
        return Case.from_abi(self._call(self.contract.functions.caseOf(case_id)))

    def open_case_of(self, batch_id: bytes) -> bytes | None:
        """The open case of ``batch_id``, None if none."""
        value = bytes(self._call(self.contract.functions.openCaseOf(batch_id)))
        return None if value == _ZERO32 else value

    def next_case_id(self, batch_id: bytes) -> bytes:
        """Id the next case of ``batch_id`` will get."""
        return bytes(self._call(self.contract.functions.nextCaseId(batch_id)))

    def verdict_digest(self, verdict: Verdict) -> bytes:
        """The contract's EIP-712 digest of ``verdict``."""
        return bytes(self._call(self.contract.functions.verdictDigest(verdict.to_abi())))

    def acceptance_digest(self, acceptance: Acceptance) -> bytes:
        """The contract's EIP-712 digest of ``acceptance``."""
        return bytes(self._call(self.contract.functions.acceptanceDigest(acceptance.to_abi())))

    def lab_fee_pool(self, oem: str) -> int:
        """Unreserved lab-fee pool of ``oem``."""
        return int(self._call(self.contract.functions.labFeePool(to_checksum_address(oem))))

    def lab_fee_claimable(self, lab: str) -> int:
        """Fees ``lab`` earned and has not claimed."""
        return int(self._call(self.contract.functions.labFeeClaimable(to_checksum_address(lab))))

    def lab_breaches(self, lab: str) -> int:
        """Verdict deadlines ``lab`` missed."""
        return int(self._call(self.contract.functions.labBreaches(to_checksum_address(lab))))
