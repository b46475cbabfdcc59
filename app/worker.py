"""The worker: every background queue (:mod:`app.jobs`) of the gateway, and the anchoring queue itself.

Queues, each in its own threads with its own time limit and backoff, so a slow one never delays another:
``anchoring`` (outbox -> chain), ``analysis``, ``cases`` (open tracing cases), ``indexing`` (contract events),
``scheduling`` (case deadlines, quarter evaluations), ``webhooks``, ``relay`` (receipts of relayed
transactions) and ``reconcile``. Those that send with
the relayer key run only in the process that holds the ``anchor-sender`` lease.

Anchoring, exactly once per batch:

1. claim due outbox rows (oldest first), group them by supplier;
2. ask the chain which of those batch ids already carry a commitment (a previous run may have sent the
   transaction and died before recording it): adopt those from their ``BatchAnchored`` event when the root
   matches, never send them again;
3. send the rest with ``anchorMany`` (or ``anchor`` for one), record the receipt and mark rows done;
4. on a node outage or a revert, the queue backs off exponentially per row and keeps the error for the API;
5. every ``reconcile_interval_s``: a batch marked anchored whose commitment is gone from the chain (a dev
   chain restored from an older state file, a reorg) goes back to pending and is anchored again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app import jobs, wakeups
from app.chainctx import AnchorResult, ChainContext, ChainHolder, b32
from app.db import (
    AgreementRecord,
    AnalysisJob,
    Batch,
    CaseRecord,
    Lease,
    OutboxItem,
    Party,
    RelayTransaction,
    WebhookDelivery,
    utcnow,
)
from app.errors import Conflict
from app.services import analysis, cases, indexer, relay, scheduler, webhooks
from app.settings import Settings
from chain.clients import BatchIn, is_supplier_batch_id
from chain.errors import ChainError, NodeUnavailable, TransactionFailed

__all__ = [
    "AnchorWorker",
    "WorkerStats",
    "run_worker_thread",
]

log = logging.getLogger("qcn.worker")

_LEASE = "anchor-sender"
_LEASE_SECONDS = 30


def _holder_alive(holder: str) -> bool:
    """A lease holder on this host whose process is gone is dead now, not in 30 s (fast restart after kill -9)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class WorkerStats:
    anchored: int = 0
    adopted: int = 0
    failed_attempts: int = 0
    requeued: int = 0
    transactions: int = 0
    analysed: int = 0
    errors: list[str] = field(default_factory=list)


class AnchorWorker:
    def __init__(self, *, settings: Settings, session_factory: sessionmaker[Session], chain: ChainContext) -> None:
        self.settings = settings
        self.sessions = session_factory
        self.chain = chain
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = WorkerStats()
        self._last_reconcile = 0.0
        self.last_analysed = 0
        self._lease_held = False
        self._lease_checked_at = 0.0
        self._lease_lock = threading.Lock()
        self._index_lock = threading.Lock()  # the indexing and scheduling queues both read events

    # -- lease -----------------------------------------------------------------------------------------------
    def acquire_lease(self) -> bool:
        """Take or renew the sender lease; False while another live worker holds it."""
        now = utcnow()
        until = now + timedelta(seconds=_LEASE_SECONDS)
        with self.sessions() as s, s.begin():
            lease = s.get(Lease, _LEASE, with_for_update=True)
            if lease is None:
                s.add(Lease(name=_LEASE, holder=self.holder, expires_at=until))
                try:
                    s.flush()
                except IntegrityError:
                    return False
                return True
            expires = lease.expires_at if lease.expires_at.tzinfo else lease.expires_at.replace(tzinfo=now.tzinfo)
            if lease.holder != self.holder and expires > now and _holder_alive(lease.holder):
                return False
            lease.holder, lease.expires_at = self.holder, until
            return True

    def release_lease(self) -> None:
        with self.sessions() as s, s.begin():
            lease = s.get(Lease, _LEASE)
            if lease is not None and lease.holder == self.holder:
                s.delete(lease)

    def sender_held(self) -> bool:
        """Whether this process holds the sender lease (renewed every few seconds)."""
        with self._lease_lock:
            now = time.monotonic()
            if now - self._lease_checked_at > _LEASE_SECONDS / 6:
                self._lease_held = self.acquire_lease()
                self._lease_checked_at = now
            return self._lease_held

    # -- queues ------------------------------------------------------------------------------------------------
    def queues(self) -> list[jobs.RowQueue | jobs.Periodic]:
        """The gateway's background queues with their limits (see the module docstring)."""
        st = self.settings
        return [
            jobs.RowQueue(
                jobs.QueueSpec(
                    "anchoring",
                    time_limit_s=st.tx_receipt_timeout_s * 2 + 30,
                    retry_base_s=st.anchor_retry_base_s,
                    retry_max_s=st.anchor_retry_max_s,
                    max_attempts=None,
                    batch=st.anchor_max_batches_per_tx * 4,
                    poll_s=st.anchor_poll_interval_s,
                    coalesce_s=st.anchor_coalesce_s,
                    needs_sender=True,
                ),
                OutboxItem,
                self._handle_anchor,
                where=lambda _now: [OutboxItem.kind == "anchor"],
            ),
            jobs.RowQueue(
                jobs.QueueSpec(
                    "analysis",
                    concurrency=st.analysis_concurrency,
                    time_limit_s=st.analysis_time_limit_s,
                    claim_s=min(st.analysis_claim_s, st.analysis_time_limit_s),  # a job renews its claim as it starts
                    retry_base_s=st.analysis_retry_base_s,
                    max_attempts=st.analysis_max_attempts,
                    # jobs of one claim run one after another, oldest first, each in its own transaction (a job's
                    # history sees the one before it); claiming several saves two round trips per job
                    batch=8,
                    poll_s=max(st.anchor_poll_interval_s, 0.05),
                ),
                AnalysisJob,
                self._handle_analysis,
            ),
            jobs.RowQueue(
                jobs.QueueSpec(
                    "cases",
                    time_limit_s=st.cases_time_limit_s,
                    retry_base_s=st.cases_retry_base_s,
                    max_attempts=st.cases_open_max_attempts,
                    batch=10,
                    poll_s=0.2,
                    # no case being opened: an anomalous analysis or an anchoring wakes the queue (its discovery)
                    idle_poll_s=st.anchor_poll_interval_s,
                    needs_sender=True,
                ),
                CaseRecord,
                self._handle_case,
                status_col="open_status",
                before=lambda: cases.discover_due(sessions=self.sessions, settings=st),
            ),
            jobs.Periodic(
                jobs.QueueSpec(
                    "indexing", poll_s=st.indexer_interval_s, min_gap_s=st.indexer_min_gap_s, needs_sender=True
                ),
                self._index,
            ),
            jobs.Periodic(
                jobs.QueueSpec("scheduling", poll_s=1.0, needs_sender=True),
                self._schedule,
            ),
            jobs.RowQueue(
                jobs.QueueSpec(
                    "webhooks",
                    concurrency=st.webhook_concurrency,
                    time_limit_s=st.webhook_timeout_s * 2 + 10,
                    retry_base_s=st.webhook_retry_base_s,
                    retry_max_s=st.webhook_retry_max_s,
                    max_attempts=st.webhook_max_attempts,
                    poll_s=1.0,  # new deliveries wake the queue at once (app/wakeups.py); this is the fallback
                ),
                WebhookDelivery,
                self._handle_webhook,
                where=webhooks.busy_parties_filter(st),
                serialize=True,  # the per-party cap counts deliveries in flight
            ),
            jobs.RowQueue(
                jobs.QueueSpec(
                    "relay",
                    concurrency=2,
                    time_limit_s=30.0,
                    retry_base_s=st.relay_poll_s,
                    retry_max_s=5.0,
                    max_attempts=10,
                    batch=20,
                    poll_s=st.relay_poll_s,  # the receipt poll of a transaction in flight
                    idle_poll_s=st.anchor_poll_interval_s,  # none in flight: a new one wakes the queue
                ),
                RelayTransaction,
                self._handle_relay,
            ),
            jobs.Periodic(
                jobs.QueueSpec("reconcile", poll_s=min(st.reconcile_interval_s, 5.0), needs_sender=True),
                self._reconcile_if_due,
            ),
        ]

    def selected_queues(self) -> list[jobs.RowQueue | jobs.Periodic]:
        """:meth:`queues` as ``worker_queues`` / ``worker_exclude_queues`` select them for this process (e.g. the
        analysis, the heaviest, in a process of its own: it then neither shares a core's time nor the GIL with
        anchoring). A wrong selection is a ValueError naming it (``Settings.selected_worker_queues``)."""
        chosen = self.settings.selected_worker_queues
        return [q for q in self.queues() if q.spec.name in chosen]

    def runner(self) -> jobs.JobRunner:
        """A runner over the :meth:`selected_queues` of this worker."""
        return jobs.JobRunner(
            sessions=self.sessions, holder=self.holder, queues=self.selected_queues(), sender_held=self.sender_held
        )

    def run_once(self) -> int:
        """One pass of every queue in this thread; returns how many batches reached the anchored state."""
        runner = self.runner()
        if any(q.spec.needs_sender for q in runner.queues):  # an analysis-only process neither needs nor takes it
            self._lease_checked_at = 0.0  # re-check the lease now
            if not self.sender_held():
                self.last_analysed = 0
                return 0
        done = runner.drain_once()
        self.last_analysed = sum(v for k, v in done.items() if k != "anchoring")
        self.stats.analysed += done.get("analysis", 0)
        return done.get("anchoring", 0)

    def _index(self) -> int:
        with self._index_lock:
            return indexer.sync(sessions=self.sessions, chain=self.chain, settings=self.settings)

    def _schedule(self) -> int:
        with self._index_lock:
            return int(scheduler.run_due(sessions=self.sessions, chain=self.chain, settings=self.settings).busy)

    def _reconcile_if_due(self) -> int:
        if time.monotonic() - self._last_reconcile >= self.settings.reconcile_interval_s:
            self.reconcile()
        return 0

    def _handle_analysis(self, ids: list[int]) -> dict[int, BaseException | None]:
        out: dict[int, BaseException | None] = {}
        limit_s = self.settings.analysis_time_limit_s
        for job_id in ids:
            # the claimed jobs run one after another: each gets its full time limit from its own start, and one
            # whose claim lapsed meanwhile (and may be another worker's now) is left alone
            if not jobs.renew_claim(self.sessions, AnalysisJob, job_id, self.holder, limit_s):
                log.warning("analysis job %s: the claim lapsed before it ran; left to its new holder", job_id)
                out[job_id] = None
                continue
            try:
                analysis.run_job(sessions=self.sessions, settings=self.settings, job_id=job_id)
                out[job_id] = None
            except Exception as exc:  # one bad batch must not stop the queue; the error is kept on the job
                log.exception("analysis of job %s failed", job_id)
                out[job_id] = jobs.Retry(f"{type(exc).__name__}: {exc}")
        return out

    def _handle_case(self, ids: list[int]) -> dict[int, BaseException | None]:
        out: dict[int, BaseException | None] = {}
        for pk in ids:
            try:
                cases.open_case_row(sessions=self.sessions, chain=self.chain, settings=self.settings, pk=pk)
                out[pk] = None
            except (ChainError, Conflict) as exc:
                log.warning("opening case row %s deferred: %s", pk, exc)
                out[pk] = exc
        return out

    def _handle_webhook(self, ids: list[int]) -> dict[int, BaseException | None]:
        out: dict[int, BaseException | None] = {}
        for delivery_id in ids:
            try:
                webhooks.deliver_one(sessions=self.sessions, settings=self.settings, delivery_id=delivery_id)
                out[delivery_id] = None
            except Exception as exc:  # the queue records the attempt; the answer's status code is kept here
                webhooks.record_status(sessions=self.sessions, delivery_id=delivery_id, exc=exc)
                log.info("webhook delivery %s failed: %s", delivery_id, exc)
                out[delivery_id] = exc
        return out

    def _handle_relay(self, ids: list[str]) -> dict[str, BaseException | None]:
        out: dict[str, BaseException | None] = {}
        for relay_id in ids:
            try:
                mined = relay.advance(sessions=self.sessions, chain=self.chain, settings=self.settings,
                                      relay_id=relay_id)  # fmt: skip
                if mined is not None and mined.follow_up:
                    self._follow_up(mined)
                out[relay_id] = None
            except jobs.Retry as exc:
                out[relay_id] = exc
            except Exception as exc:  # a node outage: retried with the queue's backoff
                log.warning("relayed transaction %s: %s", relay_id, exc)
                out[relay_id] = exc
        return out

    def _follow_up(self, row: RelayTransaction) -> None:
        """What the gateway does once a relayed transaction is mined (``follow_up`` = ``kind:key``)."""
        from app.schemas import TemplatePublic
        from app.services import agreements

        kind, _, key = (row.follow_up or "").partition(":")
        result: object = None
        try:
            with self.sessions() as s, s.begin():
                if kind == "template":
                    record = agreements.template_published(
                        session=s, chain=self.chain, template_pk=int(key), tx_hash=row.tx_hash
                    )
                    result = TemplatePublic.model_validate(record).model_dump(mode="json")
                elif kind == "agreement":
                    found = s.scalars(select(AgreementRecord).where(AgreementRecord.agreement_id == key)).first()
                    if found is not None:
                        agreements.sync_status(chain=self.chain, record=found)
                        result = {"agreement_id": key, "status": found.status}
        except Exception as exc:  # the transaction is mined; say what the gateway could not do after it
            log.exception("follow-up %s of %s failed", row.follow_up, row.tx_hash)
            result = {"error": f"{type(exc).__name__}: {exc}"}
        relay.record_result(sessions=self.sessions, relay_id=row.id, result=result)

    # -- anchoring -----------------------------------------------------------------------------------------
    def _handle_anchor(self, ids: list[int]) -> dict[int, BaseException | None]:
        """Anchor the claimed outbox rows: one ``anchorMany`` per supplier and agreement (chunked)."""
        results: dict[int, BaseException | None] = {}
        by_supplier: dict[tuple[str, str], list[tuple[OutboxItem, Batch]]] = defaultdict(list)
        for item, batch, account in self._items(ids):
            by_supplier[(account, batch.agreement_id)].append((item, batch))
        size = self.settings.anchor_max_batches_per_tx
        for (account, _agreement), group in by_supplier.items():
            for start in range(0, len(group), size):
                results |= self._anchor_group(account, group[start : start + size])
        for i in ids:
            results.setdefault(i, None)  # rows gone or no longer pending: nothing to do
        return results

    def _items(self, ids: list[int]) -> list[tuple[OutboxItem, Batch, str]]:
        with self.sessions() as s:
            rows = s.execute(
                select(OutboxItem, Batch, Party.account)
                .join(Batch, Batch.id == OutboxItem.batch_pk)
                .join(Party, Party.id == Batch.supplier_id)
                .where(OutboxItem.id.in_(ids), OutboxItem.status == "pending")
                .order_by(OutboxItem.id)
            ).all()
            return [(r[0], r[1], str(r[2])) for r in rows]

    def _anchor_group(self, account: str, group: list[tuple[OutboxItem, Batch]]) -> dict[int, BaseException | None]:
        try:
            onchain = self.chain.commitments([b.batch_id for _, b in group])
        except ChainError as exc:
            return self._failed([i.id for i, _ in group], exc)
        results: dict[int, BaseException | None] = {}
        to_send: list[tuple[OutboxItem, Batch]] = []
        for item, batch in group:
            if onchain.get(batch.batch_id):
                results[item.id] = self._adopt(item, batch)
            else:
                to_send.append((item, batch))
        for item, batch in [row for row in to_send if not is_supplier_batch_id(row[1].batch_id, account)]:
            # an id made before registry 2.1.0: refused on chain (ForeignBatchId) and would take its whole group down
            # with it on every retry; its record texts embed the id, so it cannot simply be renamed
            msg = (f"batch id {batch.batch_id} is not bound to supplier {account} (made before registry 2.1.0): the "
                   "registry refuses it; upload the files again with a new Idempotency-Key to anchor them")  # fmt: skip
            log.error("%s", msg)
            self.stats.errors.append(msg)
            results[item.id] = jobs.Retry(msg, permanent=True)
        to_send = [row for row in to_send if row[0].id not in results]
        if not to_send:
            return results
        requests = [
            BatchIn(
                batch_id=b32(b.batch_id),
                supplier=account,
                root=b32(b.root),
                record_count=b.leaf_count,
                report_hash=b32(b.report_hash),
                verdict=b.verdict,
                agreement_id=b32(b.agreement_id),
            )
            for _, b in to_send
        ]
        try:
            receipts = self.chain.anchor(requests)
        except ChainError as exc:
            return results | self._failed([i.id for i, _ in to_send], exc)
        self.stats.transactions += 1
        self._mark_anchored([(item, batch, receipts[batch.batch_id]) for item, batch in to_send])
        self.stats.anchored += len(to_send)
        log.info("anchored %d batch(es) for %s", len(to_send), account)
        return results | dict.fromkeys((i.id for i, _ in to_send), None)

    def _adopt(self, item: OutboxItem, batch: Batch) -> BaseException | None:
        """The chain already has this batch: take its receipt if it is ours (same root), else flag a conflict."""
        try:
            found = self.chain.find_anchor(batch.batch_id)
        except ChainError as exc:
            return self._failed([item.id], exc)[item.id]
        if found is None or found.root != batch.root:
            msg = f"batch id {batch.batch_id} is anchored on chain with a different root; not re-anchoring"
            log.error("%s", msg)
            self.stats.errors.append(msg)
            return jobs.Retry(msg, delay_s=3600)
        self._mark_anchored([(item, batch, found)])
        self.stats.adopted += 1
        return None

    def _mark_anchored(self, done: list[tuple[OutboxItem, Batch, AnchorResult]]) -> None:
        """Record receipts and close the outbox rows, all in one transaction (one statement per table, executed
        for every row: a group of 100 batches is 2 round trips, not 200)."""
        if not done:
            return
        with self.sessions() as s, s.begin():
            wakeups.note(s, CaseRecord.__tablename__)  # an anomalous batch anchored now may be due a tracing case
            s.connection().execute(
                update(Batch)
                .where(Batch.id == bindparam("pk"))
                .values(status="anchored", tx_hash=bindparam("tx"), block_number=bindparam("block"),
                        anchored_at=bindparam("at"), commitment=bindparam("commitment")),
                [{"pk": batch.id, "tx": r.tx_hash, "block": r.block_number, "at": r.anchored_at,
                  "commitment": r.commitment} for _, batch, r in done],
            )  # fmt: skip
            s.connection().execute(
                update(OutboxItem)
                .where(OutboxItem.id == bindparam("pk"))
                .values(status="done", tx_hash=bindparam("tx"), last_error=None),
                [{"pk": item.id, "tx": r.tx_hash} for item, _, r in done],
            )

    def _failed(self, item_ids: list[int], exc: ChainError) -> dict[int, BaseException | None]:
        level = logging.WARNING if isinstance(exc, NodeUnavailable) else logging.ERROR
        log.log(level, "anchoring deferred for %d item(s): %s", len(item_ids), exc)
        self.stats.failed_attempts += len(item_ids)
        if isinstance(exc, TransactionFailed):
            # a transaction that never got a receipt may carry a nonce the chain no longer expects
            with contextlib.suppress(ChainError):
                self.chain.resync_nonces()
        self.stats.errors.append(str(exc))
        return dict.fromkeys(item_ids, exc)

    # -- reconciliation ----------------------------------------------------------------------------------------
    def reconcile(self, *, chunk: int = 500) -> int:
        """Send batches whose on-chain commitment vanished back to pending; returns how many."""
        self._last_reconcile = time.monotonic()
        requeued = 0
        last_id = ""
        while True:
            with self.sessions() as s:
                batches = list(
                    s.scalars(
                        select(Batch)
                        .where(Batch.status == "anchored", Batch.id > last_id)
                        .order_by(Batch.id)
                        .limit(chunk)
                    )
                )
            if not batches:
                break
            last_id = batches[-1].id
            try:
                onchain = self.chain.commitments([b.batch_id for b in batches])
            except ChainError as exc:
                log.warning("reconciliation skipped: %s", exc)
                return requeued
            lost = [b for b in batches if onchain.get(b.batch_id) != b.commitment]
            if lost:
                requeued += self._requeue(lost)
                with contextlib.suppress(ChainError):
                    self.chain.resync_nonces()  # the chain went back in time: so did the relayer's nonce
        self.stats.requeued += requeued
        return requeued

    def _requeue(self, lost: list[Batch]) -> int:
        with self.sessions() as s, s.begin():
            for b in lost:
                log.warning("batch %s is no longer anchored on chain (was tx %s); re-anchoring", b.batch_id, b.tx_hash)
                s.execute(
                    update(Batch)
                    .where(Batch.id == b.id)
                    .values(status="pending", tx_hash=None, block_number=None, anchored_at=None, commitment=None)
                )
                s.execute(
                    update(OutboxItem)
                    .where(OutboxItem.batch_pk == b.id, OutboxItem.kind == "anchor")
                    .values(
                        status="pending",
                        next_attempt_at=utcnow(),
                        last_error="re-anchoring: commitment missing",
                        claimed_by=None,
                        claimed_until=None,
                    )
                )
        return len(lost)

    # -- loop ----------------------------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event) -> None:
        """Run every queue in its own threads until ``stop`` is set."""
        log.info("worker %s started", self.holder)
        try:
            threads = self.runner().start(stop)
            stop.wait()
            deadline = time.monotonic() + 10  # threads stuck on a slow endpoint are daemons: do not wait long
            for t in threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            self.release_lease()
            log.info("worker %s stopped", self.holder)


def run_worker_thread(
    *, settings: Settings, session_factory: sessionmaker[Session], holder: ChainHolder, stop: threading.Event
) -> threading.Thread:
    """Run the worker in a daemon thread of the gateway (embedded mode); it waits for the chain to come up."""

    def _run() -> None:
        while not stop.is_set():
            try:
                chain = holder.get()
            except ChainError as exc:
                log.warning("worker waiting for the chain: %s", exc)
                stop.wait(2.0)
                continue
            AnchorWorker(settings=settings, session_factory=session_factory, chain=chain).run_forever(stop)

    thread = threading.Thread(target=_run, name="qcn-anchor-worker", daemon=True)
    thread.start()
    return thread
