"""CPU of the background worker per uploaded batch, per part (not wall-clock: the cores are shared).

In one process (SQLite, a real anvil node, the gateway app without its embedded worker): ``history`` batches of
1,000 records (the bench_gateway CSV) are uploaded and worked through, then ``n`` more, and each part of the
worker is timed with ``time.process_time`` on its own:

* ``analysis_cpu_ms``: one analysis job of a 1,000-record batch with ``history`` earlier clean batches;
* ``anchor_cpu_ms``: one anchoring pass for one freshly uploaded batch (claim, commitments, anchor, record);
* ``index_new_block_cpu_ms`` / ``index_idle_cpu_ms``: an indexer pass after that anchoring / the first with no
  new block;
* ``index_quiet_cpu_ms``: the indexer pass after that (still no new block);
* ``idle_cpu_ms``: one idle pass of every row queue (what each poll costs when there is nothing to do), and
  ``idle_polling_cpu_ms_per_s``: what the row queues' threads spend polling per second while idle.

``--profile PREFIX`` also writes a cProfile of each part (``PREFIX.<part>.prof``).
Run: ``.venv/bin/python scripts/bench_worker.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench_gateway import _free_port  # noqa: E402
from scripts.demo_data import load_csv  # noqa: E402


def _cpu_ms(fn: Callable[[], object], prof: cProfile.Profile | None = None) -> float:
    t0 = time.process_time()
    if prof is not None:
        prof.enable()
    fn()
    if prof is not None:
        prof.disable()
    return (time.process_time() - t0) * 1000


def main(history: int, n: int, profile: str | None, poll: float | None = None) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from app.chainctx import deploy_contracts
    from app.main import create_app
    from app.services import indexer
    from app.settings import Settings
    from app.worker import AnchorWorker
    from chain.node import LocalNode

    tmp = Path(tempfile.mkdtemp(prefix="qcn-bench-worker-"))
    node = LocalNode(tmp / "chain", port=_free_port())
    node.start()
    parts = ("analysis", "anchor", "index_new_block", "index_idle", "index_quiet", "idle")
    profs = {k: cProfile.Profile() for k in parts} if profile else {}
    out: dict[str, list[float]] = {k: [] for k in parts}
    idle_each: dict[str, list[float]] = {}
    idle_per_s = 0.0

    def measure(part: str, fn: Callable[[], object]) -> None:
        out[part].append(_cpu_ms(fn, profs.get(part)))

    try:
        settings = Settings(env="test", data_dir=tmp / "data", rpc_url=node.url, deployments_dir=tmp / "deployments",
                            database_url=f"sqlite:///{tmp / 'qcn.db'}", reconcile_interval_s=3600,
                            **({} if poll is None else {"anchor_poll_interval_s": poll}))  # fmt: skip
        deploy_contracts(settings)
        app = create_app(settings, embedded_worker=False)
        with TestClient(app) as client:
            admin = {"Authorization": f"Bearer {settings.api_admin_token.get_secret_value()}"}
            resp = client.post("/v1/parties", headers=admin, json={"name": "s1", "kind": "supplier",
                               "account": "0x90F79bf6EB2c4f870365E785982E1f101E93b906"})  # fmt: skip
            key = {"Authorization": f"Bearer {resp.json()['api_key']}"}
            worker = AnchorWorker(settings=settings, session_factory=app.state.session_factory,
                                  chain=app.state.chain_holder.get())  # fmt: skip
            runner = worker.runner()
            queues = {q.spec.name: q for q in runner.queues}
            sessions = app.state.session_factory

            def upload(seed: int) -> None:
                r = client.post("/v1/batches", headers=key, files=[("files", ("lot.csv", load_csv(1000, seed)))])
                assert r.status_code == 201, r.text

            def index() -> int:
                return indexer.sync(sessions=sessions, chain=worker.chain, settings=settings)

            for i in range(history):
                upload(i)
            runner.drain_once()  # warm-up: imports, first analysis, model training
            while any(runner.drain_once().values()):
                pass
            for i in range(n):
                upload(history + i)
                measure("anchor", lambda: runner.run_pass(queues["anchoring"]))
                measure("index_new_block", index)
                measure("analysis", lambda: runner.run_pass(queues["analysis"]))
                measure("index_idle", index)  # the first pass without a new block
                measure("index_quiet", index)  # and the next
                while any(runner.drain_once().values()):  # whatever else the batch caused (cases, webhooks)
                    pass
                row_queues = [q for q in runner.queues if hasattr(q, "model")]
                measure("idle", lambda: [runner.run_pass(q) for q in row_queues])  # noqa: B023
                for q in row_queues:
                    idle_each.setdefault(q.spec.name, []).append(_cpu_ms(lambda q=q: runner.run_pass(q)))
            # idle polling per second: each row queue's threads poll every poll_s when there is nothing to do
            idle_per_s = sum(
                statistics.median(idle_each[q.spec.name]) * max(q.spec.concurrency, 1) / q.spec.poll_s
                for q in row_queues
            )
    finally:
        node.stop()
    for part, prof in profs.items():
        prof.dump_stats(f"{profile}.{part}.prof")
    return {f"{k}_cpu_ms": round(statistics.median(v), 2) for k, v in out.items()} | {
        "idle_polling_cpu_ms_per_s": round(idle_per_s, 1),
        "history": history,
        "n": n,
        "anchor_poll_interval_s": poll,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history", type=int, default=20)
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--poll", type=float, default=None, help="anchor_poll_interval_s (default: the setting's)")
    a = ap.parse_args()
    print(json.dumps(main(a.history, a.n, a.profile, a.poll), indent=2))
