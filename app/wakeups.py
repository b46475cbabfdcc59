"""Wake-ups for the row queues (:mod:`app.jobs`): a commit that adds queue rows starts their work at once.

Without them an idle queue finds new work only at its next poll, so the poll had to be short and every idle
thread ran a query many times a second. Now:

* in one process: a flush that inserts rows into a queue table (one with a ``claimed_until`` column: the
  outbox, analysis jobs, cases, webhook deliveries, relayed transactions) notes the table on the session;
  after the commit the queue threads waiting on that table are woken (a rolled-back write wakes nobody);
* across processes on PostgreSQL: the same flush runs ``pg_notify('qcn_wake', <table>)``, which PostgreSQL
  delivers when the transaction commits and drops when it rolls back; each worker keeps one listening
  connection (:func:`listen`) that wakes its queue threads.

A queue's poll interval stays as the fallback: rows that become due later (retries with backoff), a lost
listening connection, and separate processes on SQLite.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

__all__ = ["CHANNEL", "Wakeups", "for_sessions", "listen", "note"]

log = logging.getLogger("qcn.wakeups")

CHANNEL = "qcn_wake"
_PENDING = "qcn_wake_tables"  # key in Session.info: queue tables written by the open transaction
_NOTIFIED = "qcn_wake_notified"  # ... and those already announced with pg_notify in it


class Wakeups:
    """The wake-up events of one process's queue threads, by queue table name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[threading.Event]] = defaultdict(list)
        self._queue_tables: dict[type[Any], str | None] = {}

    def subscribe(self, table: str) -> threading.Event:
        """A new event, set whenever rows of ``table`` are committed (the caller clears it)."""
        ev = threading.Event()
        with self._lock:
            self._events[table].append(ev)
        return ev

    def unsubscribe(self, table: str, ev: threading.Event) -> None:
        with self._lock:
            if ev in self._events.get(table, []):
                self._events[table].remove(ev)

    def wake(self, tables: Iterable[str]) -> None:
        """Wake every thread waiting on one of ``tables``."""
        with self._lock:
            events = [ev for t in tables for ev in self._events.get(t, ())]
        for ev in events:
            ev.set()

    def wake_all(self) -> None:
        with self._lock:
            events = [ev for evs in self._events.values() for ev in evs]
        for ev in events:
            ev.set()

    # -- session events --------------------------------------------------------------------------------------
    def _queue_table(self, cls: type[Any]) -> str | None:
        if cls not in self._queue_tables:
            table = getattr(cls, "__table__", None)
            self._queue_tables[cls] = str(table.name) if table is not None and "claimed_until" in table.c else None
        return self._queue_tables[cls]

    def _after_flush(self, session: Session, _ctx: Any) -> None:
        tables = {t for obj in session.new if (t := self._queue_table(type(obj))) is not None}
        if tables:
            note(session, *tables)

    def _after_commit(self, session: Session) -> None:
        session.info.pop(_NOTIFIED, None)
        tables = session.info.pop(_PENDING, None)
        if tables:
            self.wake(tables)

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(_NOTIFIED, None)
        session.info.pop(_PENDING, None)


def note(session: Session, *tables: str) -> None:
    """Wake the queue threads of ``tables`` when ``session`` commits (those of other processes too, on
    PostgreSQL); nobody when it rolls back. Inserting queue rows does this by itself; this is for a commit that
    makes a queue's work due without inserting its rows (an anomalous analysis makes a tracing case due)."""
    session.info.setdefault(_PENDING, set()).update(tables)
    if session.get_bind().dialect.name != "postgresql":
        return
    notified: set[str] = session.info.setdefault(_NOTIFIED, set())
    new = sorted(set(tables) - notified)
    if not new:
        return
    # one round trip; delivered to the listeners at commit, dropped on rollback
    calls = ", ".join(f"pg_notify(:channel, :t{i})" for i in range(len(new)))
    params = {"channel": CHANNEL} | {f"t{i}": table for i, table in enumerate(new)}
    session.connection().execute(text(f"SELECT {calls}"), params)
    notified.update(new)


_INSTALLED: weakref.WeakKeyDictionary[sessionmaker[Session], Wakeups] = weakref.WeakKeyDictionary()
_INSTALL_LOCK = threading.Lock()


def for_sessions(factory: sessionmaker[Session]) -> Wakeups:
    """The wake-ups of sessions made by ``factory``, hooked into its sessions on the first call."""
    with _INSTALL_LOCK:
        found = _INSTALLED.get(factory)
        if found is None:
            found = _INSTALLED[factory] = Wakeups()
            event.listen(factory, "after_flush", found._after_flush)
            event.listen(factory, "after_commit", found._after_commit)
            event.listen(factory, "after_rollback", found._after_rollback)
        return found


def _listen_once(engine: Engine, wakeups: Wakeups, stop: threading.Event, ready: threading.Event) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql(f"LISTEN {CHANNEL}")
        driver: Any = conn.connection.driver_connection
        ready.set()
        wakeups.wake_all()  # rows committed while nobody listened (start-up, reconnect)
        while not stop.is_set():
            # psycopg 3: yields the notifications that arrive within the timeout, then returns
            for note in driver.notifies(timeout=1.0):
                wakeups.wake([note.payload])


def listen(
    bind: Engine, wakeups: Wakeups, stop: threading.Event, *, retry_s: float = 2.0
) -> tuple[threading.Thread, threading.Event] | None:
    """On PostgreSQL: a daemon thread holding one ``LISTEN qcn_wake`` connection (outside ``bind``'s pool)
    that wakes ``wakeups`` until ``stop``; reconnects after an error. None on other databases.
    The returned event is set once the first LISTEN is in place."""
    if bind.dialect.name != "postgresql":
        return None
    engine = create_engine(bind.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    ready = threading.Event()

    def _run() -> None:
        try:
            while not stop.is_set():
                try:
                    _listen_once(engine, wakeups, stop, ready)
                except Exception as exc:  # the poll interval covers the gap; try again shortly
                    log.warning("listening for queue wake-ups failed: %s", exc)
                    stop.wait(retry_s)
        finally:
            engine.dispose()

    thread = threading.Thread(target=_run, name="qcn-wakeups", daemon=True)
    thread.start()
    return thread, ready
