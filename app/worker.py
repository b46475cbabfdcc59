"""The anchoring worker: drains the outbox onto the chain, exactly once per batch.

Loop (one process holds the ``anchor-sender`` lease, so only one process signs with the relayer key):

1. take due outbox rows (oldest first), group them by supplier;
2. ask the chain which of those batch ids already carry a commitment (a previous run may have sent the
   transaction and died before recording it): adopt those from their ``BatchAnchored`` event when the root
   matches, never send them again;
3. send the rest with ``anchorMany`` (or ``anchor`` for one), record the receipt and mark rows done;
4. on a node outage or a revert, back off exponentially per row and keep the error for the API;
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

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.chainctx import AnchorResult, ChainContext, ChainHolder, b32
from app.db import Batch, Lease, OutboxItem, Party, utcnow
from app.services import analysis, scheduler
from app.settings import Settings
from chain.clients import BatchIn
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

    # -- one pass ----------------------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Anchor what is due now and run due analyses; returns how many batches reached the anchored state."""
        self.last_analysed = 0
        if not self.acquire_lease():
            return 0
        done = 0
        due = self._due_items()
        # one anchorMany call carries batches of one supplier under one agreement
        by_supplier: dict[tuple[str, str], list[tuple[OutboxItem, Batch]]] = defaultdict(list)
        for item, batch, account in due:
            by_supplier[(account, batch.agreement_id)].append((item, batch))
        for (account, _agreement), group in by_supplier.items():
            for start in range(0, len(group), self.settings.anchor_max_batches_per_tx):
                done += self._anchor_group(account, group[start : start + self.settings.anchor_max_batches_per_tx])
        self.last_analysed = analysis.run_due(sessions=self.sessions, settings=self.settings)
        self.stats.analysed += self.last_analysed
        self.last_analysed += scheduler.run_due(sessions=self.sessions, chain=self.chain, settings=self.settings).busy
        if time.monotonic() - self._last_reconcile >= self.settings.reconcile_interval_s:
            self.reconcile()
        return done

    def _due_items(self) -> list[tuple[OutboxItem, Batch, str]]:
        with self.sessions() as s:
            rows = s.execute(
                select(OutboxItem, Batch, Party.account)
                .join(Batch, Batch.id == OutboxItem.batch_pk)
                .join(Party, Party.id == Batch.supplier_id)
                .where(
                    OutboxItem.status == "pending", OutboxItem.kind == "anchor", OutboxItem.next_attempt_at <= utcnow()
                )
                .order_by(OutboxItem.id)
                .limit(self.settings.anchor_max_batches_per_tx * 4)
            ).all()
            return [(r[0], r[1], str(r[2])) for r in rows]

    def _anchor_group(self, account: str, group: list[tuple[OutboxItem, Batch]]) -> int:
        try:
            onchain = self.chain.commitments([b.batch_id for _, b in group])
        except ChainError as exc:
            self._backoff([i.id for i, _ in group], exc)
            return 0
        adopted = 0
        to_send: list[tuple[OutboxItem, Batch]] = []
        for item, batch in group:
            if onchain.get(batch.batch_id):
                adopted += self._adopt(item, batch)
            else:
                to_send.append((item, batch))
        if not to_send:
            return adopted
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
            self._backoff([i.id for i, _ in to_send], exc)
            return adopted
        self.stats.transactions += 1
        self._mark_anchored([(item, batch, receipts[batch.batch_id]) for item, batch in to_send])
        self.stats.anchored += len(to_send)
        log.info("anchored %d batch(es) for %s", len(to_send), account)
        return adopted + len(to_send)

    def _adopt(self, item: OutboxItem, batch: Batch) -> int:
        """The chain already has this batch: take its receipt if it is ours (same root), else flag a conflict."""
        try:
            found = self.chain.find_anchor(batch.batch_id)
        except ChainError as exc:
            self._backoff([item.id], exc)
            return 0
        if found is None or found.root != batch.root:
            msg = f"batch id {batch.batch_id} is anchored on chain with a different root; not re-anchoring"
            self._backoff([item.id], ChainError(msg), permanent=True)
            return 0
        self._mark_anchored([(item, batch, found)])
        self.stats.adopted += 1
        return 1

    def _mark_anchored(self, done: list[tuple[OutboxItem, Batch, AnchorResult]]) -> None:
        """Record receipts and close the outbox rows, all in one transaction."""
        with self.sessions() as s, s.begin():
            for item, batch, r in done:
                s.execute(
                    update(Batch)
                    .where(Batch.id == batch.id)
                    .values(
                        status="anchored",
                        tx_hash=r.tx_hash,
                        block_number=r.block_number,
                        anchored_at=r.anchored_at,
                        commitment=r.commitment,
                    )
                )
                s.execute(
                    update(OutboxItem)
                    .where(OutboxItem.id == item.id)
                    .values(status="done", tx_hash=r.tx_hash, last_error=None)
                )

    def _backoff(self, item_ids: list[int], exc: Exception, *, permanent: bool = False) -> None:
        level = logging.WARNING if isinstance(exc, NodeUnavailable) else logging.ERROR
        log.log(level, "anchoring deferred for %d item(s): %s", len(item_ids), exc)
        self.stats.failed_attempts += len(item_ids)
        if isinstance(exc, TransactionFailed):
            # a transaction that never got a receipt may carry a nonce the chain no longer expects
            with contextlib.suppress(ChainError):
                self.chain.resync_nonces()
        self.stats.errors.append(str(exc))
        with self.sessions() as s, s.begin():
            for item in s.scalars(select(OutboxItem).where(OutboxItem.id.in_(item_ids))):
                item.attempts += 1
                delay = min(
                    self.settings.anchor_retry_max_s, self.settings.anchor_retry_base_s * 2 ** (item.attempts - 1)
                )
                item.next_attempt_at = utcnow() + timedelta(seconds=3600 if permanent else delay)
                item.last_error = str(exc)[:2000]

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
                    .values(status="pending", next_attempt_at=utcnow(), last_error="re-anchoring: commitment missing")
                )
        return len(lost)

    # -- loop ----------------------------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event) -> None:
        log.info("anchoring worker %s started", self.holder)
        try:
            while not stop.is_set():
                try:
                    busy = self.run_once()
                except ChainError as exc:
                    log.warning("worker pass failed: %s", exc)
                    busy = 0
                if not busy and not self.last_analysed:
                    stop.wait(self.settings.anchor_poll_interval_s)
        finally:
            self.release_lease()
            log.info("anchoring worker %s stopped", self.holder)


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
