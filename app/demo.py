"""``qcn demo``: the whole story on the embedded default, told step by step.

Everything runs for real: a local anvil chain (state on disk), the contracts deployed from the committed
artifacts, the gateway as its own process with the anchoring worker inside, parties registered through the
API, each party signing with its own key (anvil's public development keys stand in for their wallets), batches
uploaded, validated, anchored, proven and verified by the ``qcn verify`` command. The demo uses its own data
directory and ports, wipes them at the start and stops what it started, so running it twice just works.
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
from eth_account import Account

from app.partyclient import PartyClient

__all__ = ["run_demo"]

_DEV_MNEMONIC = "test test test test test test test test test test test junk"  # anvil's public dev mnemonic
_PARTIES = {
    "oem": (2, {"name": "Voltaris Automotive (OEM)", "kind": "oem"}),
    "supplier": (3, {"name": "Cathodic Coatings GmbH (supplier)", "kind": "supplier"}),
    "lab": (
        4,
        {
            "name": "Rheinland Test Lab (ISO/IEC 17025)",
            "kind": "lab",
            "accreditation_id": "D-PL-12345-01-00",
            "accreditation_expires": "2030-06-30T00:00:00Z",
        },
    ),
}
_QUARTER_S = 7_862_400
_TEMPLATE = "electrode_coating_line"
_LOT_SIZE = 1200  # ISO 2859-1 S-4 -> code G, n = 32 samples per lot
_SAMPLES_PER_LOT = 32
_HISTORY_LOTS = 8


@dataclass
class Story:
    t0: float = field(default_factory=time.monotonic)
    checks: dict[str, bool] = field(default_factory=dict)

    def act(self, title: str) -> None:
        print(f"\n== {title} ==", flush=True)

    def step(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", flush=True)

    def check(self, name: str, ok: bool, text: str) -> None:
        self.checks[name] = ok
        self.step(("ok   " if ok else "FAIL ") + text)


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
        timeout=120,
        check=False,
    )


@dataclass
class Demo:
    story: Story
    http: httpx.Client
    parties: dict[str, PartyClient]
    ids: dict[str, int]
    env: dict[str, str]
    rpc_url: str
    data_dir: Path
    chain: Any  # Web3 of the local node
    admin: Any  # TxSender of the consortium admin (dev faucet)
    token_address: str

    def mint(self, to: str, amount: int) -> None:
        """Dev faucet: the open-mint test settlement token (dev chains only)."""
        from chain.contracts import contract_at

        token = contract_at(self.chain, "TestToken", self.token_address)
        self.admin.send(token.functions.mint(to, amount))

    def upload(self, who: str, files: list[tuple[str, bytes]], key: str, **form: str) -> dict[str, Any]:
        body = [("files", (name, data, "application/octet-stream")) for name, data in files]
        out: dict[str, Any] = self.parties[who].post(
            "/v1/batches", files=body, data=form, headers={"Idempotency-Key": key}
        )
        return out

    def anchored(self, who: str, batch_id: str, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            b: dict[str, Any] = self.parties[who].get(f"/v1/batches/{batch_id}")
            return b if b["status"] == "anchored" else None

        out: dict[str, Any] = _wait(done, timeout, f"batch {batch_id} to be anchored", interval=0.05)
        return out

    def time_travel(self, seconds: int) -> None:
        """Dev chain only: move block time forward (a quarter passes in a second)."""
        self.chain.provider.make_request("evm_increaseTime", [seconds])
        self.chain.provider.make_request("evm_mine", [])


def _inspect(demo: Demo, ref: str, anchored: list[dict[str, Any]], *, rejected_id: str) -> None:
    """The OEM records its incoming inspection of each anchored lot through the gateway (prepared there, signed
    with its own key, relayed): these results, not the supplier's anchors, are the batch counts of the quality
    score (docs/trust-model.md)."""
    oem = demo.parties["oem"]
    for batch in anchored:
        body = {"batch": batch["id"], "accepted": batch["id"] != rejected_id}
        oem.sign_and_relay(
            oem.post(f"/v1/agreements/{ref}/inspections/prepare", json=body), f"/v1/agreements/{ref}/transactions"
        )
    recorded = oem.get(f"/v1/agreements/{ref}/inspections")
    rejected = sum(1 for r in recorded if not r["accepted"])
    demo.story.step(
        f"OEM recorded its incoming inspection of all {len(recorded)} lots through the gateway, signed with its own"
        f" key ({rejected} rejected: EC-050)"
    )


def _act_parties(demo: Demo, admin_token: str) -> None:
    demo.story.act("1. consortium: parties register")
    admin = {"Authorization": f"Bearer {admin_token}"}
    Account.enable_unaudited_hdwallet_features()
    for who, (index, body) in _PARTIES.items():
        key = Account.from_mnemonic(_DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key
        account = Account.from_key(key).address
        resp = demo.http.post("/v1/parties", json={**body, "account": account}, headers=admin)
        resp.raise_for_status()
        party = resp.json()
        demo.parties[who] = PartyClient(demo.http, party["api_key"], key)
        demo.ids[who] = int(party["id"])
        demo.story.step(f"registered {who:8s} {party['name']} ({account}) in tx {party['chain_tx']}")


def _act_agreement(demo: Demo) -> dict[str, Any]:
    from app.quality import library_template

    demo.story.act("2. quality contract: template, signed agreement, deposit")
    oem, supplier = demo.parties["oem"], demo.parties["supplier"]
    template = library_template(_TEMPLATE)
    draft = oem.post("/v1/templates", json={"document": template.document()})
    published = oem.post(
        f"/v1/templates/{draft['template']['id']}/publish", json={"raw": oem.sign_transactions(draft["transactions"])}
    )
    demo.story.step(
        f"OEM published template {published['template_id']} v{published['version']} "
        f"(document hash {published['document_hash'][:18]}...) in tx {published['chain_tx']}"
    )
    proposed = oem.post(
        "/v1/agreements",
        json={"template": published["id"], "supplier_id": demo.ids["supplier"], "lab_id": demo.ids["lab"]},
    )
    ref = proposed["agreement_id"]
    supplier.post(
        f"/v1/agreements/{ref}/signatures", json={"signature": supplier.sign_typed_data(proposed["typed_data"])}
    )
    active = oem.post(
        f"/v1/agreements/{ref}/signatures", json={"signature": oem.sign_typed_data(proposed["typed_data"])}
    )
    status = active["on_chain"]
    demo.story.check(
        "agreement_active",
        active["status"] == "active",
        f"OEM and supplier signed (EIP-712, own keys); agreement {ref[:18]}... active in tx "
        f"{active['chain_tx']}; ratio {status['ratio_bps'] / 100:.0f} %, required deposit "
        f"{int(status['required']) / 1e18:,.0f} tokens",
    )
    required = int(status["required"])
    assert supplier.account is not None
    demo.mint(supplier.account.address, required * 2)
    demo.story.step(f"dev faucet: the supplier received {required * 2 / 1e18:,.0f} test settlement tokens")
    prepared = supplier.post(f"/v1/agreements/{ref}/deposits/prepare", json={"amount": required})
    relayed = supplier.sign_and_relay(prepared, f"/v1/agreements/{ref}/transactions")
    deposit = supplier.get(f"/v1/agreements/{ref}/deposits")["status"]
    demo.story.check(
        "deposit",
        int(deposit["deposited"]) == required,
        f"supplier signed approve + deposit locally; gateway relayed {[r['function'] for r in relayed]}; "
        f"deposited {int(deposit['deposited']) / 1e18:,.0f} tokens, shortfall {deposit['shortfall']}",
    )
    return {"ref": ref, "template": template, "deposit": required}


def _deliver(demo: Demo, ref: str, batch: Any) -> dict[str, Any]:
    files = [(name, data) for _field, (name, data, _type) in batch.files()]
    return demo.upload("supplier", files, batch.lot_id, agreement_id=ref, lot_size=str(_LOT_SIZE))


def _act_batches(demo: Demo, agreement: dict[str, Any]) -> dict[str, Any]:
    from models.simulate.lots import make_batch

    demo.story.act("3. deliveries: measurements + process data, validated, anchored, proven")
    ref = agreement["ref"]
    delivered = [
        _deliver(demo, ref, make_batch(seed=i, lot_id=f"EC-{i + 1:03d}", n_samples=_SAMPLES_PER_LOT))
        for i in range(_HISTORY_LOTS)
    ]
    verdicts = [b["verdict"] for b in delivered]
    demo.story.step(
        f"supplier delivered {len(delivered)} lots of {_SAMPLES_PER_LOT} samples (3 characteristics + "
        f"15 process, material, equipment and environment variables each): verdicts {set(verdicts)}"
    )
    first = delivered[0]
    again = demo.http.post(
        "/v1/batches",
        headers=demo.parties["supplier"].headers | {"Idempotency-Key": "EC-001"},
        files=[
            ("files", (n, d, "text/csv"))
            for _f, (n, d, _t) in make_batch(seed=0, lot_id="EC-001", n_samples=_SAMPLES_PER_LOT).files()
        ],
        data={"agreement_id": ref, "lot_size": str(_LOT_SIZE)},
    )
    demo.story.check(
        "idempotent",
        again.status_code == 200 and again.json()["id"] == first["id"],
        f"lot EC-001 uploaded again -> HTTP {again.status_code}, the same batch",
    )
    over = make_batch(seed=50, lot_id="EC-050", n_samples=_SAMPLES_PER_LOT)
    lines = over.measurements_csv.decode().splitlines()
    i = next(n for n, line in enumerate(lines) if ",areal_capacity," in line)
    cells = lines[i].split(",")
    cells[2] = "4.45"  # above the 4.3606 mAh/cm2 upper limit of a critical characteristic
    lines[i] = ",".join(cells)
    rejected_lot = type(over)(over.lot_id, ("\n".join(lines) + "\n").encode(), over.process_csv, over.truth)
    bad = _deliver(demo, ref, rejected_lot)
    reasons = [f["message"] for f in bad["assessment"]["findings"] if f["severity"] == "error"]
    demo.story.check(
        "rejected",
        bad["verdict"] == "reject",
        f"lot EC-050 (one areal capacity at 4.45 > USL 4.36, "
        f"critical, Ac 0) -> {bad['verdict']}: {reasons[0] if reasons else ''}",
    )
    t_up = time.monotonic()
    anchored = [demo.anchored("supplier", b["id"]) for b in [*delivered, bad]]
    rc = anchored[0]["receipt"]
    demo.story.step(
        f"all {len(anchored)} lots anchored within {time.monotonic() - t_up:.2f} s of the last upload "
        f"(lot EC-001: tx {rc['tx_hash'][:18]}... block {rc['block_number']})"
    )
    _inspect(demo, ref, anchored, rejected_id=bad["id"])
    counters = demo.parties["supplier"].get(f"/v1/agreements/{ref}")["on_chain"]["counters"]
    demo.story.check(
        "counted",
        counters["batches"] == len(anchored) and counters["rejected"] == 1,
        f"counted on chain from the OEM's incoming inspections (not the supplier's own anchors): "
        f"{counters['batches']} batches, {counters['rejected']} rejected this quarter",
    )

    supplier = demo.parties["supplier"]
    proof = supplier.get(f"/v1/batches/{first['id']}/records/0/proof")
    proof_path = demo.data_dir / "proof-record-0.json"
    proof_path.write_text(json.dumps(proof, indent=2))
    ok = _qcn(["verify", str(proof_path), "--rpc", demo.rpc_url], demo.env)
    demo.story.check(
        "verify_proof",
        ok.returncode == 0,
        f"qcn verify {proof_path.relative_to(Path.cwd())} -> "
        + ("VERIFIED" if ok.returncode == 0 else f"FAILED {ok.stdout}{ok.stderr}"),
    )
    tampered = json.loads(proof_path.read_text())
    tampered["leaf"]["record"]["value"] += 0.5
    bad_path = demo.data_dir / "proof-record-0-tampered.json"
    bad_path.write_text(json.dumps(tampered, indent=2))
    rejected = _qcn(["verify", str(bad_path), "--rpc", demo.rpc_url], demo.env)
    last = rejected.stderr.strip().splitlines()[-1] if rejected.stderr.strip() else ""
    demo.story.check("tamper_detected", rejected.returncode != 0, f"a tampered copy (value +0.5) -> rejected: {last}")
    csv_path = demo.data_dir / "EC-001_measurements.csv"
    csv_path.write_bytes(make_batch(seed=0, lot_id="EC-001", n_samples=_SAMPLES_PER_LOT).measurements_csv)
    filecheck = _qcn(
        [
            "verify",
            str(csv_path),
            "--batch",
            first["batch_id"],
            "--rpc",
            demo.rpc_url,
            "--api",
            str(demo.http.base_url),
        ],
        demo.env,
    )
    demo.story.check(
        "verify_file",
        filecheck.returncode == 0,
        "qcn verify EC-001_measurements.csv --batch ... -> "
        + ("VERIFIED" if filecheck.returncode == 0 else f"FAILED {filecheck.stdout}{filecheck.stderr}"),
    )
    return {"good": anchored[0], "proof_path": proof_path}


def _act_tracing(demo: Demo, agreement: dict[str, Any]) -> None:
    from models.simulate import Fault
    from models.simulate.lots import make_batch

    demo.story.act("4. an anomalous lot: tracing case, root cause, lab verdict, settlement")
    ref = agreement["ref"]
    oem, supplier, lab = demo.parties["oem"], demo.parties["supplier"], demo.parties["lab"]
    faulty = make_batch(
        seed=99, lot_id="EC-099", n_samples=_SAMPLES_PER_LOT, fault=Fault("mean_shift", "roll_pressure", 6.0)
    )
    t0 = time.monotonic()
    batch = _deliver(demo, ref, faulty)
    demo.story.step(
        f"lot EC-099 uploaded (unknown to everyone: the calender's roll pressure drifted); verdict {batch['verdict']}"
    )

    def case_open() -> dict[str, Any] | None:
        cases = [c for c in oem.get("/v1/cases") if c["batch"] == batch["id"]]
        return cases[0] if cases and cases[0]["state"] == "opened" else None

    case = _wait(case_open, 120, "the tracing case to open on chain", interval=0.1)
    analysis = oem.get(f"/v1/batches/{batch['id']}/analysis")
    demo.story.check(
        "case_opened",
        True,
        f"case {case['case_id'][:18]}... opened on chain {time.monotonic() - t0:.1f} s "
        f"after the upload (tx {case['open']['tx_hash'][:18]}...), analysis hash "
        f"{case['analysis_hash'][:18]}... anchored with it",
    )
    top = analysis.get("top_cause")
    reports = ((analysis.get("analysis") or {}).get("root_cause") or {}).get("reports") or []
    ranked = [c["variable"] for c in reports[0]["candidates"][:3]] if reports else []
    characteristic = reports[0]["characteristic"] if reports else "?"
    demo.story.check(
        "root_cause",
        top == faulty.truth["root_cause"],
        f"analysis: {characteristic} anomalous; root-cause ranking {', '.join(ranked)} (top-1 {top}; "
        f"injected {faulty.truth['root_cause']})",
    )
    for cf in ((analysis.get("analysis") or {}).get("root_cause") or {}).get("counterfactuals", [])[:1]:
        demo.story.step(
            f"counterfactual: {cf['question']} -> {cf.get('answer')}: {cf['characteristic']} "
            f"{cf.get('factual', float('nan')):.2f} -> {cf.get('counterfactual_value', float('nan')):.2f}, "
            f"within control limits: {cf.get('in_control')}"
        )
    case_id = case["case_id"]

    prep = demo.http.post(
        f"/v1/cases/{case_id}/response/prepare",
        headers=supplier.headers,
        files=[("files", ("8D-EC-099.txt", b"8D: calender roll pressure drift, sensor replaced", "text/plain"))],
    ).json()
    supplier.post(f"/v1/cases/{case_id}/response", json={"raw": supplier.sign_transactions(prep["transactions"])[0]})
    _wait(lambda: oem.get(f"/v1/cases/{case_id}")["state"] == "supplier_responded", 60, "the supplier response")
    demo.story.step("supplier responded with its 8D report (evidence hash on chain)")
    typed = lab.get(
        f"/v1/cases/{case_id}/verdict-typed-data", root_cause=top or "unknown", responsible_party=1, nc_class=1
    )["typed_data"]
    lab.post(
        f"/v1/cases/{case_id}/verdict", json={"message": typed["message"], "signature": lab.sign_typed_data(typed)}
    )
    _wait(lambda: oem.get(f"/v1/cases/{case_id}")["state"] == "verdict_submitted", 60, "the lab verdict")
    demo.story.step(
        f"lab signed the verdict with its own key (EIP-712): root cause {top}, supplier responsible, "
        "critical non-conformity"
    )
    for party in (oem, supplier):
        acc = party.get(f"/v1/cases/{case_id}/acceptance-typed-data", accept="true")["typed_data"]
        party.post(
            f"/v1/cases/{case_id}/acceptance", json={"message": acc["message"], "signature": party.sign_typed_data(acc)}
        )
    final = _wait(lambda: (c := oem.get(f"/v1/cases/{case_id}"))["state"] == "settled" and c, 60, "settlement")
    balances = supplier.get(f"/v1/agreements/{ref}/deposits")["status"]
    penalty = agreement["deposit"] - int(balances["deposited"])
    demo.story.check(
        "settled",
        final["penalized"] and penalty > 0,
        f"OEM and supplier accepted; the contract settled: {penalty / 1e18:,.0f} tokens moved from the "
        f"deposit to the OEM's claimable balance",
    )
    claim = oem.post(f"/v1/cases/{case_id}/claim/prepare")
    oem.post(f"/v1/cases/{case_id}/claim", json={"raw": oem.sign_transactions(claim["transactions"])[0]})
    demo.story.step(f"OEM claimed {int(claim['claimable']) / 1e18:,.0f} tokens (pull payment, signed by the OEM)")
    timeline = oem.get(f"/v1/cases/{case_id}/timeline")
    for step in timeline["steps"]:
        demo.story.step(f"    timeline: {step['event']:24s} block {step['block_number']:>4}  tx {step['tx_hash']}")


def _act_quarter(demo: Demo, agreement: dict[str, Any]) -> None:
    demo.story.act("5. the quarter ends: score from on-chain counters, deposit ratio moves")
    ref = agreement["ref"]
    supplier = demo.parties["supplier"]
    before = supplier.get(f"/v1/agreements/{ref}")["on_chain"]
    demo.time_travel(_QUARTER_S + 60)
    demo.story.step("dev chain: block time moved forward by one quarter (91 days); the gateway's scheduler evaluates")
    evaluations = _wait(lambda: supplier.get(f"/v1/agreements/{ref}/evaluations"), 90, "the quarterly evaluation")
    evaluation = evaluations[-1]
    after = supplier.get(f"/v1/agreements/{ref}")["on_chain"]
    demo.story.check(
        "evaluated",
        after["ratio_bps"] != before["ratio_bps"],
        f"quarter 0 evaluated: score {evaluation['score']}, deposit ratio "
        f"{evaluation['oldRatioBps'] / 100:.0f} % -> {evaluation['newRatioBps'] / 100:.0f} %, required "
        f"{int(before['required']) / 1e18:,.0f} -> {int(after['required']) / 1e18:,.0f} tokens",
    )
    shortfall = int(after["shortfall"])
    if shortfall:
        prepared = supplier.post(f"/v1/agreements/{ref}/deposits/prepare", json={"amount": shortfall})
        supplier.sign_and_relay(prepared, f"/v1/agreements/{ref}/transactions")
        topped = supplier.get(f"/v1/agreements/{ref}")["on_chain"]
        demo.story.check(
            "topped_up",
            topped["shortfall"] == "0",
            f"supplier topped up {shortfall / 1e18:,.0f} tokens within the grace period",
        )


def _chain_facts(demo: Demo, ref: str, settlement_txs: list[str]) -> dict[str, Any]:
    """What the chain holds (read from the node): head block, the agreement's balances and ratio, its
    evaluations, and whether the settlement / claim / top-up transactions are still in it."""
    supplier = demo.parties["supplier"]
    receipts: dict[str, int | None] = {}
    for tx in settlement_txs:
        try:
            receipts[tx] = int(demo.chain.eth.get_transaction_receipt(tx)["status"])
        except Exception:  # web3's TransactionNotFound: the chain lost it
            receipts[tx] = None
    return {
        "head": int(demo.chain.eth.block_number),
        "agreement": supplier.get(f"/v1/agreements/{ref}")["on_chain"],
        "evaluations": len(supplier.get(f"/v1/agreements/{ref}/evaluations")),
        "receipts": receipts,
    }


def _act_restart(demo: Demo, node: Any, proof_path: Path, ref: str) -> None:
    demo.story.act("6. the chain is killed and restarted from its state file")
    oem = demo.parties["oem"]
    settlement_txs = []
    for case in oem.get("/v1/cases"):
        steps = oem.get(f"/v1/cases/{case['case_id']}/timeline")["steps"]
        settlement_txs += [s["tx_hash"] for s in steps if s["event"] in ("CaseSettled", "Claimed")]
    before = _chain_facts(demo, ref, settlement_txs)
    node.stop(hard=True)  # SIGKILL right after the last acknowledged transaction
    time.sleep(0.2)
    node.start()
    after = _chain_facts(demo, ref, settlement_txs)
    kept = after["head"] >= before["head"] and all(
        after[k] == before[k] for k in ("agreement", "evaluations", "receipts")
    )
    demo.story.check(
        "nothing_acknowledged_lost",
        kept and bool(settlement_txs),
        f"after SIGKILL + restart: head block {before['head']} -> {after['head']}; deposit "
        f"{int(after['agreement']['deposited']) / 1e18:,.0f} tokens, ratio {after['agreement']['ratio_bps']} bps, "
        f"{after['evaluations']} evaluation(s), {len(settlement_txs)} settlement transaction(s) "
        + ("all still on chain" if kept else f"LOST (before {before}, after {after})"),
    )
    again = _qcn(["verify", str(proof_path), "--rpc", demo.rpc_url], demo.env)
    demo.story.check(
        "survives_kill",
        again.returncode == 0,
        "SIGKILL + restart -> the proof still " + ("VERIFIES" if again.returncode == 0 else "FAILS"),
    )


def run_demo(*, gateway_port: int = 8787, chain_port: int = 8546) -> int:
    """Run the story; returns the process exit code (0 when every step checked out)."""
    from app.chainctx import deploy_contracts
    from app.settings import Settings
    from chain.node import LocalNode
    from chain.tx import TxSender, http_web3

    story = Story()
    # in the working directory, like every other default of qcn (an installed package has no project root)
    data_dir = Path.cwd() / ".qcn" / "demo"
    node = LocalNode(data_dir / "chain", port=chain_port)
    node.stop()  # a previous demo's node, if one is still running
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "QCN_ENV": "dev",
        "QCN_DATA_DIR": str(data_dir),
        "QCN_RPC_URL": node.url,
        "QCN_CHAIN_DURABLE_STATE": str(node.confirmed_state_file),
        "QCN_DEPLOYMENTS_DIR": str(data_dir / "deployments"),
        "QCN_EMBEDDED_WORKER": "1",
        "QCN_SCHEDULER_EVALUATE_INTERVAL_S": "1",
        # the admin key is for the deploy step below only: the gateway runs without it (docs/trust-model.md)
        "QCN_ADMIN_KEY": "",
    }
    settings = Settings(data_dir=data_dir, rpc_url=node.url, deployments_dir=data_dir / "deployments")
    gateway: subprocess.Popen[bytes] | None = None
    try:
        story.act("0. set-up")
        st = node.start()
        story.step(f"local chain up: anvil at {st.url}, chain id {st.chain_id}, state in {st.state_file}")
        book = deploy_contracts(settings)
        story.step("contracts deployed: " + ", ".join(f"{k} {v[:10]}..." for k, v in book["contracts"].items()))
        with (data_dir / "gateway.log").open("wb") as log:
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
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        api = f"http://127.0.0.1:{gateway_port}"
        http = httpx.Client(base_url=api, timeout=60)
        _wait(lambda: http.get("/health").status_code == 200, 90, "the gateway to answer /health")
        story.step(f"gateway up at {api} (OpenAPI at {api}/docs), anchoring worker inside")

        w3 = http_web3(node.url)
        admin = TxSender(w3, settings.admin_key.get_secret_value())
        demo = Demo(story, http, {}, {}, env, node.url, data_dir, w3, admin, book["contracts"]["SettlementToken"])

        _act_parties(demo, settings.api_admin_token.get_secret_value())
        agreement = _act_agreement(demo)
        batches = _act_batches(demo, agreement)
        _act_tracing(demo, agreement)
        _act_quarter(demo, agreement)
        _act_restart(demo, node, batches["proof_path"], agreement["ref"])

        failed = [name for name, ok in story.checks.items() if not ok]
        print("\n== summary ==")
        good = batches["good"]
        print(f"agreement {agreement['ref']} ({agreement['template'].template_id} v{agreement['template'].version})")
        print(
            f"lot EC-001 {good['batch_id']}: {good['record_count']} records, anchored in block "
            f"{good['receipt']['block_number']} (tx {good['receipt']['tx_hash']})"
        )
        registry = book["contracts"]["AnchorRegistry"]  # the deployment's, as a verifier would look it up
        print(f"verify it yourself: qcn verify {batches['proof_path']} --rpc {node.url} --registry {registry}")
        print(
            f"checks: {len(story.checks) - len(failed)} of {len(story.checks)} passed"
            + (f"; FAILED: {', '.join(failed)}" if failed else "")
        )
        from app.portal.demo import serve_until_interrupted, welcome

        welcome(http=http, admin_token=settings.api_admin_token.get_secret_value(), parties=demo.parties,
                ids=demo.ids, data_dir=data_dir, url=api)  # fmt: skip
        serve_until_interrupted()
        return 0 if not failed else 1
    finally:
        if gateway is not None:
            gateway.terminate()
            try:
                gateway.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gateway.kill()
        node.stop()
