"""Real processes: two gateway processes on one PostgreSQL, a worker killed with SIGKILL mid-anchoring.

Everything here is the production shape minus Docker: uvicorn processes, the `qcn worker` command, anvil over
JSON-RPC and PostgreSQL. Each batch must end anchored exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.chainctx import ChainHolder, deploy_contracts
from tests.app.conftest import ACCOUNTS, CSV_OK, make_settings
from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.node, pytest.mark.postgres, pytest.mark.slow]


def _env(settings: Any) -> dict[str, str]:
    return {
        **os.environ,
        "QCN_ENV": "test",
        "QCN_DATA_DIR": str(settings.data_dir),
        "QCN_DATABASE_URL": settings.db_url,
        "QCN_RPC_URL": settings.rpc_url,
        "QCN_DEPLOYMENTS_DIR": str(settings.deployments_dir),
        "QCN_ANCHOR_RETRY_BASE_S": "0.1",
        # a killed worker's anchoring claim lapses after 2 x this + 30 s: 40 s, well inside the wait below
        "QCN_TX_RECEIPT_TIMEOUT_S": "5",
    }


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def stack(tmp_path: Path, pg_url: str, anvil: Any) -> Iterator[dict[str, Any]]:
    settings = make_settings(tmp_path, pg_url, anvil.url)
    deploy_contracts(settings)
    env = _env(settings)
    procs: list[subprocess.Popen[bytes]] = []
    ports = [free_port(), free_port()]
    for port in ports:
        log = (tmp_path / f"gateway-{port}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app_from_env", "--factory", "--port", str(port)],
            env={**env, "QCN_EMBEDDED_WORKER": "0"}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
    for port in ports:
        _wait_http(f"http://127.0.0.1:{port}/health")
    yield {"settings": settings, "env": env, "ports": ports, "tmp": tmp_path}
    for p in procs:
        p.terminate()
        p.wait(timeout=15)


def _start_worker(stack: dict[str, Any], name: str, *options: str) -> subprocess.Popen[bytes]:
    log = (stack["tmp"] / f"{name}.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "app.cli", "worker", *options], env=stack["env"], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def test_two_gateways_and_a_killed_worker_anchor_every_batch_exactly_once(stack: dict[str, Any]) -> None:
    settings = stack["settings"]
    gw = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in stack["ports"]]
    admin = {"Authorization": f"Bearer {settings.api_admin_token.get_secret_value()}"}
    resp = gw[0].post("/v1/parties", json={"name": "s", "kind": "supplier", "account": ACCOUNTS["supplier"]},
                      headers=admin)  # fmt: skip
    assert resp.status_code == 201, resp.text
    key = {"Authorization": f"Bearer {resp.json()['api_key']}"}

    worker = _start_worker(stack, "worker-1")
    ids = []
    for i in range(40):
        body = CSV_OK.replace("12.31", f"12.{i:02d}")
        r = gw[i % 2].post("/v1/batches", files=[("files", ("lot.csv", body.encode(), "text/csv"))], headers=key)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        if i == 20:
            worker.send_signal(signal.SIGKILL)  # mid-stream, possibly between send and DB commit
            worker.wait()
            worker = _start_worker(stack, "worker-2")
    # a retried upload through the other gateway is the same batch
    again = gw[1].post("/v1/batches", files=[("files", ("lot.csv", CSV_OK.replace("12.31", "12.00").encode(),
                                                        "text/csv"))], headers=key)  # fmt: skip
    assert again.status_code == 200 and again.json()["id"] == ids[0]

    deadline = time.monotonic() + 120
    pending = ids
    while pending and time.monotonic() < deadline:
        pending = [i for i in ids if gw[0].get(f"/v1/batches/{i}", headers=key).json()["status"] != "anchored"]
        time.sleep(0.2)
    worker.terminate()
    worker.wait(timeout=15)
    assert not pending, f"{len(pending)} batches never anchored"

    chain = ChainHolder(settings).get()
    events = Counter("0x" + e.batch_id.hex() for e in chain.anchored_events())
    batch_ids = [gw[0].get(f"/v1/batches/{i}", headers=key).json()["batch_id"] for i in ids]
    assert all(events[b] == 1 for b in batch_ids), {b: events[b] for b in batch_ids if events[b] != 1}
    assert len(events) == 40


def test_the_analysis_runs_in_a_worker_process_of_its_own(stack: dict[str, Any]) -> None:
    """The compose shape: ``qcn worker --exclude analysis`` anchors (it holds the sender lease) and leaves the
    analysis alone; ``qcn worker --queues analysis`` analyses and sends nothing. A wrong queue name is refused."""
    from sqlalchemy import select

    from app.db import AnalysisJob, Lease, make_engine, make_session_factory

    settings = stack["settings"]
    bad = subprocess.run([sys.executable, "-m", "app.cli", "worker", "--queues", "analysys"], env=stack["env"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode != 0 and "unknown worker queue(s) analysys" in bad.stderr, bad.stderr[-800:]

    gw = httpx.Client(base_url=f"http://127.0.0.1:{stack['ports'][0]}", timeout=30)
    admin = {"Authorization": f"Bearer {settings.api_admin_token.get_secret_value()}"}
    resp = gw.post("/v1/parties", json={"name": "s", "kind": "supplier", "account": ACCOUNTS["supplier"]},
                   headers=admin)  # fmt: skip
    key = {"Authorization": f"Bearer {resp.json()['api_key']}"}
    sessions = make_session_factory(make_engine(settings.db_url))

    def jobs() -> list[str]:
        with sessions() as s:
            return list(s.scalars(select(AnalysisJob.status).order_by(AnalysisJob.id)))

    anchoring = _start_worker(stack, "worker-anchoring", "--exclude", "analysis")
    analysing = None
    try:
        ids = []
        for i in range(3):
            body = CSV_OK.replace("12.31", f"12.{i:02d}").encode()
            r = gw.post("/v1/batches", files=[("files", ("lot.csv", body, "text/csv"))], headers=key)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and any(
            gw.get(f"/v1/batches/{i}", headers=key).json()["status"] != "anchored" for i in ids
        ):
            time.sleep(0.2)
        assert all(gw.get(f"/v1/batches/{i}", headers=key).json()["status"] == "anchored" for i in ids)
        time.sleep(1.0)  # the anchoring worker's analysis queue would have woken by now: it has none
        assert jobs() == ["pending"] * 3
        analysing = _start_worker(stack, "worker-analysis", "--queues", "analysis")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and jobs() != ["done"] * 3:
            time.sleep(0.2)
        assert jobs() == ["done"] * 3
        with sessions() as s:
            lease = s.get(Lease, "anchor-sender")
            assert lease is not None and f":{anchoring.pid}:" in lease.holder  # the analysis process sends nothing
    finally:
        for p in (anchoring, analysing):
            if p is not None:
                p.terminate()
                p.wait(timeout=15)
