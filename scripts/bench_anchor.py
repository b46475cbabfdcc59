"""Upload -> anchored latency on the local node: 1k-record CSV batches through a real gateway process.

The gateway (uvicorn, SQLite, embedded anchoring worker) and anvil run as their own processes; the client
uploads one batch at a time and polls its status every 10 ms. Reported: p50/p95 over ``n`` batches.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.demo_data import load_csv  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def measure_upload_to_anchored(n: int = 40, rows: int = 1000) -> dict[str, Any]:
    from app.chainctx import deploy_contracts
    from app.settings import Settings
    from chain.node import LocalNode

    tmp = Path(tempfile.mkdtemp(prefix="qcn-bench-"))
    node = LocalNode(tmp / "chain", port=_free_port())
    node.start()
    port = _free_port()
    settings = Settings(env="dev", data_dir=tmp / "data", rpc_url=node.url, deployments_dir=tmp / "deployments")
    deploy_contracts(settings)
    env = {**os.environ, "QCN_ENV": "dev", "QCN_DATA_DIR": str(tmp / "data"), "QCN_RPC_URL": node.url,
           "QCN_DEPLOYMENTS_DIR": str(tmp / "deployments"), "QCN_EMBEDDED_WORKER": "1",
           "QCN_ANCHOR_POLL_INTERVAL_S": "0.01"}  # fmt: skip
    log = (tmp / "gateway.log").open("wb")
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app_from_env",
        "--factory",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    gw = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if http.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not start")
            time.sleep(0.1)
        admin = {"Authorization": f"Bearer {settings.api_admin_token.get_secret_value()}"}
        party = http.post("/v1/parties", headers=admin, json={"name": "bench supplier", "kind": "supplier",
                          "account": "0x90F79bf6EB2c4f870365E785982E1f101E93b906"}).json()  # fmt: skip
        key = {"Authorization": f"Bearer {party['api_key']}"}
        latencies = []
        for i in range(n):
            body = load_csv(rows, i)
            t0 = time.perf_counter()
            resp = http.post("/v1/batches", headers=key, files=[("files", ("lot.csv", body, "text/csv"))])
            if resp.status_code not in (200, 201):
                raise RuntimeError(f"upload failed: HTTP {resp.status_code} {resp.text[:300]}")
            batch = resp.json()
            while True:
                got = http.get(f"/v1/batches/{batch['id']}", headers=key)
                if got.status_code != 200:
                    raise RuntimeError(f"status poll failed: HTTP {got.status_code} {got.text[:300]}")
                if got.json()["status"] == "anchored":
                    break
                time.sleep(0.01)
            latencies.append((time.perf_counter() - t0) * 1000)
        return {
            "upload_to_anchored_ms_p50": round(_pct(latencies, 0.50), 1),
            "upload_to_anchored_ms_p95": round(_pct(latencies, 0.95), 1),
            "upload_to_anchored_batches": n,
            "upload_to_anchored_records_per_batch": rows,
        }
    finally:
        gw.terminate()
        gw.wait(timeout=15)
        node.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(measure_upload_to_anchored(), indent=2))
