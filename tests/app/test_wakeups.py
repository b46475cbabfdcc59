"""Queue wake-ups (app/wakeups.py): an upload is picked up by an idle worker at once, not at its next poll —
in the same process (SQLite and PostgreSQL) and from another process's connection (PostgreSQL LISTEN/NOTIFY)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import DateTime, Integer, event, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app import jobs, wakeups
from app.chainctx import deploy_contracts
from app.db import AnalysisJob, Batch, make_engine, make_session_factory, utcnow
from app.main import create_app
from app.worker import AnchorWorker
from tests.app.conftest import ACCOUNTS, CSV_OK, Gateway, make_settings
from tests.app.queue_support import QueueBase, QueueRow

POLL_S = 30.0  # longer than any wait below: only a wake-up can start the work in time
WITHIN_S = 20.0  # well under POLL_S, with room for a slow, loaded host


def _idle(runner: jobs.JobRunner, names: tuple[str, ...] = ("anchoring", "analysis")) -> None:
    deadline = time.monotonic() + 20
    while not all(runner.stats.get(n, jobs._QueueStats()).passes >= 1 for n in names):
        assert time.monotonic() < deadline, "the queues never ran their first pass"
        time.sleep(0.02)
    time.sleep(0.2)  # asleep on their wake-up events now


def _anchored_and_analysed(sessions: Any, batch_pk: str) -> bool:
    with sessions() as s:
        batch = s.get(Batch, batch_pk)
        job = s.scalars(select(AnalysisJob).where(AnalysisJob.batch_pk == batch_pk)).one()
        return batch is not None and batch.status == "anchored" and job.status == "done"


def _upload_is_picked_up(gw: Gateway, worker: AnchorWorker) -> None:
    runner = worker.runner()
    stop = threading.Event()
    try:
        runner.start(stop)
        if runner.listener is not None:
            assert runner.listener[1].wait(10), "the worker never started listening"
        _idle(runner)
        resp = gw.upload("supplier", CSV_OK)
        assert resp.status_code == 201, resp.text
        sessions = gw.client.app.state.session_factory  # type: ignore[attr-defined]
        started = time.monotonic()
        while not _anchored_and_analysed(sessions, resp.json()["id"]):
            assert time.monotonic() - started < WITHIN_S, "the upload waited for the poll, not a wake-up"
            time.sleep(0.05)
    finally:
        stop.set()
        for t in runner.threads:
            t.join(timeout=15)


def test_an_upload_wakes_the_idle_worker_of_its_process(gateway: Gateway) -> None:
    gateway.settings.anchor_poll_interval_s = POLL_S
    _upload_is_picked_up(gateway, gateway.worker)


@pytest.mark.postgres
def test_an_upload_wakes_an_idle_worker_in_another_process(tmp_path: Any, pg_url: str, anvil: Any) -> None:
    settings = make_settings(tmp_path, pg_url, anvil.url, anchor_poll_interval_s=POLL_S)
    deploy_contracts(settings)
    app = create_app(settings, embedded_worker=False)
    engine = make_engine(pg_url)  # the worker's own engine and sessions: as in a separate ``qcn worker``
    try:
        with TestClient(app) as client:
            worker = AnchorWorker(settings=settings, session_factory=make_session_factory(engine),
                                  chain=app.state.chain_holder.get())  # fmt: skip
            gw = Gateway(client=client, settings=settings, worker=worker, keys={},
                         admin_token=settings.api_admin_token.get_secret_value())  # fmt: skip
            resp = client.post("/v1/parties", headers=gw.auth("admin"),
                               json={"name": "s ltd", "kind": "supplier", "account": ACCOUNTS["supplier"]})  # fmt: skip
            gw.keys["supplier"] = resp.json()["api_key"]
            _upload_is_picked_up(gw, worker)
    finally:
        engine.dispose()


class _Base(DeclarativeBase):
    pass


class _Queued(_Base):  # a queue table: it has a claim column
    __tablename__ = "test_wake_queue"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class _Plain(_Base):
    __tablename__ = "test_wake_plain"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


def test_only_committed_queue_rows_wake(db_url: str) -> None:
    engine = make_engine(db_url)
    _Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    w = wakeups.for_sessions(factory)
    assert wakeups.for_sessions(factory) is w
    queued, plain = w.subscribe("test_wake_queue"), w.subscribe("test_wake_plain")
    listener = None
    if engine.dialect.name == "postgresql":  # what another process's listener receives
        import psycopg

        listener = psycopg.connect(db_url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
        listener.execute(f"LISTEN {wakeups.CHANNEL}")
    try:
        with factory() as s:
            s.add(_Queued())
            s.flush()
            s.rollback()
        assert not queued.is_set()  # a rolled-back write wakes nobody
        if listener is not None:
            assert list(listener.notifies(timeout=0.5)) == []
        with factory() as s, s.begin():
            s.add(_Queued())
            s.add(_Plain())
            s.flush()
            s.add(_Queued())
            s.flush()  # announced once per transaction
            assert not queued.is_set()  # not before the commit
        assert queued.is_set()
        assert not plain.is_set()  # a table without claims is no queue
        if listener is not None:
            notes = list(listener.notifies(timeout=10.0, stop_after=1))
            assert [(n.channel, n.payload) for n in notes] == [(wakeups.CHANNEL, "test_wake_queue")]
            assert list(listener.notifies(timeout=0.5)) == []  # announced once
    finally:
        if listener is not None:
            listener.close()
        engine.dispose()


def test_a_noted_queue_wakes_when_the_transaction_commits_and_not_on_rollback(db_url: str) -> None:
    """``wakeups.note``: work made due without inserting the queue's rows (an anomalous analysis makes a tracing
    case due) wakes that queue at commit, in this process and, on PostgreSQL, in the others."""
    engine = make_engine(db_url)
    _Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    cases = wakeups.for_sessions(factory).subscribe("cases")
    listener = None
    if engine.dialect.name == "postgresql":
        import psycopg

        listener = psycopg.connect(db_url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
        listener.execute(f"LISTEN {wakeups.CHANNEL}")
    try:
        with factory() as s:
            wakeups.note(s, "cases")
            s.rollback()
        assert not cases.is_set()
        if listener is not None:
            assert list(listener.notifies(timeout=0.5)) == []
        with factory() as s, s.begin():
            s.add(_Plain())
            wakeups.note(s, "cases")
            wakeups.note(s, "cases")  # announced once per transaction
            assert not cases.is_set()
        assert cases.is_set()
        if listener is not None:
            notes = list(listener.notifies(timeout=10.0, stop_after=1))
            assert [n.payload for n in notes] == ["cases"]
            assert list(listener.notifies(timeout=0.5)) == []  # announced once
    finally:
        if listener is not None:
            listener.close()
        engine.dispose()


def test_an_idle_queue_polls_seldom_and_a_row_waiting_for_its_retry_keeps_the_short_pace(db_url: str) -> None:
    """The relay queue polls every 0.05 s for the receipt of a transaction in flight. With none in flight it
    sleeps its idle interval (a new row wakes it), instead of querying the database twenty times a second."""
    engine = make_engine(db_url)
    QueueBase.metadata.create_all(engine)
    factory = make_session_factory(engine)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    handled: list[float] = []

    def handle(ids: list[int]) -> dict[int, BaseException | None]:
        handled.append(time.monotonic())
        with factory() as s, s.begin():
            s.execute(update(QueueRow).where(QueueRow.id.in_(ids)).values(status="done"))
        return dict.fromkeys(ids)

    spec = jobs.QueueSpec("retried", poll_s=0.05, idle_poll_s=30.0)
    runner = jobs.JobRunner(sessions=factory, holder="t", queues=[jobs.RowQueue(spec, QueueRow, handle)])
    stop = threading.Event()
    try:
        runner.start(stop)
        time.sleep(0.5)
        statements.clear()
        time.sleep(1.5)
        idle_statements = len([q for q in statements if "test_jobs" in q])
        due_at = utcnow() + timedelta(seconds=1.0)
        with factory() as s, s.begin():  # a row whose next attempt is 1 s away: it wakes the queue, which sees
            s.add(QueueRow(next_attempt_at=due_at))  # it pending and keeps polling every 0.05 s until it is due
        deadline = time.monotonic() + 20
        while not handled and time.monotonic() < deadline:
            time.sleep(0.02)
        taken_at = utcnow()
    finally:
        stop.set()
        for t in runner.threads:
            t.join(timeout=15)
        engine.dispose()
    assert idle_statements <= 2  # at 0.05 s it would have been ~60 in 1.5 s
    assert handled, "the row was never taken"
    assert timedelta(0) <= taken_at - due_at < timedelta(seconds=5)  # taken at the short pace, not after 30 s


def test_a_standby_process_does_not_poll_a_queue_it_may_not_run(db_url: str) -> None:
    """Outside review: the cases queue needs the sender lease; in a standby worker (lease held elsewhere) its idle
    wait must not query the database either."""
    engine = make_engine(db_url)
    QueueBase.metadata.create_all(engine)
    factory = make_session_factory(engine)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    spec = jobs.QueueSpec("standby", poll_s=0.05, idle_poll_s=0.2, needs_sender=True)
    queue = jobs.RowQueue(spec, QueueRow, lambda ids: dict.fromkeys(ids))
    runner = jobs.JobRunner(sessions=factory, holder="t", queues=[queue], sender_held=lambda: False)
    stop = threading.Event()
    try:
        runner.start(stop)
        deadline = time.monotonic() + 10
        while runner.stats.get("standby", jobs._QueueStats()).passes < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in runner.threads:
            t.join(timeout=15)
        engine.dispose()
    assert runner.stats["standby"].passes >= 3  # it ran, at the idle pace
    assert [q for q in statements if "test_jobs" in q] == []
