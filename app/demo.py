"""``qcn demo``: the whole story on the embedded default, told step by step.

Everything runs for real: a local anvil chain (state on disk), the contracts deployed from the committed
artifacts, the gateway as its own process with the anchoring worker inside, parties registered through the
API, a batch uploaded, anchored, proven and verified by the ``qcn verify`` command. The demo uses its own data
directory and ports, wipes them at the start, and stops what it started, so running it twice just works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["run_demo"]

_ROOT = Path(__file__).resolve().parent.parent
_SAMPLES = _ROOT / "scripts" / "sample_data"
# anvil dev accounts 2..4 (mnemonic "test ... junk"): public keys of a dev chain, stand-ins for the parties' wallets
_PARTY_ACCOUNTS = {
    "oem": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "supplier": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "lab": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
}


@dataclass
class Story:
    t0: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)

    def step(self, text: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {text}"
        self.lines.append(line)
        print(line, flush=True)


def _wait(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" ({last})" if last else ""))


def _qcn(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=_ROOT,
        timeout=120,
        check=False,
    )


def run_demo(*, gateway_port: int = 8787, chain_port: int = 8546) -> int:
    """Run the story; returns the process exit code (0 when every step checked out)."""
    from app.chainctx import deploy_contracts
    from app.settings import Settings
    from chain.node import LocalNode

    story = Story()
    data_dir = _ROOT / ".qcn" / "demo"
    node = LocalNode(data_dir / "chain", port=chain_port)
    node.stop()  # a previous demo's node, if one is still running
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "QCN_ENV": "dev",
        "QCN_DATA_DIR": str(data_dir),
        "QCN_RPC_URL": node.url,
        "QCN_DEPLOYMENTS_DIR": str(data_dir / "deployments"),
        "QCN_EMBEDDED_WORKER": "1",
    }
    settings = Settings(data_dir=data_dir, rpc_url=node.url, deployments_dir=data_dir / "deployments")
    admin_token = settings.api_admin_token.get_secret_value()
    gateway: subprocess.Popen[bytes] | None = None
    try:
        st = node.start()
        story.step(f"local chain up: anvil at {st.url}, chain id {st.chain_id}, state file {st.state_file}")
        book = deploy_contracts(settings)
        story.step(f"contracts deployed: {json.dumps(book['contracts'])}")

        gateway_log = (data_dir / "gateway.log").open("wb")
        gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(gateway_port),
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=_ROOT,
            stdout=gateway_log,
            stderr=subprocess.STDOUT,
        )
        api = f"http://127.0.0.1:{gateway_port}"
        http = httpx.Client(base_url=api, timeout=30)
        _wait(lambda: http.get("/health").status_code == 200, 60, "the gateway to answer /health")
        story.step(f"gateway up at {api} (OpenAPI at {api}/docs), anchoring worker running inside")

        admin = {"Authorization": f"Bearer {admin_token}"}
        keys: dict[str, str] = {}
        for kind, body in {
            "oem": {"name": "Voltaris Automotive (OEM)", "kind": "oem"},
            "supplier": {"name": "Cathodic Coatings GmbH (supplier)", "kind": "supplier"},
            "lab": {
                "name": "Rheinland Test Lab (ISO/IEC 17025)",
                "kind": "lab",
                "accreditation_id": "D-PL-12345-01-00",
                "accreditation_expires": "2028-06-30T00:00:00Z",
            },
        }.items():
            resp = http.post("/v1/parties", json={**body, "account": _PARTY_ACCOUNTS[kind]}, headers=admin)
            resp.raise_for_status()
            party = resp.json()
            keys[kind] = party["api_key"]
            story.step(f"registered {kind:8s} {party['name']} ({party['account']}) in tx {party['chain_tx']}")

        supplier = {"Authorization": f"Bearer {keys['supplier']}", "Idempotency-Key": "LOT-2026-1127-A"}
        sample = _SAMPLES / "coating_lot_A.csv"
        with sample.open("rb") as fh:
            resp = http.post("/v1/batches", files=[("files", (sample.name, fh, "text/csv"))], headers=supplier)
        resp.raise_for_status()
        batch = resp.json()
        story.step(
            f"supplier uploaded {sample.name}: {batch['record_count']} records, root {batch['root'][:18]}..., "
            f"status {batch['status']}"
        )
        with sample.open("rb") as fh:
            again = http.post("/v1/batches", files=[("files", (sample.name, fh, "text/csv"))], headers=supplier)
        story.step(f"same upload again -> HTTP {again.status_code}, same batch: {again.json()['id'] == batch['id']}")

        def anchored() -> dict[str, Any] | None:
            b = http.get(f"/v1/batches/{batch['id']}", headers=supplier).json()
            return b if b["status"] == "anchored" else None

        t_up = time.monotonic()
        batch = _wait(anchored, 60, "the batch to be anchored", interval=0.05)
        rc = batch["receipt"]
        story.step(f"anchored in {time.monotonic() - t_up:.2f} s: tx {rc['tx_hash']} block {rc['block_number']}")

        proof = http.get(f"/v1/batches/{batch['id']}/records/0/proof", headers=supplier).json()
        proof_path = data_dir / "proof-record-0.json"
        proof_path.write_text(json.dumps(proof, indent=2))
        story.step(f"proof for record 0 written to {proof_path.relative_to(_ROOT)} ({len(proof['siblings'])} siblings)")

        ok = _qcn(["verify", str(proof_path), "--rpc", node.url], env)
        story.step(
            "qcn verify PROOF.json -> " + ("VERIFIED" if ok.returncode == 0 else f"FAILED\n{ok.stdout}{ok.stderr}")
        )
        tampered = json.loads(proof_path.read_text())
        tampered["leaf"]["record"]["value"] = tampered["leaf"]["record"]["value"] + 0.5
        bad_path = data_dir / "proof-record-0-tampered.json"
        bad_path.write_text(json.dumps(tampered, indent=2))
        bad = _qcn(["verify", str(bad_path), "--rpc", node.url], env)
        story.step(
            "a tampered copy (value +0.5) -> "
            + ("rejected: " + bad.stderr.strip().splitlines()[-1] if bad.returncode != 0 else "ACCEPTED (wrong!)")
        )
        filecheck = _qcn(["verify", str(sample), "--batch", batch["batch_id"], "--rpc", node.url, "--api", api], env)
        story.step(
            "qcn verify FILE --batch -> "
            + ("VERIFIED" if filecheck.returncode == 0 else f"FAILED {filecheck.stdout}{filecheck.stderr}")
        )

        node.stop(hard=True)
        time.sleep(0.2)
        node.start()
        again_ok = _qcn(["verify", str(proof_path), "--rpc", node.url], env)
        story.step(
            "chain killed with SIGKILL and restarted from its state file -> proof "
            + ("still VERIFIED" if again_ok.returncode == 0 else "FAILED")
        )

        success = ok.returncode == 0 and bad.returncode != 0 and filecheck.returncode == 0 and again_ok.returncode == 0
        print("\n== summary ==")
        print(
            f"batch {batch['batch_id']} of {batch['supplier']}: {batch['record_count']} records + 1 file, "
            f"anchored in block {rc['block_number']} (tx {rc['tx_hash']})"
        )
        print(f"proof: {proof_path}; verify it yourself: qcn verify {proof_path} --rpc {node.url}")
        print("result:", "all checks passed" if success else "SOME CHECKS FAILED")
        return 0 if success else 1
    finally:
        if gateway is not None:
            gateway.terminate()
            try:
                gateway.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gateway.kill()
        node.stop()
