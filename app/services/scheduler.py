"""The tracing scheduler: one call per pass of the ``scheduling`` queue (:mod:`app.jobs`) moves every case
and agreement along by itself. Indexing, case opening and webhook delivery are queues of their own.

:func:`run_due` does, in order:

1. advance deadlines against the *chain's* clock (the latest block's timestamp, so time travel on a dev
   chain and block time in production behave alike): ``advanceToLab`` once a silent supplier's deadline
   passed, ``markLabDeadlineMissed`` once a lab's passed, ``settle`` for accepted / arbitrated cases, for
   verdicts whose dispute window closed in silence, for disputes past their arbitration deadline (the
   lab's verdict stands) and for cases whose lab stayed silent (closed without penalty);
4. every ``scheduler_evaluate_interval_s`` of chain time: ``evaluate(agreement, quarter)`` for each ended, unevaluated
   quarter of the active agreements (the agreement's evaluation is due once a quarter has ended);
5. index the events of what was just sent, so case state follows without waiting for the indexing queue.

Idempotent: a revert meaning "already done" (``InvalidState``, ``DeadlineNotPassed``,
``LabBreachAlreadyRecorded``, ``AlreadyEvaluated``, ...) just waits for the indexer; other failures block the
case for a minute of chain time so a broken case cannot make every pass send a doomed transaction. Idle, a
pass costs one block-number call, one block header per contract cursor and a few indexed queries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.chainctx import ChainContext, b32
from app.db import AgreementRecord, CaseRecord, ChainCursor
from app.services import indexer
from app.settings import Settings
from chain.agreements import AgreementState
from chain.errors import ChainError, ContractRevert

__all__ = ["PassReport", "advance_deadlines", "evaluate_quarters", "run_due"]

log = logging.getLogger("qcn.scheduler")

_DONE_ALREADY = {
    "InvalidState",
    "DeadlineNotPassed",
    "LabBreachAlreadyRecorded",
    "AlreadyEvaluated",
    "QuarterNotEnded",
    "UnknownCase",
}
_BLOCK_SECONDS = 60
_EVALUATE_MARK = "scheduler:evaluate"  # chain time of the last quarter check


@dataclass
class PassReport:
    """What one scheduler pass did."""

    indexed: int = 0
    opened: int = 0
    advanced: list[tuple[str, str]] = field(default_factory=list)  # (case id, action)
    evaluated: list[tuple[str, int]] = field(default_factory=list)  # (agreement id, quarter)
    delivered: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        """True if the pass changed anything (the worker then runs again without sleeping)."""
        return bool(self.opened or self.advanced or self.evaluated or self.delivered)


def _action(case: CaseRecord, now: int) -> str | None:
    if case.scheduler_blocked_until is not None and now < case.scheduler_blocked_until:
        return None
    if case.state in ("accepted", "arbitrated"):
        return "settle"
    if case.deadline is None or now <= case.deadline:
        return None
    if case.state == "opened":
        return "advance_to_lab"
    if case.state in ("supplier_responded", "supplier_defaulted"):
        # a silent lab: record the breach; one lab period later the contract closes the case unpenalised
        # (settle reverts DeadlineNotPassed until then, which the next pass simply retries)
        return "settle" if case.lab_deadline_missed else "mark_lab_deadline_missed"
    if case.state in ("verdict_submitted", "disputed"):
        return "settle"  # undisputed past the window, or not ruled by the arbitration deadline: the verdict stands
    return None


def advance_deadlines(*, sessions: sessionmaker[Session], chain: ChainContext, report: PassReport) -> int:
    """Send the deadline transactions that are due at the chain's current time; returns that time."""
    now = chain.rpc.latest_timestamp()
    with sessions() as s:
        rows = s.execute(
            select(
                CaseRecord.id,
                CaseRecord.case_id,
                CaseRecord.state,
                CaseRecord.deadline,
                CaseRecord.lab_deadline_missed,
                CaseRecord.scheduler_blocked_until,
            )
            .where(
                CaseRecord.open_status == "done",
                CaseRecord.state.in_(
                    (
                        "opened",
                        "supplier_responded",
                        "supplier_defaulted",
                        "verdict_submitted",
                        "disputed",
                        "accepted",
                        "arbitrated",
                    )
                ),
            )
            .order_by(CaseRecord.deadline)
        ).all()
    for pk, case_id, state, deadline, missed, blocked in rows:
        probe = CaseRecord(state=state, deadline=deadline, lab_deadline_missed=missed, scheduler_blocked_until=blocked)
        action = _action(probe, now)
        if action is None or case_id is None:
            continue
        try:
            getattr(chain.cases, action)(b32(case_id))
            report.advanced.append((case_id, action))
            log.info("case %s: %s", case_id, action)
        except ContractRevert as exc:
            if exc.name not in _DONE_ALREADY:
                _block(sessions, pk, now, exc, report)
        except ChainError as exc:
            _block(sessions, pk, now, exc, report)
    return now


def _block(sessions: sessionmaker[Session], pk: int, now: int, exc: Exception, report: PassReport) -> None:
    report.errors.append(str(exc))
    log.warning("scheduler action on case row %s failed: %s", pk, exc)
    with sessions() as s, s.begin():
        case = s.get(CaseRecord, pk)
        if case is not None:
            case.scheduler_blocked_until = now + _BLOCK_SECONDS
            case.last_error = str(exc)[:2000]


def evaluate_quarters(*, sessions: sessionmaker[Session], chain: ChainContext, report: PassReport) -> None:
    """Evaluate every ended, not yet evaluated quarter of the gateway's active agreements (in order)."""
    with sessions() as s:
        ids = list(
            s.scalars(select(AgreementRecord.agreement_id).where(AgreementRecord.status.in_(("active", "suspended"))))
        )
    for agreement_id in ids:
        aid = b32(agreement_id)
        try:
            on_chain = chain.agreements.agreement(aid)
            if on_chain.state not in (AgreementState.ACTIVE, AgreementState.SUSPENDED):
                continue
            current = chain.agreements.current_quarter(aid)
            for quarter in range(on_chain.next_quarter, current):
                chain.agreements.evaluate(aid, quarter)
                report.evaluated.append((agreement_id, quarter))
        except ContractRevert as exc:
            if exc.name not in _DONE_ALREADY:
                report.errors.append(str(exc))
                log.warning("evaluating agreement %s failed: %s", agreement_id, exc)
        except ChainError as exc:
            report.errors.append(str(exc))


def _evaluation_due(sessions: sessionmaker[Session], now: int, interval: float) -> bool:
    """True once per ``interval`` seconds of chain time; the mark is a row in ``chain_cursors``."""
    with sessions() as s, s.begin():
        mark = s.get(ChainCursor, _EVALUATE_MARK, with_for_update=True)
        if mark is None:
            s.add(ChainCursor(name=_EVALUATE_MARK, address="-", block_number=now, block_hash=None))
            return True
        if now - mark.block_number < interval and now >= mark.block_number:
            return False
        mark.block_number = now
        return True


def run_due(*, sessions: sessionmaker[Session], chain: ChainContext, settings: Settings) -> PassReport:
    """One pass (see the module docstring); never raises for a chain outage (kept in ``errors``)."""
    report = PassReport()
    try:
        now = advance_deadlines(sessions=sessions, chain=chain, report=report)
        if _evaluation_due(sessions, now, settings.scheduler_evaluate_interval_s):
            evaluate_quarters(sessions=sessions, chain=chain, report=report)
        if report.advanced or report.evaluated:
            report.indexed += indexer.sync(sessions=sessions, chain=chain, settings=settings)
    except ChainError as exc:
        report.errors.append(str(exc))
        log.warning("tracing pass interrupted: %s", exc)
    return report
