"""One background-job mechanism: named queues, each with its own threads, time limit, backoff and caps.

Work that must happen after a request lives in a database row written in the same transaction as the data
it is about (the anchoring outbox, analysis jobs, case rows waiting for ``openCase``, webhook deliveries,
relayed transactions waiting for their receipt). Those tables are *row queues*: they share the columns
``status``/``attempts``/``next_attempt_at``/``last_error`` and a lease (``claimed_by``, ``claimed_until``).
Other work is *periodic* (indexing contract events, the case/quarter scheduler).

How a row is claimed, safely with several worker processes on one database:

* a worker selects due, unclaimed rows (``claimed_until`` empty or past) — on PostgreSQL with
  ``FOR UPDATE SKIP LOCKED``, so concurrent workers skip each other's rows instead of queueing on them;
* it then takes each row with a conditional ``UPDATE … WHERE claimed_until IS NULL OR claimed_until < now``
  and keeps only the rows whose update hit (on SQLite writers are serialised, so this alone is exclusive);
* the claim lasts the queue's time limit: a worker killed mid-job leaves a claim that expires and the row is
  taken again. Handlers are idempotent (anchoring asks the chain first, analysis re-checks the job status).

An idle row queue sleeps until a commit adds rows to its table (:mod:`app.wakeups`: at once within the process,
through LISTEN/NOTIFY from other processes on PostgreSQL) or its ``poll_s`` passes, the fallback that also
picks up retries coming due.

Each queue runs in its own threads (:class:`JobRunner`), so a slow consumer (a webhook endpoint that never
answers, a long causal analysis) never holds up anchoring. Queues that send transactions with the relayer key
(anchoring, case automation, scheduling, indexing) run only in the process that holds the ``anchor-sender``
lease: one process signs with that key, so its nonces never collide.

A failed job is retried with exponential backoff (``retry_base_s * 2**(attempts-1)``, capped at
``retry_max_s``) until ``max_attempts``, then marked failed with its last error kept for the API.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.wakeups import for_sessions, listen

__all__ = [
    "JobRunner",
    "Periodic",
    "QueueSpec",
    "Retry",
    "RowQueue",
    "claim",
    "record_failure",
    "release",
]

log = logging.getLogger("qcn.jobs")


@dataclass(frozen=True)
class QueueSpec:
    """Limits of one queue."""

    name: str
    concurrency: int = 1  # threads working this queue in one process
    time_limit_s: float = 60.0  # claim duration: after it another worker may take the row again
    retry_base_s: float = 1.0
    retry_max_s: float = 3600.0
    max_attempts: int | None = 8  # None: retry for ever (anchoring: the chain is the only way out)
    batch: int = 1  # rows claimed per pass by one thread
    poll_s: float = 0.1  # idle wait between passes
    min_gap_s: float = 0.0  # wait between passes that did work too (periodic work that is cheaper in bulk)
    # a row queue under load (new rows were committed while a pass worked) waits this long before its next pass,
    # so that the pass takes more rows at once (anchoring: fewer, fuller transactions); an idle queue still
    # starts at once on a new row
    coalesce_s: float = 0.0
    # a row queue with no pending row at all sleeps this long between passes instead of ``poll_s`` (new rows wake
    # it at once; rows waiting for their next attempt keep the ``poll_s`` pace). None: always ``poll_s``
    idle_poll_s: float | None = None
    needs_sender: bool = False  # runs only where the relayer-key lease is held
    # how long a claim lasts before the handler starts on the row (None: time_limit_s). A handler that works a
    # claim's rows one after another renews each to time_limit_s as it starts it (renew_claim), so the rows a
    # killed worker had not started are free again after this, not after the full time limit
    claim_s: float | None = None


class Retry(Exception):
    """Raised (or returned) by a handler for one row: retry after ``delay_s`` (None: the queue's backoff),
    or give up now when ``permanent``; ``count=False`` reschedules without counting a failed attempt."""

    def __init__(
        self, message: str, *, delay_s: float | None = None, permanent: bool = False, count: bool = True
    ) -> None:
        super().__init__(message)
        self.delay_s = delay_s
        self.permanent = permanent
        self.count = count  # False: "not yet" (waiting for a receipt), not a failed attempt


@dataclass(frozen=True)
class RowQueue:
    """A table used as a queue. ``handle`` gets the claimed primary keys and returns, per key, None when the
    job is finished (the handler committed its result) or the exception to record as a failed attempt."""

    spec: QueueSpec
    model: type[Any]
    handle: Callable[[list[Any]], dict[Any, BaseException | None]]
    status_col: str = "status"
    where: Callable[[datetime], Sequence[Any]] = lambda _now: ()
    before: Callable[[], object] | None = None  # run before each claim (e.g. discover new case rows)
    # claims one at a time across threads and processes: needed when ``where`` counts rows in flight (a cap),
    # which two concurrent claims would both read before either writes
    serialize: bool = False

    def column(self, name: str) -> Any:
        return getattr(self.model, name)


@dataclass(frozen=True)
class Periodic:
    """Work without rows: ``run`` is called every ``spec.poll_s`` (again at once when it reports progress)."""

    spec: QueueSpec
    run: Callable[[], int]


# ------------------------------------------------------------------------------------------------ rows
def _due(q: RowQueue, now: datetime) -> list[Any]:
    claimed_until = q.column("claimed_until")
    return [
        q.column(q.status_col) == "pending",
        q.column("next_attempt_at") <= now,
        or_(claimed_until.is_(None), claimed_until < now),
        *q.where(now),
    ]


_CLAIM_LOCKS: dict[str, threading.Lock] = {}


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a queue name."""
    return int.from_bytes(hashlib.sha256(f"qcn-queue:{name}".encode()).digest()[:8], "big", signed=True)


def claim(sessions: sessionmaker[Session], q: RowQueue, holder: str, *, limit: int | None = None) -> list[Any]:
    """Claim up to ``limit`` due rows of ``q`` for ``holder``; returns their primary keys, oldest first."""
    now = utcnow()
    pk = q.model.__mapper__.primary_key[0]
    until = now + timedelta(seconds=q.spec.time_limit_s if q.spec.claim_s is None else q.spec.claim_s)
    # an idle queue is polled often (several threads per queue): look without locking first, so an empty poll
    # takes neither SQLite's single write lock nor PostgreSQL row locks away from the requests
    if not _any_row(sessions, q, _due(q, now)):
        return []
    lock = _CLAIM_LOCKS.setdefault(q.spec.name, threading.Lock()) if q.serialize else contextlib.nullcontext()
    with lock, sessions() as s, s.begin():
        if q.serialize and s.get_bind().dialect.name == "postgresql":
            # other processes: a transaction-scoped advisory lock per queue, released at commit
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(q.spec.name)})
        ids = list(
            s.scalars(
                select(pk)
                .where(*_due(q, now))
                .order_by(pk)
                .limit(limit or q.spec.batch)
                .with_for_update(skip_locked=True, of=q.model)
            )
        )
        if not ids:
            return []
        # one statement for the lot; the claim condition again, row by row (SQLite has no row locks)
        claimed_until = q.column("claimed_until")
        taken = set(
            s.scalars(
                update(q.model)
                .where(pk.in_(ids), or_(claimed_until.is_(None), claimed_until < now))
                .values(claimed_by=holder, claimed_until=until)
                .returning(pk)
                .execution_options(synchronize_session=False)
            )
        )
    return [row_id for row_id in ids if row_id in taken]


def has_pending(sessions: sessionmaker[Session], q: RowQueue) -> bool:
    """Whether ``q`` has a pending row, due now or later."""
    return _any_row(sessions, q, [q.column(q.status_col) == "pending", *q.where(utcnow())])


def _any_row(sessions: sessionmaker[Session], q: RowQueue, conditions: Sequence[Any]) -> bool:
    """Whether a row of ``q`` meets ``conditions``: a look without locks and without a write transaction."""
    pk = q.model.__mapper__.primary_key[0]
    with sessions() as s:
        return s.scalars(select(pk).where(*conditions).limit(1)).first() is not None


def renew_claim(sessions: sessionmaker[Session], model: type[Any], row_id: Any, holder: str, limit_s: float) -> bool:
    """Extend ``holder``'s claim on one row to ``limit_s`` from now; False when the claim is no longer its own
    (it lapsed and another holder took the row)."""
    pk = model.__mapper__.primary_key[0]
    with sessions() as s, s.begin():
        hit = s.execute(
            update(model)
            .where(pk == row_id, model.claimed_by == holder)
            .values(claimed_until=utcnow() + timedelta(seconds=limit_s))
            .execution_options(synchronize_session=False)
        )
    return getattr(hit, "rowcount", 0) == 1


def release(sessions: sessionmaker[Session], q: RowQueue, holder: str, ids: Sequence[Any]) -> None:
    """Give up the claims of ``holder`` on ``ids`` (the rows keep whatever status their handler set)."""
    if not ids:
        return
    pk = q.model.__mapper__.primary_key[0]
    with sessions() as s, s.begin():
        s.execute(
            update(q.model)
            .where(and_(pk.in_(list(ids)), q.column("claimed_by") == holder))
            .values(claimed_by=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )


def backoff_s(spec: QueueSpec, attempts: int) -> float:
    """Delay before attempt ``attempts + 1``."""
    return float(min(spec.retry_max_s, spec.retry_base_s * 2 ** max(attempts - 1, 0)))


def record_failure(sessions: sessionmaker[Session], q: RowQueue, row_id: Any, exc: BaseException) -> None:
    """Count a failed attempt on a row, keep its error, schedule the retry or mark it failed for good."""
    with sessions() as s, s.begin():
        row = s.get(q.model, row_id)
        if row is None:
            return
        retry = exc if isinstance(exc, Retry) else None
        row.claimed_by, row.claimed_until = None, None
        if retry is not None and not retry.count:
            row.next_attempt_at = utcnow() + timedelta(seconds=retry.delay_s or 0.0)
            return
        row.attempts = (row.attempts or 0) + 1
        row.last_error = str(exc)[:2000]
        limit = q.spec.max_attempts
        if (retry is not None and retry.permanent and retry.delay_s is None) or (
            limit is not None and row.attempts >= limit
        ):
            setattr(row, q.status_col, "failed")
            log.error("%s job %s failed for good: %s", q.spec.name, row_id, exc)
            return
        delay = retry.delay_s if retry is not None and retry.delay_s is not None else backoff_s(q.spec, row.attempts)
        row.next_attempt_at = utcnow() + timedelta(seconds=delay)


def run_rows(sessions: sessionmaker[Session], q: RowQueue, holder: str, *, limit: int | None = None) -> int:
    """One pass of a row queue: claim, handle, record failures, release; returns how many rows finished."""
    if q.before is not None:
        q.before()
    ids = claim(sessions, q, holder, limit=limit)
    if not ids:
        return 0
    started = time.monotonic()
    try:
        results = q.handle(ids)
    except Exception as exc:  # a handler bug must not kill the queue: every row gets the error
        log.exception("%s handler failed", q.spec.name)
        results = dict.fromkeys(ids, exc)
    took = time.monotonic() - started
    if took > q.spec.time_limit_s:
        log.warning(
            "%s: %d job(s) took %.1f s, over the %.1f s limit", q.spec.name, len(ids), took, q.spec.time_limit_s
        )
    finished = 0
    for row_id in ids:
        outcome = results.get(row_id)
        if outcome is None:
            finished += 1
        else:
            record_failure(sessions, q, row_id, outcome)
    release(sessions, q, holder, [i for i in ids if results.get(i) is None])
    return finished


# ---------------------------------------------------------------------------------------------- runner
@dataclass
class _QueueStats:
    passes: int = 0
    finished: int = 0
    errors: int = 0


@dataclass
class JobRunner:
    """Runs every queue in its own threads until ``stop`` is set.

    ``sender_held`` says whether this process may send with the relayer key (the anchor-sender lease);
    queues with ``needs_sender`` idle while it is False.
    """

    sessions: sessionmaker[Session]
    holder: str
    queues: list[RowQueue | Periodic]
    sender_held: Callable[[], bool] = lambda: True
    stats: dict[str, _QueueStats] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    listener: tuple[threading.Thread, threading.Event] | None = None  # PostgreSQL: LISTEN thread, its "ready"

    def run_pass(self, q: RowQueue | Periodic, *, limit: int | None = None) -> int:
        """One pass of one queue in the calling thread; returns how much it did."""
        if q.spec.needs_sender and not self.sender_held():
            return 0
        if isinstance(q, Periodic):
            return q.run()
        return run_rows(self.sessions, q, self.holder, limit=limit)

    def drain_once(self) -> dict[str, int]:
        """Every queue once, in order, in the calling thread (``qcn worker --once``, tests). A queue whose
        pass fails (a node outage) is logged and skipped, as in the threads."""
        done: dict[str, int] = {}
        for q in self.queues:
            try:
                done[q.spec.name] = self.run_pass(q, limit=max(q.spec.batch, 50))
            except Exception as exc:
                log.warning("%s pass failed: %s", q.spec.name, exc)
                done[q.spec.name] = 0
        return done

    def _loop(self, q: RowQueue | Periodic, stop: threading.Event, wake: threading.Event | None) -> None:
        st = self.stats.setdefault(q.spec.name, _QueueStats())
        while not stop.is_set():
            if wake is not None:
                wake.clear()  # before the pass: rows committed during it set it again, so none is missed
            try:
                done = self.run_pass(q)
            except Exception:  # the queue keeps running; the row-level errors are on the rows
                log.exception("%s pass failed", q.spec.name)
                st.errors += 1
                done = 0
            st.passes += 1
            st.finished += done
            if not done:
                # a row queue sleeps until rows are committed for it (app.wakeups) or its poll interval passes
                (wake or stop).wait(self._idle_wait(q))
            elif q.spec.min_gap_s:
                stop.wait(q.spec.min_gap_s)
            elif q.spec.coalesce_s and wake is not None and wake.is_set():
                stop.wait(q.spec.coalesce_s)

    def _idle_wait(self, q: RowQueue | Periodic) -> float:
        """How long a pass that found nothing due waits for a wake-up before the next one."""
        if not isinstance(q, RowQueue) or q.spec.idle_poll_s is None:
            return q.spec.poll_s
        if q.spec.needs_sender and not self.sender_held():  # a standby process: no query for it
            return max(q.spec.idle_poll_s, q.spec.poll_s)
        try:
            return q.spec.poll_s if has_pending(self.sessions, q) else max(q.spec.idle_poll_s, q.spec.poll_s)
        except Exception:  # the database is away: the short poll, as before
            log.warning("%s: could not look for pending rows", q.spec.name, exc_info=True)
            return q.spec.poll_s

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        """Start every queue's threads; row queues are woken by commits of new rows (:mod:`app.wakeups`)."""
        wakeups = for_sessions(self.sessions)
        events: list[tuple[str, threading.Event]] = []
        for q in self.queues:
            for i in range(max(q.spec.concurrency, 1)):
                wake = None
                if isinstance(q, RowQueue):
                    table = str(q.model.__table__.name)
                    wake = wakeups.subscribe(table)
                    events.append((table, wake))
                t = threading.Thread(
                    target=self._loop, args=(q, stop, wake), name=f"qcn-{q.spec.name}-{i}", daemon=True
                )
                t.start()
                self.threads.append(t)
        bind = self.sessions.kw.get("bind")
        if isinstance(bind, Engine):
            self.listener = listen(bind, wakeups, stop)  # other processes' commits (PostgreSQL)

        def _on_stop() -> None:
            stop.wait()
            for table, ev in events:
                ev.set()  # threads asleep on their wake-up event stop now, not at their next poll
                wakeups.unsubscribe(table, ev)

        threading.Thread(target=_on_stop, name="qcn-jobs-stop", daemon=True).start()
        return self.threads
