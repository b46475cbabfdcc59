"""The background-job mechanism (app/jobs.py): exclusive claims across workers, expiry after a crash, backoff
and caps — on SQLite and PostgreSQL; and that a slow queue (webhooks to a silent endpoint) does not hold up
anchoring of another supplier's batch."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from app import jobs
from app.db import ChainCursor, WebhookDelivery, WebhookSubscription, make_engine, make_session_factory, utcnow
from app.services import indexer, webhooks
from tests.app.conftest import CSV_OK, Gateway
from tests.app.queue_support import QueueBase, QueueRow


def _queue(handle: Any, **spec: Any) -> jobs.RowQueue:
    return jobs.RowQueue(jobs.QueueSpec("test", **spec), QueueRow, handle)


@pytest.fixture
def sessions(db_url: str) -> Any:
    engine = make_engine(db_url)
    QueueBase.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with factory() as s, s.begin():
        s.add_all([QueueRow() for _ in range(200)])
    yield factory
    engine.dispose()


def test_concurrent_workers_claim_each_row_exactly_once(sessions: Any) -> None:
    q = _queue(lambda ids: dict.fromkeys(ids), batch=7)

    def worker(n: int) -> list[int]:
        got: list[int] = []
        while True:
            ids = jobs.claim(sessions, q, f"worker-{n}")
            if not ids:
                return got
            got += ids

    with ThreadPoolExecutor(6) as pool:
        claimed = [i for part in pool.map(worker, range(6)) for i in part]
    assert sorted(claimed) == list(range(1, 201))  # every row once, none twice, no error from the database


def test_expired_claim_is_taken_again_and_failures_back_off_then_fail(sessions: Any) -> None:
    q = _queue(lambda ids: dict.fromkeys(ids, RuntimeError("boom")), time_limit_s=3.0, retry_base_s=10,
               max_attempts=2)  # fmt: skip
    long = _queue(q.handle, time_limit_s=3600)
    first = jobs.claim(sessions, q, "crashed-worker", limit=1)
    others = jobs.claim(sessions, long, "other", limit=300)
    assert len(others) == 199 and first[0] not in others  # a claimed row is not handed out twice
    time.sleep(3.2)  # the crashed worker's claim expires
    assert jobs.claim(sessions, q, "survivor", limit=300) == first
    jobs.record_failure(sessions, q, first[0], RuntimeError("boom"))
    with sessions() as s:
        row = s.get(QueueRow, first[0])
        assert row.status == "pending" and row.attempts == 1 and row.last_error == "boom" and row.claimed_by is None
        wait = (row.next_attempt_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)).total_seconds()
        assert 8 < wait <= 10  # retry_base_s * 2**0
    jobs.record_failure(sessions, q, first[0], RuntimeError("boom again"))
    with sessions() as s:
        assert s.get(QueueRow, first[0]).status == "failed"  # max_attempts reached
    jobs.record_failure(sessions, q, 2, jobs.Retry("gone for good", permanent=True))
    with sessions() as s:
        assert s.get(QueueRow, 2).status == "failed" and s.get(QueueRow, 2).attempts == 1


def test_run_rows_finishes_handled_rows_and_keeps_errors_per_row(sessions: Any) -> None:
    def handle(ids: list[int]) -> dict[int, BaseException | None]:
        with sessions() as s, s.begin():
            for i in ids:
                if i % 2:
                    s.get(QueueRow, i).status = "done"
        return {i: (None if i % 2 else ValueError(f"even {i}")) for i in ids}

    q = _queue(handle, batch=10, retry_base_s=0)
    assert jobs.run_rows(sessions, q, "w") == 5
    with sessions() as s:
        rows = list(s.scalars(select(QueueRow).where(QueueRow.id <= 10).order_by(QueueRow.id)))
    assert [r.status for r in rows] == ["done", "pending"] * 5
    assert all(r.claimed_by is None for r in rows)
    assert [r.last_error for r in rows if r.status == "pending"] == [f"even {i}" for i in (2, 4, 6, 8, 10)]


# ------------------------------------------------------------------------------ a slow queue vs anchoring
class SilentPort:
    """A TCP port on loopback that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)
            except TimeoutError:
                continue
            except OSError:
                return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def close(self) -> None:
        self._stop.set()
        self.thread.join()
        for c in self.accepted:
            c.close()
        self.sock.close()


def test_periodic_work_that_always_finds_something_waits_its_minimum_gap(sessions: Any) -> None:
    """The indexer finds new blocks on every pass under load: with a minimum gap it reads them in bulk a few
    times a second instead of running back to back (one pass per anchoring block)."""
    calls: list[float] = []

    def busy() -> int:
        calls.append(time.monotonic())
        return 1  # always "did work"

    stop = threading.Event()
    gapped = jobs.Periodic(jobs.QueueSpec("gapped", poll_s=0.01, min_gap_s=0.2), busy)
    runner = jobs.JobRunner(sessions=sessions, holder="t", queues=[gapped])
    runner.start(stop)
    deadline = time.monotonic() + 10  # a bounded wait: a slow host may stall the thread for a while
    while len(calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in runner.threads:
        t.join(5)
    assert len(calls) >= 4, len(calls)
    assert min(b - a for a, b in itertools.pairwise(calls)) >= 0.19


def test_a_queue_under_load_coalesces_its_rows_and_an_idle_one_starts_at_once(sessions: Any) -> None:
    """Anchoring under load: rows committed while a pass works make the next pass wait ``coalesce_s`` and take
    them all at once (one fuller transaction instead of one per row); a row arriving at an idle queue is
    taken at once, not after the coalescing wait."""
    with sessions() as s, s.begin():
        s.execute(update(QueueRow).values(status="done"))
    calls: list[tuple[float, float, list[int]]] = []
    release, entered = threading.Event(), threading.Event()

    def handle(ids: list[int]) -> dict[int, BaseException | None]:
        start = time.monotonic()
        if not calls:
            entered.set()
            release.wait(20)  # the first pass is "busy" while the test commits more rows
        with sessions() as s, s.begin():
            s.execute(update(QueueRow).where(QueueRow.id.in_(ids)).values(status="done"))
        calls.append((start, time.monotonic(), list(ids)))
        return dict.fromkeys(ids)

    def add(n: int) -> list[int]:
        with sessions() as s, s.begin():
            rows = [QueueRow() for _ in range(n)]
            s.add_all(rows)
            s.flush()
            return [r.id for r in rows]

    stop = threading.Event()
    queue = _queue(handle, batch=100, poll_s=30, coalesce_s=1.5)
    runner = jobs.JobRunner(sessions=sessions, holder="t", queues=[queue])
    runner.start(stop)
    try:
        time.sleep(0.2)  # the queue is idle, asleep on its wake-up event (poll 30 s)
        committed = time.monotonic()
        first = add(1)
        assert entered.wait(10)  # the first pass has started on it and is blocked in the handler
        later = add(3)  # committed while the first pass works
        release.set()
        time.sleep(0.3)
        late = add(2)  # committed during the coalescing wait
        deadline = time.monotonic() + 20
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        release.set()
        stop.set()
        for t in runner.threads:
            t.join(5)
    (start1, end1, ids1), (start2, _, ids2) = calls[0], calls[1]
    assert ids1 == first
    assert start1 - committed < 1.2  # an idle queue does not wait for the coalescing interval
    assert sorted(ids2) == sorted(later + late)  # one pass takes the rows that arrived during and after it
    assert start2 - end1 >= 1.4


def test_an_idle_poll_waits_for_no_lock_held_by_a_writer(sessions: Any) -> None:
    """Queues are polled many times a second: with nothing due, a poll must not queue behind an upload's write
    transaction (SQLite's single writer) or a claim in progress (PostgreSQL's per-queue advisory lock)."""
    with sessions() as s, s.begin():
        s.execute(update(QueueRow).values(status="done"))
    q = jobs.RowQueue(jobs.QueueSpec("test"), QueueRow, lambda ids: dict.fromkeys(ids), serialize=True)
    result: list[list[Any]] = []
    with sessions() as writer, writer.begin():
        if writer.get_bind().dialect.name == "postgresql":
            writer.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": jobs._lock_key("test")})
        writer.add(QueueRow(status="done"))
        writer.flush()  # holds the write lock (SQLite) / the queue's lock (PostgreSQL) until the end of the block
        poll = threading.Thread(target=lambda: result.append(jobs.claim(sessions, q, "idle")))
        poll.start()
        poll.join(20)
        finished_while_locked = not poll.is_alive()
    poll.join(150)
    assert finished_while_locked and result == [[]]


def test_an_indexer_pass_with_no_new_block_waits_for_no_writer(gateway: Gateway) -> None:
    """The indexer polls ten times a second; when its cursors are at the head it must neither wait for an
    upload's write transaction nor take the write lock itself (SQLite has one writer)."""
    assert gateway.upload("supplier", CSV_OK).status_code == 201
    gateway.anchor_all()
    sessions = gateway.client.app.state.session_factory  # type: ignore[attr-defined]
    chain = gateway.worker.chain
    indexer.sync(sessions=sessions, chain=chain, settings=gateway.settings)  # catch up to the head
    with sessions() as s:
        cursors = {c.name: c.block_number for c in s.scalars(select(ChainCursor))}
    result: list[int] = []
    with sessions() as writer, writer.begin():
        list(writer.scalars(select(ChainCursor).with_for_update()))  # PostgreSQL: the cursor rows are locked
        writer.add(WebhookSubscription(party_id=1, url="https://hooks.example.com/x", secret="s"))
        writer.flush()  # SQLite: this transaction holds the single write lock
        sync = threading.Thread(
            target=lambda: result.append(indexer.sync(sessions=sessions, chain=chain, settings=gateway.settings))
        )
        sync.start()
        sync.join(20)
        finished_while_locked = not sync.is_alive()
        writer.rollback()
    sync.join(150)
    assert finished_while_locked and result == [0]
    with sessions() as s:
        assert {c.name: c.block_number for c in s.scalars(select(ChainCursor))} == cursors


def test_ten_silent_webhooks_do_not_hold_up_another_suppliers_anchoring(gateway: Gateway) -> None:
    gw = gateway
    gw.settings.webhook_allow = "127.0.0.1/32"  # the operator opens loopback for this test
    gw.settings.webhook_timeout_s = 20.0  # a delivery to the silent port takes 20 s to give up
    silent = SilentPort()
    try:
        ids = []
        for _ in range(10):
            r = gw.client.post("/v1/webhooks", json={"url": silent.url}, headers=gw.auth("supplier"))
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        sessions = gw.client.app.state.session_factory  # type: ignore[attr-defined]
        with sessions() as s, s.begin():
            for sub_id in ids:
                s.add(WebhookDelivery(subscription_id=sub_id, event_key="evt_test", event_type="case.opened",
                                      body='{"test": true}'))  # fmt: skip
        stop = threading.Event()
        runner = threading.Thread(target=gw.worker.run_forever, args=(stop,), daemon=True)
        runner.start()
        try:
            deadline = time.monotonic() + 10
            while len(silent.accepted) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(silent.accepted) >= 2  # deliveries are in flight, stuck on the silent endpoint
            resp = gw.upload("supplier2", CSV_OK, key="LOT-FAST")
            assert resp.status_code == 201, resp.text
            batch_ref = resp.json()["id"]
            status = None
            while time.monotonic() < deadline + 10:
                status = gw.client.get(f"/v1/batches/{batch_ref}", headers=gw.auth("supplier2")).json()["status"]
                if status == "anchored":
                    break
                time.sleep(0.05)
            assert status == "anchored"
            with sessions() as s:
                rows = list(s.scalars(select(WebhookDelivery)))
                in_flight = [d for d in rows if d.claimed_until is not None and d.claimed_until.replace(
                    tzinfo=None) > utcnow().replace(tzinfo=None)]  # fmt: skip
            # anchored while every webhook delivery was still waiting on the silent port
            assert all(d.attempts == 0 and d.status == "pending" for d in rows)
            # and the supplier's deliveries in flight stay within its per-party cap
            assert 1 <= len(in_flight) <= gw.settings.webhook_max_concurrent_per_party
            assert len(silent.accepted) <= gw.settings.webhook_max_concurrent_per_party
        finally:
            stop.set()
            runner.join(timeout=30)
    finally:
        silent.close()


# ---------------------------------------------------------------------------------------- destinations
_INTERNAL = [
    "http://127.0.0.1/hook",
    "http://127.1/hook",
    "http://2130706433/hook",  # decimal 127.0.0.1
    "http://0x7f000001/hook",  # hex
    "http://0177.0.0.1/hook",  # octal
    "http://localhost:8080/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
    "http://[fe80::1]/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # shared address space
    "http://224.0.0.1/hook",  # multicast
    "http://[ff02::1]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://user:pw@example.org/hook",
    "ftp://example.org/hook",
]


@pytest.mark.parametrize("url", _INTERNAL)
def test_internal_destinations_are_refused(gateway: Gateway, url: str) -> None:
    r = gateway.client.post("/v1/webhooks", json={"url": url}, headers=gateway.auth("supplier"))
    assert r.status_code == 422, r.text
    assert "url" in r.text


def test_public_address_is_accepted_and_secret_is_not_stored_in_clear(gateway: Gateway) -> None:
    gw = gateway
    secret = "s3cret-0123456789-abcdef"
    r = gw.client.post("/v1/webhooks", json={"url": "https://93.184.215.14/hook", "secret": secret},
                       headers=gw.auth("supplier"))  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["secret"] == secret
    sessions = gw.client.app.state.session_factory  # type: ignore[attr-defined]
    with sessions() as s:
        stored = s.get(WebhookSubscription, r.json()["id"]).secret
    assert secret not in stored and stored.startswith("fernet1:")
    assert webhooks.decrypt_secret(gw.settings, stored) == secret
    listed = gw.client.get("/v1/webhooks", headers=gw.auth("supplier")).json()
    assert all("secret" not in sub for sub in listed)


def test_subscription_cap_per_party(gateway: Gateway) -> None:
    gw = gateway
    gw.settings.webhook_max_subscriptions_per_party = 3
    codes = [gw.client.post("/v1/webhooks", json={"url": f"https://93.184.215.14/h{i}"},
                            headers=gw.auth("supplier")).status_code for i in range(4)]  # fmt: skip
    assert codes == [201, 201, 201, 409]
    # another party is not affected by this one's subscriptions
    assert gw.client.post("/v1/webhooks", json={"url": "https://93.184.215.14/x"},
                          headers=gw.auth("supplier2")).status_code == 201  # fmt: skip


def test_delivery_rechecks_the_destination_and_never_follows_redirects(gateway: Gateway) -> None:
    """Allowed at subscription time, refused at delivery time (the operator closed it, or DNS now points
    inside); a 3xx answer is not followed. The log says only coarse failure classes."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/hook":
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
            else:
                self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    gw = gateway
    try:
        gw.settings.webhook_allow = "127.0.0.1/32"
        port = server.server_address[1]
        sub = gw.client.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{port}/hook"},
                             headers=gw.auth("supplier")).json()  # fmt: skip
        sessions = gw.client.app.state.session_factory  # type: ignore[attr-defined]
        with sessions() as s, s.begin():
            s.add(WebhookDelivery(subscription_id=sub["id"], event_key="e1", event_type="case.opened", body="{}"))
        gw.worker.run_once()
        log = gw.client.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=gw.auth("supplier")).json()
        assert hits == ["/hook"]  # the redirect was not followed
        assert (log[0]["status"], log[0]["attempts"], log[0]["last_status_code"]) == ("pending", 1, 302)
        assert log[0]["last_error"] == "redirect not followed"
        gw.settings.webhook_allow = ""  # the operator closes loopback again
        with sessions() as s, s.begin():
            s.get(WebhookDelivery, log[0]["id"]).next_attempt_at = utcnow() - timedelta(seconds=1)
        gw.worker.run_once()
        log = gw.client.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=gw.auth("supplier")).json()
        assert hits == ["/hook"]  # nothing sent
        assert log[0]["attempts"] == 2 and log[0]["last_error"].startswith("destination refused")
        assert str(port) not in log[0]["last_error"]
    finally:
        server.shutdown()
        server.server_close()
