"""Typed clients of the consortium registry: parties (``PartyRegistryClient``) and anchors
(``AnchorRegistryClient``). The header and its commitment are :mod:`chain.proof`'s (re-exported here).

Values are ``bytes`` (32 long) inside Python and ``0x`` hex only at the edges (JSON, logs). Writes go
through a ``chain.tx.TxSender``; every failure is a ``chain.errors.ChainError`` (reverts decoded, e.g.
``AlreadyAnchoredError`` with the commitment already on chain).

Anchoring is per call for one supplier under one agreement (the contract takes them once per call and
the requests per batch): ``anchor(BatchIn)`` / ``anchor_many([BatchIn, ...])``. Events carry every
header field; ``anchored_events`` decodes them (``BatchAnchored`` and ``BatchCorrected``) into
``AnchoredEvent`` records an indexer can store and rebuild headers from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from chain.abi import bytes32 as _b32
from chain.client import ContractClient
from chain.contracts import REGISTRY, Deployment
from chain.errors import ChainError, InvalidInput, TransactionFailed
from chain.proof import HEADER_ABI_TYPES, BatchHeader, header_commitment
from chain.tx import SentTx, TxSender

if TYPE_CHECKING:
    from web3 import Web3

__all__ = [
    "HEADER_ABI_TYPES",
    "ZERO32",
    "AnchorReceipt",
    "AnchorRegistryClient",
    "AnchoredEvent",
    "BatchHeader",
    "BatchIn",
    "Party",
    "PartyKind",
    "PartyRegistryClient",
    "decode_anchor_log",
    "header_commitment",
    "is_supplier_batch_id",
    "pack_meta",
    "short_name",
    "supplier_batch_id",
    "unpack_meta",
]

ZERO32 = b"\x00" * 32
_EV_ANCHORED = keccak(text="BatchAnchored(bytes32,bytes32,bytes32,bytes32,uint256)")
_EV_CORRECTED = keccak(text="BatchCorrected(bytes32,bytes32,bytes32,bytes32,bytes32,uint256)")
# anchorSimplePacked: an original under no agreement, data without the (zero) agreementId word
_EV_ANCHORED_SIMPLE = keccak(text="BatchAnchoredSimple(bytes32,bytes32,bytes32,uint256)")
_ANCHOR_TOPICS = ["0x" + t.hex() for t in (_EV_ANCHORED, _EV_ANCHORED_SIMPLE, _EV_CORRECTED)]
_ADDRESS_MASK = (1 << 160) - 1
_MAX_VERDICT = 2

# Fixed gas limits for the hot path (no estimate round trip); measured use is <50k for one batch and
# ~27k per batch in anchorMany (scripts/bench_gas.py), relayed +2.1k.
GAS_ANCHOR = 90_000
GAS_ANCHOR_MANY_BASE = 60_000
GAS_ANCHOR_MANY_PER_BATCH = 32_000
GAS_CORRECTION = 140_000


def _address(value: str, field: str) -> str:
    try:
        return str(to_checksum_address(value))
    except (ValueError, TypeError):
        raise InvalidInput(field, f"not an address: {value!r}") from None


def _uint(value: int, bits: int, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << bits):
        raise InvalidInput(field, f"must be an integer in 0..2^{bits}-1, got {value!r}")
    return value


def supplier_batch_id(supplier: str, key: bytes | str) -> bytes:
    """The batch id ``key`` names for ``supplier``: its 20-byte address, then the first 12 bytes of keccak256(key).
    The registry anchors an id only for the supplier whose address it starts with, so no other party can take it
    first; one supplier's keys collide only after about 2^48 batches."""
    raw = key.encode() if isinstance(key, str) else key
    return bytes.fromhex(_address(supplier, "supplier")[2:]) + keccak(raw)[:12]


def is_supplier_batch_id(batch_id: bytes | str, supplier: str) -> bool:
    """Whether ``batch_id`` (bytes or 0x hex) starts with ``supplier``'s address, as the registry requires (an id
    from before registry 2.1.0 does not)."""
    raw = bytes.fromhex(batch_id[2:]) if isinstance(batch_id, str) else batch_id
    return raw[:20] == bytes.fromhex(supplier[2:])


def pack_meta(supplier: str, record_count: int, verdict: int, anchored_at: int) -> int:
    """The ``meta`` word of the anchor events: supplier | recordCount << 160 | verdict << 192 | anchoredAt << 200."""
    return (
        int(supplier, 16)
        | (_uint(record_count, 32, "record_count") << 160)
        | (_uint(verdict, 8, "verdict") << 192)
        | (_uint(anchored_at, 56, "anchored_at") << 200)
    )


def unpack_meta(meta: int) -> tuple[str, int, int, int]:
    """Inverse of ``pack_meta``: (supplier, record_count, verdict, anchored_at)."""
    supplier = to_checksum_address((meta & _ADDRESS_MASK).to_bytes(20, "big"))
    return str(supplier), (meta >> 160) & 0xFFFFFFFF, (meta >> 192) & 0xFF, meta >> 200


@dataclass(frozen=True)
class BatchIn:
    """A batch to anchor: what the caller knows before the chain adds ``anchored_at``."""

    batch_id: bytes
    supplier: str
    root: bytes
    record_count: int
    report_hash: bytes = ZERO32
    verdict: int = 0
    agreement_id: bytes = ZERO32

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_id", _b32(self.batch_id, "batch_id"))
        object.__setattr__(self, "root", _b32(self.root, "root"))
        object.__setattr__(self, "report_hash", _b32(self.report_hash, "report_hash"))
        object.__setattr__(self, "agreement_id", _b32(self.agreement_id, "agreement_id"))
        object.__setattr__(self, "supplier", _address(self.supplier, "supplier"))
        _uint(self.record_count, 32, "record_count")
        _uint(self.verdict, 8, "verdict")

    def request_tuple(self) -> tuple[bytes, bytes, bytes, int, int]:
        """The contract's ``AnchorRequest`` (batchId, root, reportHash, recordCount, verdict)."""
        return (self.batch_id, self.root, self.report_hash, self.record_count, self.verdict)

    def packed_request(self, *, own: bool = False) -> int:
        """The ``packed`` word of ``anchorSimplePacked``: supplier | recordCount << 160 | verdict << 192.

        ``own=True`` leaves the supplier bits zero (the contract then takes the caller as supplier: for a
        supplier sending its own batch, 20 calldata bytes cheaper).
        """
        return pack_meta("0x" + "00" * 20 if own else self.supplier, self.record_count, self.verdict, 0)

    def header(self, anchored_at: int, supersedes: bytes = ZERO32) -> BatchHeader:
        """The header once anchored at ``anchored_at``."""
        return BatchHeader(
            root=self.root,
            report_hash=self.report_hash,
            agreement_id=self.agreement_id,
            supplier=self.supplier,
            record_count=self.record_count,
            verdict=self.verdict,
            anchored_at=anchored_at,
            supersedes=supersedes,
        )


@dataclass(frozen=True)
class AnchorReceipt:
    """One anchored batch and the transaction that anchored it.

    ``gas_used`` is the whole transaction's gas (shared by ``batches_in_tx`` batches with anchor_many).
    """

    batch_id: bytes
    tx_hash: str
    block_number: int
    block_timestamp: int
    gas_used: int
    anchored_at: int
    commitment: bytes
    header: BatchHeader
    batches_in_tx: int = 1


@dataclass(frozen=True)
class AnchoredEvent:
    """A decoded ``BatchAnchored`` / ``BatchCorrected`` log."""

    batch_id: bytes
    agreement_id: bytes
    supplier: str
    root: bytes
    report_hash: bytes
    record_count: int
    verdict: int
    anchored_at: int
    supersedes: bytes
    block_number: int
    tx_hash: str
    log_index: int

    @property
    def is_correction(self) -> bool:
        """True for a ``BatchCorrected`` event."""
        return self.supersedes != ZERO32

    @property
    def header(self) -> BatchHeader:
        """The anchored header; ``header_commitment(header)`` equals ``commitmentOf(batch_id)``."""
        return BatchHeader(
            root=self.root,
            report_hash=self.report_hash,
            agreement_id=self.agreement_id,
            supplier=self.supplier,
            record_count=self.record_count,
            verdict=self.verdict,
            anchored_at=self.anchored_at,
            supersedes=self.supersedes,
        )


def decode_anchor_log(log: Mapping[str, Any]) -> AnchoredEvent | None:
    """Decode one raw log of the registry (``BatchAnchored``, ``BatchAnchoredSimple`` or ``BatchCorrected``);
    None if it is not an anchor event."""
    from eth_abi import decode as abi_decode  # eth-abi loads on first use, not at start

    topics = [bytes(t) for t in log["topics"]]
    if not topics or topics[0] not in (_EV_ANCHORED, _EV_ANCHORED_SIMPLE, _EV_CORRECTED):
        return None
    if topics[0] == _EV_ANCHORED_SIMPLE:
        root, report_hash, meta = abi_decode(["bytes32", "bytes32", "uint256"], bytes(log["data"]))
        agreement_id = ZERO32
    else:
        agreement_id, root, report_hash, meta = abi_decode(
            ["bytes32", "bytes32", "bytes32", "uint256"], bytes(log["data"])
        )
    supplier, record_count, verdict, anchored_at = unpack_meta(meta)
    return AnchoredEvent(
        batch_id=topics[1],
        agreement_id=agreement_id,
        supplier=supplier,
        root=root,
        report_hash=report_hash,
        record_count=record_count,
        verdict=verdict,
        anchored_at=anchored_at,
        supersedes=topics[2] if topics[0] == _EV_CORRECTED else ZERO32,
        block_number=int(log["blockNumber"]),
        tx_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
        log_index=int(log["logIndex"]),
    )


class PartyKind(IntEnum):
    """Party kinds as the contract numbers them."""

    OEM = 1
    SUPPLIER = 2
    LAB = 3


@dataclass(frozen=True)
class Party:
    """A party as read back from the registry (``kind`` None: not registered)."""

    account: str
    kind: PartyKind | None
    active: bool
    accreditation_expiry: int
    signer: str
    name: bytes
    accreditation_id: bytes

    @property
    def name_text(self) -> str:
        """``name`` as text if it is a zero-padded UTF-8 short name (else its 0x hex)."""
        return _text32(self.name)

    @property
    def accreditation_text(self) -> str:
        """``accreditation_id`` as text if it is zero-padded UTF-8 (else its 0x hex)."""
        return _text32(self.accreditation_id)


def _text32(raw: bytes) -> str:
    try:
        return raw.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + raw.hex()


def short_name(value: str | bytes, field: str = "name") -> bytes:
    """A bytes32 from a short UTF-8 text (right-padded with zeros) or from 32 raw bytes (e.g. a hash)."""
    if isinstance(value, bytes):
        return _b32(value, field)
    encoded = value.encode("utf-8")
    if len(encoded) > 32:
        raise InvalidInput(field, f"{len(encoded)} UTF-8 bytes; at most 32 (pass keccak(name) for long names)")
    return encoded.ljust(32, b"\x00")


class _RegistryClient(ContractClient):
    """The consortium registry (one contract: parties and anchors), on :class:`chain.client.ContractClient`."""

    DEFAULT_ARTIFACT = REGISTRY

    @classmethod
    def from_deployment(cls, w3: Web3, deployment: Deployment, sender: TxSender | None = None) -> Any:
        """Client for the registry recorded in ``deployment``."""
        return cls(w3, deployment.registry, sender, artifact=deployment.artifacts["AnchorRegistry"])


class PartyRegistryClient(_RegistryClient):
    """Consortium parties: register, rotate signer, accreditation, relayers, deactivate, read back."""

    def register_party(
        self,
        account: str,
        kind: PartyKind,
        name: str | bytes,
        *,
        signer: str | None = None,
        accreditation_id: str | bytes | None = None,
        accreditation_expiry: int = 0,
    ) -> SentTx:
        """Register ``account`` (registrar only). ``signer`` defaults to ``account``; labs need an
        ``accreditation_id`` and ``accreditation_expiry`` (unix seconds, inclusive)."""
        acc_id = ZERO32 if accreditation_id is None else short_name(accreditation_id, "accreditation_id")
        call = self.contract.functions.registerParty(
            _address(account, "account"),
            int(PartyKind(kind)),
            short_name(name),
            _address(signer or account, "signer"),
            acc_id,
            _uint(accreditation_expiry, 64, "accreditation_expiry"),
        )
        return self._send(call)

    def set_signer(self, account: str, new_signer: str) -> SentTx:
        """The party itself: rotate its signing key at once."""
        return self._send(
            self.contract.functions.setSigner(_address(account, "account"), _address(new_signer, "new_signer"))
        )

    def propose_signer(self, account: str, new_signer: str) -> SentTx:
        """Registrar: propose a new signer for ``account`` (effective after the delay unless cancelled)."""
        return self._send(
            self.contract.functions.proposeSigner(_address(account, "account"), _address(new_signer, "new_signer"))
        )

    def cancel_signer_change(self, account: str) -> SentTx:
        """The party (account or current signer) or a registrar: cancel a pending signer change."""
        return self._send(self.contract.functions.cancelSignerChange(_address(account, "account")))

    def complete_signer_change(self, account: str) -> SentTx:
        """Anyone, once due: apply the pending signer change of ``account``."""
        return self._send(self.contract.functions.completeSignerChange(_address(account, "account")))

    def pending_signer(self, account: str) -> tuple[str, int]:
        """(signer, effective_at) of the pending signer change of ``account`` (zero address if none)."""
        fn = self.contract.functions.pendingSigner(_address(account, "account"))
        signer, effective_at = self._call(fn.call)
        return str(to_checksum_address(signer)), int(effective_at)

    def set_accreditation(self, lab: str, accreditation_id: str | bytes, accreditation_expiry: int) -> SentTx:
        """Renew or change a lab's accreditation (registrar only)."""
        return self._send(
            self.contract.functions.setAccreditation(
                _address(lab, "lab"),
                short_name(accreditation_id, "accreditation_id"),
                _uint(accreditation_expiry, 64, "accreditation_expiry"),
            )
        )

    def deactivate(self, account: str) -> SentTx:
        """Deactivate ``account`` for good (registrar only)."""
        return self._send(self.contract.functions.deactivateParty(_address(account, "account")))

    def approve_relayer(self, supplier: str, relayer: str) -> SentTx:
        """Let ``relayer`` anchor for ``supplier`` (registrar or the supplier itself)."""
        return self._send(
            self.contract.functions.approveRelayer(_address(supplier, "supplier"), _address(relayer, "relayer"))
        )

    def revoke_relayer(self, supplier: str, relayer: str) -> SentTx:
        """Withdraw a relayer approval (registrar or the supplier itself)."""
        return self._send(
            self.contract.functions.revokeRelayer(_address(supplier, "supplier"), _address(relayer, "relayer"))
        )

    def party(self, account: str) -> Party:
        """The party registered for ``account`` (``kind`` None if unregistered)."""
        checksummed = _address(account, "account")
        raw = self._call(lambda: self.contract.functions.party(checksummed).call())
        kind, active, expiry, signer, name, acc_id = raw
        return Party(
            account=checksummed,
            kind=PartyKind(kind) if kind else None,
            active=bool(active),
            accreditation_expiry=int(expiry),
            signer=str(to_checksum_address(signer)),
            name=bytes(name),
            accreditation_id=bytes(acc_id),
        )

    def is_active(self, account: str, kind: PartyKind) -> bool:
        """True if ``account`` is an active party of ``kind``."""
        a = _address(account, "account")
        return bool(self._call(lambda: self.contract.functions.isActive(a, int(kind)).call()))

    def is_relayer_for(self, supplier: str, relayer: str) -> bool:
        """True if ``relayer`` may anchor for ``supplier``."""
        s, r = _address(supplier, "supplier"), _address(relayer, "relayer")
        return bool(self._call(lambda: self.contract.functions.isRelayerFor(s, r).call()))

    def accreditation_valid(self, lab: str, at: int) -> bool:
        """True if ``lab`` is an active lab accredited at unix time ``at`` (expiry inclusive)."""
        a = _address(lab, "lab")
        return bool(self._call(lambda: self.contract.functions.accreditationValid(a, _uint(at, 64, "at")).call()))


class AnchorRegistryClient(_RegistryClient):
    """Batch anchors: anchor / anchor_many / anchor_correction, commitment and proof checks, events."""

    def anchor(self, batch: BatchIn) -> AnchorReceipt:
        """Anchor one original batch; ``AlreadyAnchoredError`` if its id is taken.

        A batch under no agreement goes through the lean ``anchorSimplePacked`` entry (same checks,
        commitment and event as ``anchor``, ~1.1k gas less); one under an agreement through ``anchor``.
        """
        if batch.agreement_id == ZERO32:
            own = self.sender is not None and self.sender.address.lower() == batch.supplier.lower()
            call = self.contract.functions.anchorSimplePacked(
                batch.batch_id, batch.root, batch.report_hash, batch.packed_request(own=own)
            )
        else:
            call = self.contract.functions.anchor(batch.supplier, batch.agreement_id, batch.request_tuple())
        sent = self._send(call, gas=GAS_ANCHOR)
        return self._receipts(sent, [batch])[0]

    def anchor_many(self, batches: Sequence[BatchIn]) -> list[AnchorReceipt]:
        """Anchor several original batches of ONE supplier under ONE agreement in one transaction.

        All or nothing: a bad or already anchored batch reverts the whole call (decoded error names it).
        """
        if not batches:
            raise InvalidInput("batches", "nothing to anchor")
        first = batches[0]
        for i, b in enumerate(batches):
            if b.supplier != first.supplier or b.agreement_id != first.agreement_id:
                raise InvalidInput(f"batches[{i}]", "all batches of one call need the same supplier and agreement_id")
        call = self.contract.functions.anchorMany(
            first.supplier, first.agreement_id, [b.request_tuple() for b in batches]
        )
        sent = self._send(call, gas=GAS_ANCHOR_MANY_BASE + GAS_ANCHOR_MANY_PER_BATCH * len(batches))
        return self._receipts(sent, list(batches))

    def anchor_correction(self, batch: BatchIn, supersedes: bytes, predecessor: BatchHeader) -> AnchorReceipt:
        """Anchor ``batch`` as a correction of ``supersedes`` (same supplier); ``predecessor`` is the
        anchored header of ``supersedes`` (e.g. ``AnchoredEvent.header``)."""
        prev = _b32(supersedes, "supersedes")
        call = self.contract.functions.anchorCorrection(
            batch.supplier, batch.agreement_id, batch.request_tuple(), prev, predecessor.as_abi_tuple()
        )
        sent = self._send(call, gas=GAS_CORRECTION)
        return self._receipts(sent, [batch], supersedes=prev)[0]

    def commitment_of(self, batch_id: bytes | str) -> bytes | None:
        """The stored commitment of ``batch_id``, None if not anchored."""
        bid = _b32(batch_id, "batch_id")
        value = bytes(self._call(lambda: self.contract.functions.commitmentOf(bid).call()))
        return None if value == ZERO32 else value

    def commitments_of(self, batch_ids: list[bytes | str]) -> list[bytes | None]:
        """:meth:`commitment_of` of several batch ids in one JSON-RPC batch request (one round trip)."""
        make_batch_request = getattr(self.w3.provider, "make_batch_request", None)
        if len(batch_ids) <= 1 or make_batch_request is None:
            # one id, or a provider without JSON-RPC batches (the in-process py-evm tester): one call each
            return [self.commitment_of(b) for b in batch_ids]
        # plain eth_calls: the selector and one bytes32 argument need no ABI machinery (web3 encoding each call
        # cost more than the round trip)
        selector = "0x" + keccak(text="commitmentOf(bytes32)")[:4].hex()
        requests = [
            ("eth_call", [{"to": self.address, "data": selector + _b32(b, "batch_id").hex()}, "latest"])
            for b in batch_ids
        ]

        def fetch() -> list[bytes]:
            answers = make_batch_request(requests)
            if not isinstance(answers, list):  # the node refused the whole batch
                raise ChainError(f"commitment look-ups refused by the node: {answers.get('error')}")
            out = []
            for answer in answers:
                if "error" in answer or not isinstance(answer.get("result"), str):
                    raise ChainError(f"commitment look-up failed: {answer.get('error')}")
                out.append(bytes.fromhex(answer["result"].removeprefix("0x")))
            return out

        values = self._call(fetch)
        if len(values) != len(requests) or any(len(v) != 32 for v in values):
            raise ChainError(f"the node answered {len(values)} of {len(requests)} commitment look-ups")
        return [None if v == ZERO32 else v for v in values]

    def is_anchored(self, batch_id: bytes | str) -> bool:
        """True if ``batch_id`` is anchored."""
        bid = _b32(batch_id, "batch_id")
        return bool(self._call(lambda: self.contract.functions.isAnchored(bid).call()))

    def onchain_commitment(self, header: BatchHeader) -> bytes:
        """The contract's own ``headerCommitment(header)`` (cross-check of ``header_commitment``)."""
        return bytes(self._call(lambda: self.contract.functions.headerCommitment(header.as_abi_tuple()).call()))

    def verify(
        self, batch_id: bytes | str, header: BatchHeader, salt: bytes, digest: bytes, proof: Iterable[bytes]
    ) -> bool:
        """The contract's ``verify``: header anchored for ``batch_id`` and leaf (salt, digest) under its root."""
        bid = _b32(batch_id, "batch_id")
        siblings = [_b32(p, f"proof[{i}]") for i, p in enumerate(proof)]
        s, d = _b32(salt, "salt"), _b32(digest, "digest")
        return bool(
            self._call(lambda: self.contract.functions.verify(bid, header.as_abi_tuple(), s, d, siblings).call())
        )

    def anchored_events(self, from_block: int, to_block: int | str = "latest") -> list[AnchoredEvent]:
        """Anchor events (``BatchAnchored``, ``BatchAnchoredSimple``, ``BatchCorrected``) in
        ``[from_block, to_block]``, in chain order."""
        params: Any = {
            "address": self.address,
            "fromBlock": from_block,
            "toBlock": to_block,
            "topics": [_ANCHOR_TOPICS],
        }
        logs = self._call(lambda: self.w3.eth.get_logs(params))
        events = [e for e in (decode_anchor_log(log) for log in logs) if e is not None]
        return sorted(events, key=lambda e: (e.block_number, e.log_index))

    def event_of(self, batch_id: bytes | str, from_block: int = 0) -> AnchoredEvent | None:
        """The anchor event of ``batch_id`` (filtered by its topic), None if it was never anchored.

        Lets a sender that hit ``AlreadyAnchoredError`` check whether the anchored root is its own.
        """
        bid = _b32(batch_id, "batch_id")
        params: Any = {
            "address": self.address,
            "fromBlock": from_block,
            "toBlock": "latest",
            "topics": [_ANCHOR_TOPICS, "0x" + bid.hex()],
        }
        logs = self._call(lambda: self.w3.eth.get_logs(params))
        events = [e for e in (decode_anchor_log(log) for log in logs) if e is not None]
        return events[0] if events else None

    def _receipts(self, sent: SentTx, batches: Sequence[BatchIn], *, supersedes: bytes = ZERO32) -> list[AnchorReceipt]:
        events = {
            e.batch_id: e
            for e in (decode_anchor_log(log) for log in sent.receipt["logs"] if log["address"] == self.address)
            if e is not None
        }
        block = self._call(lambda: self.w3.eth.get_block(sent.block_number))
        out = []
        for batch in batches:
            event = events.get(batch.batch_id)
            if event is None:
                raise TransactionFailed(sent.tx_hash, f"no anchor event for batch 0x{batch.batch_id.hex()}")
            header = batch.header(event.anchored_at, supersedes)
            out.append(
                AnchorReceipt(
                    batch_id=batch.batch_id,
                    tx_hash=sent.tx_hash,
                    block_number=sent.block_number,
                    block_timestamp=int(block["timestamp"]),
                    gas_used=sent.gas_used,
                    anchored_at=event.anchored_at,
                    commitment=header_commitment(header),
                    header=header,
                    batches_in_tx=len(batches),
                )
            )
        return out
