"""Event indexer: follows ``TracingCases``, ``AgreementRegistry`` and the consortium registry into the database.

One cursor per contract (:class:`~app.db.ChainCursor`: last block read and its hash). Every pass
(:func:`sync`, called by the worker):

1. if the block under a cursor changed hash or is above the head, the chain went back (a reorg, a dev chain
   restored from an older state file): events above a safe block (``indexer_reorg_depth`` back) are deleted,
   the cases they touched are folded again, and reading resumes from the safe block;
2. logs from the cursor to ``head - indexer_confirmations`` are read in ``indexer_max_blocks`` ranges,
   decoded and stored as :class:`~app.db.ChainEventRecord` — (block, tx, log index) is unique, and the
   events, the case rows they change, the webhook deliveries they cause and the cursor move commit together,
   so a crash repeats a range instead of losing or doubling it;
3. each touched case is re-derived from *all* its stored events (:func:`fold_case`): state, deadline,
   verdict, acceptances — what the contract said, never what the gateway expected.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.chainctx import ChainContext
from app.db import AgreementRecord, Batch, CaseRecord, ChainCursor, ChainEventRecord, Party
from app.services.webhooks import Fanout
from app.settings import Settings
from chain.abi import event_topics

__all__ = ["CASE_STATES", "IndexedEvent", "event_args", "fold_case", "sync"]

log = logging.getLogger("qcn.indexer")

#: ``ITracingCases.CaseState`` names as the database stores them (``pending_open`` = not on chain yet)
CASE_STATES = (
    "none",
    "opened",
    "supplier_responded",
    "supplier_defaulted",
    "verdict_submitted",
    "accepted",
    "disputed",
    "arbitrated",
    "settled",
)
_SAFE_INT = 2**53


@dataclass(frozen=True)
class IndexedEvent:
    """A stored event as the fold and the webhooks see it."""

    name: str
    args: dict[str, Any]
    block_number: int
    block_time: int
    tx_hash: str


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_SAFE_INT < value < _SAFE_INT else str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def event_args(row: ChainEventRecord) -> dict[str, Any]:
    """The stored arguments of an event (bytes as 0x hex, big integers as decimal text)."""
    out: dict[str, Any] = json.loads(row.args)
    return out


def _targets(chain: ChainContext) -> list[tuple[str, Any]]:
    return [
        ("TracingCases", chain.cases.contract),
        ("AgreementRegistry", chain.agreements.contract),
        ("Registry", chain.anchors.contract),
    ]


def _topics(contract: Any) -> dict[bytes, str]:
    return event_topics(contract.abi)


# --------------------------------------------------------------------------------------------------- folding
def _apply(case: CaseRecord, ev: IndexedEvent, oem_account: str) -> None:
    a = ev.args
    if ev.name == "CaseOpened":
        case.state, case.deadline, case.opened_at = "opened", int(a["supplierDeadline"]), ev.block_time
        case.lab_account = str(a["lab"])
        case.lab_fee = str(a["labFee"])
        case.analysis_hash = str(a["analysisHash"])
        case.open_status = "done"
        case.open_tx = case.open_tx or ev.tx_hash
    elif ev.name == "SupplierResponded":
        case.state, case.deadline = "supplier_responded", int(a["labDeadline"])
    elif ev.name == "SupplierDefaulted":
        case.state, case.deadline = "supplier_defaulted", int(a["labDeadline"])
    elif ev.name == "VerdictSubmitted":
        case.state, case.deadline = "verdict_submitted", int(a["disputeDeadline"])
        case.verdict_hash = str(a["verdictHash"])
        case.root_cause_code = str(a["rootCauseCode"])
        case.responsible_party, case.nc_class = int(a["responsibleParty"]), int(a["ncClass"])
        case.round = int(a["round"])
    elif ev.name == "VerdictFinalized":  # lab verdict and both acceptances submitted in one transaction
        case.state, case.deadline = "accepted", None
        case.verdict_hash = str(a["verdictHash"])
        case.root_cause_code = str(a["rootCauseCode"])
        case.responsible_party, case.nc_class = int(a["responsibleParty"]), int(a["ncClass"])
        case.round = int(a["round"])
        case.oem_accepted = case.supplier_accepted = True
    elif ev.name == "VerdictAccepted":
        if str(a["party"]).lower() == oem_account:
            case.oem_accepted = True
        else:
            case.supplier_accepted = True
        if a["caseAccepted"]:
            case.state, case.deadline = "accepted", None
    elif ev.name == "VerdictDisputed":
        case.state, case.deadline = "disputed", int(a["arbitrationDeadline"])
    elif ev.name == "LabDeadlineMissed":
        case.lab_deadline_missed = True
    elif ev.name == "LabReassigned":
        case.lab_account, case.round, case.deadline = str(a["newLab"]), int(a["round"]), int(a["labDeadline"])
        case.lab_deadline_missed = False
    elif ev.name == "CaseArbitrated":
        case.state, case.deadline = "arbitrated", None
        case.responsible_party, case.nc_class = int(a["responsibleParty"]), int(a["ncClass"])
        case.root_cause_code = str(a["rootCauseCode"])
    elif ev.name == "CaseSettled":
        case.state, case.deadline = "settled", None
        case.penalized, case.lab_fee_paid = bool(a["penalized"]), str(a["labFeePaid"])


def fold_case(*, session: Session, case: CaseRecord) -> None:
    """Re-derive ``case`` from every stored ``TracingCases`` event of its id (in chain order)."""
    rows = session.scalars(
        select(ChainEventRecord)
        .where(ChainEventRecord.case_id == case.case_id, ChainEventRecord.contract == "TracingCases")
        .order_by(ChainEventRecord.block_number, ChainEventRecord.log_index)
    ).all()
    oem = session.get(Party, case.oem_id) if case.oem_id else None
    oem_account = (oem.account or "").lower() if oem else ""
    if not rows:
        if case.open_status == "done":  # the opening vanished from the chain: open it again
            case.open_status, case.state = "pending", "pending_open"
        return
    case.state, case.deadline, case.verdict_hash, case.root_cause_code = "pending_open", None, None, None
    case.responsible_party = case.nc_class = None
    case.oem_accepted = case.supplier_accepted = case.lab_deadline_missed = False
    case.penalized, case.lab_fee_paid, case.round = None, None, 0
    for row in rows:
        _apply(
            case, IndexedEvent(row.name, event_args(row), row.block_number, row.block_time, row.tx_hash), oem_account
        )
    if case.lab_account:
        lab = session.scalars(select(Party).where(Party.account.ilike(case.lab_account))).first()
        case.lab_id = lab.id if lab is not None else None


def _case_for_opened(session: Session, case_id: str, args: dict[str, Any]) -> CaseRecord:
    """The case row of a ``CaseOpened`` event: ours (predicted id), or a new row for a case opened elsewhere."""
    case = session.scalars(select(CaseRecord).where(CaseRecord.case_id == case_id)).first()
    if case is not None:
        return case
    batch = session.scalars(select(Batch).where(Batch.batch_id == str(args["batchId"]))).first()
    agreement = session.scalars(
        select(AgreementRecord).where(AgreementRecord.agreement_id == str(args["agreementId"]))
    ).first()
    supplier = session.scalars(select(Party).where(Party.account.ilike(str(args["supplier"])))).first()
    case = CaseRecord(
        case_id=case_id,
        batch_pk=batch.id if batch else None,
        batch_id=str(args["batchId"]),
        agreement_id=str(args["agreementId"]),
        oem_id=agreement.oem_id if agreement else None,
        supplier_id=supplier.id if supplier else (agreement.supplier_id if agreement else None),
        open_status="done",
    )
    session.add(case)
    session.flush()
    return case


# --------------------------------------------------------------------------------------------------- syncing
def _cursor(session: Session, name: str, address: str, start: int) -> ChainCursor:
    cursor = session.get(ChainCursor, name, with_for_update=True)
    if cursor is None or cursor.address != address:
        if cursor is not None:  # a new deployment: its history starts over
            session.execute(delete(ChainEventRecord).where(ChainEventRecord.contract == name))
            session.delete(cursor)
            session.flush()
        cursor = ChainCursor(name=name, address=address, block_number=start, block_hash=None)
        session.add(cursor)
        session.flush()
    return cursor


def _block_hash(chain: ChainContext, number: int) -> str:
    block = chain.rpc.block(number)
    return "0x" + bytes(block["hash"]).hex()


def _hash_at(chain: ChainContext, number: int, hashes: dict[int, str]) -> str:
    """The hash of block ``number``, read once per pass (``hashes``) however many cursors ask."""
    if number not in hashes:
        hashes[number] = _block_hash(chain, number)
    return hashes[number]


def _rewind(
    session: Session, chain: ChainContext, settings: Settings, cursor: ChainCursor, head: int, start: int
) -> set[str]:
    safe = max(start, min(cursor.block_number, head) - settings.indexer_reorg_depth)
    log.warning(
        "chain went back under %s cursor at block %d: re-reading from %d", cursor.name, cursor.block_number, safe
    )
    touched = set(
        session.scalars(
            select(ChainEventRecord.case_id).where(
                ChainEventRecord.contract == cursor.name,
                ChainEventRecord.block_number > safe,
                ChainEventRecord.case_id.is_not(None),
            )
        ).all()
    )
    session.execute(
        delete(ChainEventRecord).where(ChainEventRecord.contract == cursor.name, ChainEventRecord.block_number > safe)
    )
    cursor.block_number = safe
    cursor.block_hash = _block_hash(chain, safe) if safe >= 0 else None
    return {t for t in touched if t}


def _refold(session: Session, case_ids: Iterable[str]) -> None:
    for case_id in sorted(set(case_ids)):
        case = session.scalars(select(CaseRecord).where(CaseRecord.case_id == case_id)).first()
        if case is not None:
            fold_case(session=session, case=case)


def _up_to_date(
    sessions: sessionmaker[Session],
    chain: ChainContext,
    name: str,
    address: str,
    head: int,
    latest: int,
    hashes: dict[int, str],
) -> bool:
    """Nothing new to read and no reorg under the cursor, judged without a lock: most polls end here, so an
    idle indexer neither takes the database's write lock (SQLite has one) nor holds it across an RPC."""
    with sessions() as s:
        cursor = s.get(ChainCursor, name)
        if cursor is None or cursor.address != address or not head <= cursor.block_number <= latest:
            return False
        if cursor.block_hash is None:
            return True
        number, known = cursor.block_number, cursor.block_hash
    return _hash_at(chain, number, hashes) == known


# per chain context: the tip (hash, confirmations, sessions) after which every cursor was found at the head
_QUIET: weakref.WeakKeyDictionary[ChainContext, tuple[str, int, int]] = weakref.WeakKeyDictionary()


def sync(*, sessions: sessionmaker[Session], chain: ChainContext, settings: Settings) -> int:
    """Read new events of the three contracts into the database; returns how many were stored.

    A pass whose latest block is the one the previous pass ended at, with every cursor at the head, returns at
    once: a block hash covers all history below it, so no block was added and none replaced (the indexer runs
    ten times a second; most passes see no new block)."""
    tip = chain.rpc.block("latest")
    latest = int(tip["number"])
    quiet = ("0x" + bytes(tip["hash"]).hex(), settings.indexer_confirmations, id(sessions))
    if _QUIET.get(chain) == quiet:
        return 0
    head = latest - settings.indexer_confirmations
    start = max(chain.deployment.block_number - 1, 0)
    stored = 0
    hashes: dict[int, str] = {latest: quiet[0]}
    current = True  # every cursor found at the head, on this chain
    for name, contract in _targets(chain):
        address = str(to_checksum_address(contract.address))
        if _up_to_date(sessions, chain, name, address, head, latest, hashes):
            continue
        current = False
        with sessions() as s, s.begin():
            cursor = _cursor(s, name, address, start)
            if cursor.block_number > latest or (
                cursor.block_hash is not None and _hash_at(chain, cursor.block_number, hashes) != cursor.block_hash
            ):
                _refold(s, _rewind(s, chain, settings, cursor, head, start))
            position = cursor.block_number
        while position < head:
            to_block = min(head, position + settings.indexer_max_blocks)
            stored += _read_range(sessions, chain, name, contract, address, position + 1, to_block, tip, hashes)
            position = to_block
    if current:
        _QUIET[chain] = quiet
    return stored


def _read_range(
    sessions: sessionmaker[Session],
    chain: ChainContext,
    name: str,
    contract: Any,
    address: str,
    lo: int,
    hi: int,
    tip: Mapping[str, Any],
    hashes: dict[int, str],
) -> int:
    """``tip`` (the latest block) and ``hashes`` (block hashes by number) are this pass's, shared by the
    contracts: the same blocks are not fetched again for each."""
    params: Any = {"address": address, "fromBlock": lo, "toBlock": hi}
    logs = chain.rpc.logs(params)
    topics = _topics(contract)
    times: dict[int, int] = {int(tip["number"]): int(tip["timestamp"])}
    hi_hash = _hash_at(chain, hi, hashes)
    stored = 0
    with sessions() as s, s.begin():
        cursor = s.get(ChainCursor, name, with_for_update=True)
        if cursor is None or cursor.block_number != lo - 1:
            return 0  # another process moved it meanwhile
        touched: set[str] = set()
        fanout = Fanout(s)
        # the events of this range stored already (a pass that died after storing them): one query, not one each
        known = set(
            s.execute(
                select(ChainEventRecord.block_number, ChainEventRecord.tx_hash, ChainEventRecord.log_index).where(
                    ChainEventRecord.block_number.between(lo, hi)
                )
            ).tuples()
        )
        for raw in logs:
            if not raw["topics"]:
                continue
            event_name = topics.get(bytes(raw["topics"][0]))
            if event_name is None:
                continue
            block = int(raw["blockNumber"])
            tx_hash = "0x" + bytes(raw["transactionHash"]).hex()
            log_index = int(raw["logIndex"])
            if (block, tx_hash, log_index) in known:
                continue
            if block not in times:
                blk = chain.rpc.block(block)
                times[block] = int(blk["timestamp"])
            args = _jsonable(dict(contract.events[event_name]().process_log(raw)["args"]))
            case_id = args.get("caseId")
            row = ChainEventRecord(
                contract=name,
                name=event_name,
                case_id=case_id,
                agreement_id=args.get("agreementId"),
                batch_id=args.get("batchId"),
                block_number=block,
                block_hash="0x" + bytes(raw["blockHash"]).hex(),
                block_time=times[block],
                tx_hash=tx_hash,
                log_index=log_index,
                args=json.dumps(args, sort_keys=True),
            )
            # inserted with the range's other events at the next flush (one statement for many): only a webhook
            # delivery needs its id before that, and Fanout.enqueue flushes then
            s.add(row)
            known.add((block, tx_hash, log_index))  # a node that repeats a log in its answer: stored once
            stored += 1
            case: CaseRecord | None = None
            if name == "TracingCases" and case_id:
                case = _case_for_opened(s, case_id, args) if event_name == "CaseOpened" else None
                if case is None:
                    case = s.scalars(select(CaseRecord).where(CaseRecord.case_id == case_id)).first()
                if case is not None:
                    fold_case(session=s, case=case)
                    touched.discard(case_id)
            elif case_id:
                touched.add(case_id)
            fanout.enqueue(row, case)
        _refold(s, touched)
        cursor.block_number, cursor.block_hash = hi, hi_hash
    return stored
