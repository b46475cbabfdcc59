"""The gateway under load, through the API a user calls: real gateway processes (uvicorn), a real anvil node,
SQLite (the embedded default) and PostgreSQL (two gateway processes).

Figures (``bench/results/gateway.json``):

* ``gateway_uploads_per_s`` / ``gateway_upload_ms_p50/p95/p99`` (PostgreSQL, 2 gateway processes and two
  ``qcn worker`` processes, the analysis in one of its own: the shape of docker-compose.yml) and the same with the
  ``_sqlite`` suffix (the embedded default: one process with its worker threads): sustained uploads (300 by
  default, so p99 is not the slowest of a handful) of 1,000-record CSV files from ``clients`` concurrent clients,
  each batch a new lot (``Idempotency-Key``); ``gateway_5xx`` counts every 5xx seen anywhere. PostgreSQL runs
  ``pg_runs`` (3) such phases in a row on one stack (the later ones at the full 200-batch SPC history): the
  ``gateway_*`` figures are those of the run with the median answered rate, ``gateway_runs`` lists every run;
* ``*_uploads_processed_per_s``: the same uploads over the time until the worker had also analysed and anchored
  every one of them (``*_drain_s`` after the last 201, ``*_backlog_at_last_201`` what was left then): the rate
  the whole system sustains, not just the rate the gateway answers at;
* next to each: ``*_cpu_ms_per_upload`` (CPU of the gateway, worker and database server processes from the first
  upload until the backlog was drained, per upload, split by role; ``*_cpu_ms_per_upload_until_last_201`` stops at
  the last answer, as this bench did before), ``*_uploads_per_s_2_free_cores`` (2,000 ms / that: what the two
  cores would sustain with nobody else on them) and ``*_load_avg_1m`` (before, after): on a shared machine the
  wall-clock figures are pessimistic;
* ``baseline_child_parse_*_sqlite``: a named baseline in the same run, the SQLite default with every upload
  parsed in a child process (``QCN_PARSE_INLINE_MAX_BYTES=0``, the behaviour before), and
  ``ratio_*_sqlite_vs_baseline_child_parse``;
* ``*_batches_per_anchor_tx``: anchored batches per anchoring transaction (``anchor_coalesce_s``);
* ``upload_to_anchored_ms_p50/p95``: one upload at a time, polled right after its 201 (a 404 counts in
  ``upload_then_404``), on SQLite;
* ``anchor_latency_ms_p95_with_slow_webhooks`` vs ``anchor_latency_ms_p95_without_webhooks``: the same
  upload-to-anchored latency of one supplier while ten webhook deliveries of another party hang on a silent
  loopback port (allow-listed for the bench); ``anchor_latency_ratio_slow_webhooks`` is their ratio;
* ``deep_json_status``: the status of a 100,000-deep JSON body sent without a key (or what happened);
* ``crash_lost_confirmed_txs``: kill -9 of the embedded node at random moments while transactions are being
  confirmed; a confirmed transaction missing after the restart is lost. ``crash_lost_confirmed_txs_baseline``
  is the same without persisting the state before confirming (the behaviour before), for comparison.

The webhook deliveries are written straight into the database (normally the indexer writes them from chain
events); everything else goes through HTTP. Measured on a shared 2-core machine: pessimistic figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.demo_data import load_csv  # noqa: E402

SUPPLIERS = {
    "s1": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "s2": "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, round(q * (len(s) - 1)))], 1)


@dataclass
class Stack:
    """A chain, deployed contracts and gateway process(es) on one database."""

    tmp: Path
    node: Any
    db_url: str
    http: httpx.Client
    admin: dict[str, str]
    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    errors_5xx: int = 0

    def count(self, resp: httpx.Response) -> httpx.Response:
        if resp.status_code >= 500:
            self.errors_5xx += 1
        return resp


@contextmanager
def stack(
    *, db_url: str | None, processes: int, extra_env: dict[str, str] | None = None, worker_process: bool = False
) -> Iterator[Stack]:
    """``worker_process``: the production shape (docker-compose.yml): gateways without the embedded worker, one
    ``qcn worker --exclude analysis`` and one ``qcn worker --queues analysis`` process; otherwise each gateway
    process runs the embedded worker with every queue (the dev default)."""
    from app.chainctx import deploy_contracts
    from app.settings import Settings
    from chain.node import LocalNode

    tmp = Path(tempfile.mkdtemp(prefix="qcn-bench-gw-"))
    node = LocalNode(tmp / "chain", port=_free_port())
    node.start()
    url = db_url or f"sqlite:///{tmp / 'data' / 'qcn.db'}"
    settings = Settings(env="dev", data_dir=tmp / "data", database_url=url, rpc_url=node.url,
                        deployments_dir=tmp / "deployments")  # fmt: skip
    deploy_contracts(settings)
    port = _free_port()
    env = {
        **os.environ,
        "QCN_ENV": "dev",
        "QCN_DATA_DIR": str(tmp / "data"),
        "QCN_DATABASE_URL": url,
        "QCN_RPC_URL": node.url,
        "QCN_DEPLOYMENTS_DIR": str(tmp / "deployments"),
        "QCN_EMBEDDED_WORKER": "0" if worker_process else "1",
        "QCN_CHAIN_DURABLE_STATE": str(node.confirmed_state_file),
        **(extra_env or {}),
    }
    argv = [sys.executable, "-m", "uvicorn", "app.main:app_from_env", "--factory", "--port", str(port),
            "--log-level", "warning", "--workers", str(processes)]  # fmt: skip
    log = (tmp / "gateway.log").open("wb")
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    st = Stack(tmp, node, url, http, {"Authorization": f"Bearer {settings.api_admin_token.get_secret_value()}"})
    st.procs.append(proc)
    if worker_process:  # as docker-compose.yml: the analysis in a worker process of its own
        for split in (["--exclude", "analysis"], ["--queues", "analysis"]):
            st.procs.append(subprocess.Popen([sys.executable, "-m", "app.cli", "worker", *split], env=env, cwd=ROOT,
                                             stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if http.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start: {(tmp / 'gateway.log').read_text()[-2000:]}")
            time.sleep(0.1)
        for name, account in SUPPLIERS.items():
            resp = http.post("/v1/parties", headers=st.admin,
                             json={"name": f"bench {name}", "kind": "supplier", "account": account})  # fmt: skip
            resp.raise_for_status()
            st.keys[name] = {"Authorization": f"Bearer {resp.json()['api_key']}"}
        yield st
    finally:
        for p in st.procs:
            p.terminate()
        for p in st.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        http.close()
        node.stop()
        # keep the gateway's log for a look after the run (errors are logged there)
        with contextlib.suppress(OSError):
            shutil.copyfile(tmp / "gateway.log", Path(tempfile.gettempdir()) / f"qcn-bench-gateway-{processes}.log")
        shutil.rmtree(tmp, ignore_errors=True)


_RUN_KEYS = ("uploads_per_s", "uploads_processed_per_s", "upload_ms_p99", "cpu_ms_per_upload", "load_avg_1m")


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median answered rate (its figures belong together; of an even number, the lower middle
    one), the others listed next to it: on a shared machine one run is off by up to a fifth either way."""
    return sorted(runs, key=lambda r: float(r["uploads_per_s"]))[(len(runs) - 1) // 2]


# ------------------------------------------------------------------------------------------------ CPU
def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process, with its reaped children (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _descendants(pids: list[int]) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += parents.get(pid, [])
    return out


def _db_backends(st: Stack) -> list[int]:
    """PostgreSQL server processes serving the bench database (same machine), or none for SQLite."""
    if not st.db_url.startswith("postgresql"):
        return []
    import psycopg

    name = st.db_url.rsplit("/", 1)[1]
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
    return [int(r[0]) for r in rows]


class CpuMeter:
    """CPU seconds spent by the gateway processes, a separate worker process and the database server processes
    of this stack between ``start`` and ``stop``: on a shared machine wall-clock figures are pessimistic, CPU per
    upload is not (the load generator and the chain node are not counted)."""

    def __init__(self, st: Stack) -> None:
        self.st = st
        self.start_cpu: dict[str, dict[int, float]] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        roles = {"gateway": _descendants([self.st.procs[0].pid]), "db": _db_backends(self.st)}
        if len(self.st.procs) > 1:
            roles["worker"] = _descendants([p.pid for p in self.st.procs[1:]])
        return {role: {pid: _proc_cpu_s(pid) for pid in pids} for role, pids in roles.items()}

    def start(self) -> None:
        self.start_cpu = self._sample()

    def stop(self) -> dict[str, float]:
        """CPU seconds since ``start`` per role: gateway (with an embedded worker), worker, db."""
        out = {}
        for role, cpu in self._sample().items():
            before = self.start_cpu.get(role, {})
            out[role] = sum(v - before.get(pid, 0.0) for pid, v in cpu.items())
        return out


# ------------------------------------------------------------------------------------------------ uploads
def _drain(st: Stack, timeout_s: float = 600.0) -> tuple[float, dict[str, int]]:
    """Wait until the worker has analysed and anchored every batch (what it still owes the uploads); returns
    (seconds waited, that backlog when the wait began). One connection, polled every 0.25 s."""
    from sqlalchemy import create_engine, text

    engine = create_engine(st.db_url, poolclass=NullPool)
    analysis = text("SELECT count(*) FROM analysis_jobs WHERE status = 'pending'")
    anchor = text("SELECT count(*) FROM outbox WHERE kind = 'anchor' AND status IN ('pending', 'sent')")
    t0 = time.perf_counter()
    try:
        with engine.connect() as conn:

            def backlog() -> dict[str, int]:
                out = {"analysis": int(conn.execute(analysis).scalar() or 0),
                       "anchor": int(conn.execute(anchor).scalar() or 0)}  # fmt: skip
                conn.rollback()  # a fresh snapshot each poll
                return out

            first = left = backlog()
            while any(left.values()) and time.perf_counter() - t0 < timeout_s:
                time.sleep(0.25)
                left = backlog()
    finally:
        engine.dispose()
    if any(left.values()):
        raise RuntimeError(f"the worker did not catch up within {timeout_s:.0f} s: {left} left")
    return time.perf_counter() - t0, first


def _anchored_counts(st: Stack) -> tuple[int, int]:
    """(anchored batches, distinct anchoring transactions) in the database now."""
    from sqlalchemy import create_engine, text

    engine = create_engine(st.db_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            batches, txs = conn.execute(
                text("SELECT count(*), count(DISTINCT tx_hash) FROM batches WHERE tx_hash IS NOT NULL")
            ).one()
    finally:
        engine.dispose()
    return int(batches), int(txs)


def _multipart(body: bytes, filename: str = "lot.csv") -> tuple[bytes, str]:
    """A prebuilt ``multipart/form-data`` body with one ``files`` part (what httpx would send)."""
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n").encode()  # fmt: skip
    return head + body + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def sustained_uploads(st: Stack, *, uploads: int, clients: int, rows: int = 1000) -> dict[str, Any]:
    """``uploads`` new lots from ``clients`` threads; latency of each upload request.

    The load generator shares the cores with the gateway, so it is kept cheap: request bodies are built
    before the clock starts and each client thread keeps one keep-alive HTTP/1.1 connection (``http.client``);
    every upload is still a real HTTP round trip, timed from sending the request to reading the whole answer.
    """
    import http.client

    bodies = [_multipart(load_csv(rows, i)) for i in range(min(uploads, 50))]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    host, port = st.http.base_url.host, st.http.base_url.port
    local = threading.local()

    def one(i: int) -> None:
        key = st.keys["s1" if i % 2 else "s2"] | {"Idempotency-Key": f"LOT-{uuid.uuid4().hex}"}
        body, ctype = bodies[i % len(bodies)]
        headers = key | {"Content-Type": ctype, "Content-Length": str(len(body))}
        t0 = time.perf_counter()
        try:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = local.conn = http.client.HTTPConnection(host, port, timeout=120)
            conn.request("POST", "/v1/batches", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            code = resp.status
            if resp.will_close:
                conn.close()
                local.conn = None
        except (OSError, http.client.HTTPException):
            code = 599
            local.conn = None
        with lock:
            if code >= 500:
                st.errors_5xx += 1
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[code] = statuses.get(code, 0) + 1

    # warm-up, not counted: every client's first request and the worker's first analysis (which imports the
    # analysis stack) would otherwise weigh on the CPU per upload of a short phase
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))
    latencies.clear()
    statuses.clear()
    _drain(st)
    time.sleep(1.0)
    anchored_before = _anchored_counts(st)
    meter = CpuMeter(st)
    load_before = os.getloadavg()[0]
    meter.start()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(uploads)))
    elapsed = time.perf_counter() - t0
    accepting = meter.stop()
    # the uploads are not done when their 201s are: their analysis and anchoring run in the worker, and a rate
    # the worker cannot keep up with is no sustained rate. Wait for that backlog and count its CPU too
    drain_s, backlog = _drain(st)
    cpu = meter.stop()
    batches, txs = (after - before for after, before in zip(_anchored_counts(st), anchored_before, strict=True))
    cpu_ms = sum(cpu.values()) * 1000 / uploads
    return {
        "cpu_ms_per_upload": round(cpu_ms, 1),
        **{f"cpu_ms_per_upload_{role}": round(v * 1000 / uploads, 1) for role, v in sorted(cpu.items())},
        "cpu_ms_per_upload_until_last_201": round(sum(accepting.values()) * 1000 / uploads, 1),
        # what two free cores would sustain at this CPU cost (the same machine, nobody else on it)
        "uploads_per_s_2_free_cores": round(2000 / cpu_ms, 1) if cpu_ms > 0 else None,
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "uploads_per_s": round(uploads / elapsed, 2),
        # every upload analysed and anchored: the rate the whole system sustains
        "uploads_processed_per_s": round(uploads / (elapsed + drain_s), 2),
        "backlog_at_last_201": backlog,
        "drain_s": round(drain_s, 2),
        # this phase's uploads: anchored batches per anchoring transaction
        "batches_per_anchor_tx": round(batches / txs, 2) if txs else None,
        "upload_ms_p50": _pct(latencies, 0.50),
        "upload_ms_p95": _pct(latencies, 0.95),
        "upload_ms_p99": _pct(latencies, 0.99),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "uploads": uploads,
        "clients": clients,
    }


def upload_to_anchored(st: Stack, *, n: int, who: str = "s2", rows: int = 1000) -> tuple[list[float], int]:
    """Sequential uploads, each polled right after its 201 until anchored; returns latencies and 404s."""
    latencies, not_found = [], 0
    key = st.keys[who]
    for i in range(n):
        body = load_csv(rows, 10_000 + i)
        t0 = time.perf_counter()
        resp = st.count(st.http.post("/v1/batches", headers=key | {"Idempotency-Key": f"A-{uuid.uuid4().hex}"},
                                     files=[("files", ("lot.csv", body, "text/csv"))]))  # fmt: skip
        if resp.status_code != 201:
            raise RuntimeError(f"upload failed: HTTP {resp.status_code} {resp.text[:300]}")
        ref = resp.json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            got = st.count(st.http.get(f"/v1/batches/{ref}", headers=key))
            if got.status_code == 404:
                not_found += 1
            elif got.status_code == 200 and got.json()["status"] == "anchored":
                break
            time.sleep(0.01)
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies, not_found


class SilentPort:
    """A loopback TCP port that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                self.conns.append(self.sock.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"

    def wait_for_connection(self, timeout_s: float) -> float:
        """Seconds until the first delivery connected (the webhook queue polls once a second and a slow host
        may take longer), or ``timeout_s`` if none did."""
        start = time.monotonic()
        while not self.conns and time.monotonic() - start < timeout_s:
            time.sleep(0.05)
        return round(time.monotonic() - start, 2)

    def close(self) -> None:
        self._stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


def slow_webhooks(st: Stack, silent: SilentPort, count: int = 10) -> None:
    """Ten subscriptions of supplier s1 to the silent port, each with a pending delivery."""
    from sqlalchemy import create_engine, text

    ids = []
    for _ in range(count):
        resp = st.count(st.http.post("/v1/webhooks", headers=st.keys["s1"], json={"url": silent.url}))
        resp.raise_for_status()
        ids.append(resp.json()["id"])
    engine = create_engine(st.db_url)
    with engine.begin() as conn:
        for sub_id in ids:
            conn.execute(
                text("INSERT INTO webhook_deliveries (subscription_id, event_key, event_type, body, status, attempts,"
                     " next_attempt_at, created_at) VALUES (:s, :k, 'case.opened', '{}', 'pending', 0, :t, :t)"),
                {"s": sub_id, "k": f"bench-{sub_id}", "t": _now()},
            )  # fmt: skip
    engine.dispose()


def _now() -> Any:
    from app.db import utcnow

    return utcnow()


def deep_json(st: Stack, depth: int = 100_000) -> Any:
    body = "[" * depth + "]" * depth
    try:
        resp = st.http.post("/v1/webhooks", content=body, headers={"Content-Type": "application/json"}, timeout=30)
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__}): the gateway process died or hung"
    return resp.status_code


# ------------------------------------------------------------------------------------------------ crashes
def crash_cycles(cycles: int, *, durable: bool = True, seed: int = 7, max_run_s: float = 1.5) -> dict[str, int]:
    """kill -9 the embedded node at random moments while a sender confirms transactions; count confirmed
    transactions missing after the restart. ``durable``: persist the state before confirming (the product
    path: chain.node.StatePersister via TxSender.on_mined)."""
    from web3 import HTTPProvider, Web3

    from app.settings import DEV_RELAYER_KEY
    from chain.node import LocalNode, StatePersister
    from chain.tx import TxSender

    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="qcn-bench-crash-"))
    node = LocalNode(tmp / "chain", port=_free_port())
    confirmed: list[str] = []
    lost = sent = 0
    try:
        node.start()
        for _ in range(cycles):
            w3 = Web3(HTTPProvider(node.url, request_kwargs={"timeout": 5}))
            sender = TxSender(w3, DEV_RELAYER_KEY, poll_interval=0.005, receipt_timeout=5)
            if durable:
                sender.on_mined = StatePersister(node.url, node.confirmed_state_file).ensure
            stop = threading.Event()
            mine: list[str] = []

            def run(sender: TxSender = sender, stop: threading.Event = stop, mine: list[str] = mine) -> None:
                target = {"to": "0x000000000000000000000000000000000000dEaD", "value": 1, "data": b""}
                while not stop.is_set():
                    try:
                        mine.append(sender.send_transaction(target, gas=21_000).tx_hash)
                    except Exception:  # the node was killed under us: stop sending
                        return

            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            time.sleep(rng.uniform(0.05, max_run_s))
            node.stop(hard=True)  # kill -9 at a random moment
            stop.set()
            thread.join(timeout=10)
            confirmed += mine
            sent += len(mine)
            node.start()
            w3 = Web3(HTTPProvider(node.url))
            for tx in confirmed:
                try:
                    w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
                except Exception:
                    lost += 1
            confirmed = [tx for tx in confirmed if _has_receipt(w3, tx)]
    finally:
        node.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"lost": lost, "confirmed": sent, "cycles": cycles}


def _has_receipt(w3: Any, tx: str) -> bool:
    try:
        w3.eth.get_transaction_receipt(tx)
        return True
    except Exception:
        return False


# ------------------------------------------------------------------------------------------------ main
def measure_gateway(
    *,
    uploads: int = 300,
    clients: int = 8,
    anchored_n: int = 20,
    crash: int = 20,
    baseline_uploads: int = 40,
    postgres: bool = True,
    pg_runs: int = 3,
    pg_base: str = "postgresql+psycopg://postgres@127.0.0.1:5432",
) -> dict[str, Any]:
    out: dict[str, Any] = {"gateway_5xx": 0, "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    if baseline_uploads:
        # named baseline, same run: the SQLite default as it was before, every upload parsed in a child process
        with stack(db_url=None, processes=1, extra_env={"QCN_PARSE_INLINE_MAX_BYTES": "0"}) as st:
            base = sustained_uploads(st, uploads=baseline_uploads, clients=clients)
            out.update({f"baseline_child_parse_{k}_sqlite": v for k, v in base.items()})
            out["gateway_5xx"] += st.errors_5xx
    # SQLite, the embedded default: one gateway process with its embedded worker
    silent = SilentPort()
    try:
        with stack(db_url=None, processes=1, extra_env={"QCN_WEBHOOK_ALLOW": "127.0.0.1/32",
                                                        "QCN_WEBHOOK_TIMEOUT_S": "20"}) as st:  # fmt: skip
            up = sustained_uploads(st, uploads=uploads, clients=clients)
            out.update({f"gateway_{k}_sqlite": v for k, v in up.items()})
            if baseline_uploads:
                for k in ("uploads_per_s", "cpu_ms_per_upload"):
                    out[f"ratio_{k}_sqlite_vs_baseline_child_parse"] = round(
                        up[k] / max(out[f"baseline_child_parse_{k}_sqlite"], 1e-9), 2
                    )
            lat, nf = upload_to_anchored(st, n=anchored_n)
            out["upload_to_anchored_ms_p50"] = _pct(lat, 0.50)
            out["upload_to_anchored_ms_p95"] = _pct(lat, 0.95)
            out["upload_then_404"] = nf
            out["anchor_latency_ms_p95_without_webhooks"] = _pct(lat, 0.95)
            slow_webhooks(st, silent)
            # measure only once the deliveries are claimed and hang on the silent port
            out["silent_port_wait_s"] = silent.wait_for_connection(timeout_s=30.0)
            lat_slow, nf2 = upload_to_anchored(st, n=anchored_n)
            out["anchor_latency_ms_p95_with_slow_webhooks"] = _pct(lat_slow, 0.95)
            out["anchor_latency_ratio_slow_webhooks"] = round(
                (_pct(lat_slow, 0.95) or 0) / max(_pct(lat, 0.95) or 1, 1e-9), 2
            )
            out["silent_port_connections"] = len(silent.conns)
            out["upload_then_404"] += nf2
            out["deep_json_status"] = deep_json(st)
            out["gateway_5xx"] += st.errors_5xx
    finally:
        silent.close()
    if postgres:
        import psycopg

        name = f"qcn_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            with stack(db_url=f"{pg_base}/{name}", processes=2, worker_process=True) as st:
                runs = [sustained_uploads(st, uploads=uploads, clients=clients) for _ in range(max(pg_runs, 1))]
                out.update({f"gateway_{k}": v for k, v in _median_run(runs).items()})
                out["gateway_runs"] = [{k: run[k] for k in _RUN_KEYS} for run in runs]
                out["gateway_processes"] = 2
                out["gateway_worker"] = "two qcn worker processes: the analysis has one of its own (docker-compose.yml)"
                out["gateway_5xx"] += st.errors_5xx
        finally:
            with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if crash:
        durable = crash_cycles(crash, durable=True)
        out["crash_lost_confirmed_txs"] = durable["lost"]
        out["crash_confirmed_txs"] = durable["confirmed"]
        out["crash_cycles"] = durable["cycles"]
        baseline = crash_cycles(max(crash // 2, 2), durable=False)
        out["crash_lost_confirmed_txs_baseline"] = baseline["lost"]
        out["crash_confirmed_txs_baseline"] = baseline["confirmed"]
    out["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    out["targets"] = {
        "gateway_uploads_per_s": ">= 50 (PostgreSQL, 2 processes)",
        "gateway_upload_ms_p99": "<= 500",
        "gateway_uploads_per_s_sqlite": ">= 20 with 0 errors",
        "gateway_5xx": 0,
        "anchor_latency_ratio_slow_webhooks": "<= 2",
        "crash_lost_confirmed_txs": 0,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--uploads", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--baseline-uploads", type=int, default=40, help="0: no baseline phase")
    parser.add_argument("--anchored", type=int, default=20)
    parser.add_argument("--crash-cycles", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-runs", type=int, default=3, help="PostgreSQL phases in a row; the median is reported")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    figures = measure_gateway(uploads=args.uploads, clients=args.clients, anchored_n=args.anchored,
                              crash=args.crash_cycles, postgres=not args.no_postgres,
                              baseline_uploads=args.baseline_uploads, pg_runs=args.pg_runs)  # fmt: skip
    text = json.dumps(figures, indent=2, sort_keys=True)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
