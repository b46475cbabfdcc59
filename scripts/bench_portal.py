"""Portal speed, written to bench/results/portal.json by ``make bench`` (or run alone).

1. ``portal_page_ms_*``: server time per page (in-process ASGI client, no network) with 10,000 batches and
   1,000 cases in PostgreSQL, for an OEM, a supplier and a lab; baseline in the same run: the JSON API's
   ``GET /v1/batches?limit=50`` on the same data (``portal_page_vs_api_list_p95_ratio``).
2. ``portal_js_kib``: JavaScript each page loads (minified, uncompressed), the largest page.
3. ``portal_upload_to_anchored_ms_*``: a 1,000-record CSV dropped (a DragEvent with its DataTransfer) on the
   upload page of a real Chromium under an active agreement, timed in the page from the drop until the page
   shows "anchored" with its transaction (``portal_upload_to_validated_ms_*``: until the per-characteristic
   result shows); gateway with its default settings + embedded worker + anvil as their own processes;
   baseline in the same run: the same upload through the API, polled (``portal_upload_vs_api_p95_ratio``).
Figures on a shared 2-core machine under other load are pessimistic.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_anchor import _free_port, _pct  # noqa: E402

PG = os.environ.get("QCN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
PASSWORD = "bench-password-2026"  # noqa: S105 - a throw-away bench database


def _stats(prefix: str, values: list[float]) -> dict[str, float]:
    return {f"{prefix}_p50": round(_pct(values, 0.5), 1), f"{prefix}_p95": round(_pct(values, 0.95), 1)}


def _seed(session: Any, n_batches: int, n_cases: int) -> dict[str, Any]:
    from sqlalchemy import insert

    from app.db import AgreementRecord, AnalysisJob, Batch, CaseRecord, Party, TemplateRecord
    from app.portal.models import PortalUser
    from app.portal.security import hash_password
    from app.quality import library_template

    parties = {}
    for kind, account in (
        ("oem", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        ("supplier", "0x90F79bf6EB2c4f870365E785982E1f101E93b906"),
        ("lab", "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"),
    ):
        p = Party(name=f"bench {kind}", kind=kind, account=account)
        session.add(p)
        session.flush()
        parties[kind] = p.id
    pw = hash_password(PASSWORD)
    for kind, pid in parties.items():
        session.add(PortalUser(party_id=pid, email=f"{kind}@bench", display_name=kind, role="signer", password_hash=pw))
    t = TemplateRecord(
        template_id="tpl.bench",
        version=1,
        oem_id=parties["oem"],
        chain_template_id="0x" + "11" * 32,
        # a real library template: the scorecard reads its minimum Cpk per class, the editor starts from one
        document=json.dumps(library_template("electrode_coating_line").document()),
        document_hash="0x" + "22" * 32,
        status="published",
    )
    session.add(t)
    session.flush()
    agreement_id = "0x" + "ab" * 32
    session.add(
        AgreementRecord(
            agreement_id=agreement_id,
            template_pk=t.id,
            oem_id=parties["oem"],
            supplier_id=parties["supplier"],
            lab_id=parties["lab"],
            terms="{}",
            status="active",
        )
    )
    assessment = json.dumps(
        {
            "characteristics": [
                {
                    "id": c,
                    "criticality": "major",
                    "unit": "um",
                    "lsl": 1.0,
                    "usl": 2.0,
                    "n": 32,
                    "samples": 32,
                    "required_samples": 32,
                    "mean": 1.5,
                    "std": 0.1,
                    "min": 1.2,
                    "max": 1.8,
                    "cpk": 1.6,
                    "min_cpk": 1.33,
                    "nonconforming": 0,
                }
                for c in ("thickness", "width", "porosity")
            ]
        }
    )
    now = datetime.now(UTC)
    rng = random.Random(7)
    batches, jobs, ids = [], [], []
    for i in range(n_batches):
        bid = str(uuid.uuid4())
        ids.append(bid)
        batches.append(
            {
                "id": bid,
                "batch_id": "0x" + uuid.uuid4().hex * 2,
                "supplier_id": parties["supplier"],
                "idempotency_key": f"LOT-{i}",
                "content_sha256": uuid.uuid4().hex * 2,
                "part_number": "P-1",
                "lot_id": f"LOT-{i:05d}",
                "record_count": 96,
                "leaf_count": 98,
                "root": "0x" + "33" * 32,
                "report_hash": "0x" + "00" * 32,
                "agreement_id": agreement_id,
                "verdict": 1,
                "supersedes": "0x" + "00" * 32,
                "status": "anchored",
                "anchored_at": 1_800_000_000 + i,
                "tx_hash": "0x" + "44" * 32,
                "block_number": i,
                "commitment": "0x" + "55" * 32,
                "created_at": now - timedelta(minutes=n_batches - i),
                "updated_at": now - timedelta(minutes=n_batches - i),
                "lot_size": 1200,
                "assessment": assessment,
            }
        )
        jobs.append(
            {
                "batch_pk": bid,
                "supplier_id": parties["supplier"],
                "part_number": "P-1",
                "status": "done",
                "outcome": "clean",
                "attempts": 1,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
    session.execute(insert(Batch), batches)
    session.execute(insert(AnalysisJob), jobs)
    states = ["opened", "supplier_responded", "verdict_submitted", "settled"]
    cases = [
        {
            "case_id": "0x" + uuid.uuid4().hex * 2,
            "batch_pk": ids[i * (n_batches // n_cases)],
            "batch_id": batches[i * (n_batches // n_cases)]["batch_id"],
            "agreement_id": agreement_id,
            "oem_id": parties["oem"],
            "supplier_id": parties["supplier"],
            "lab_id": parties["lab"],
            "lab_fee": "0",
            "open_status": "done",
            "attempts": 1,
            "next_attempt_at": now,
            "state": rng.choice(states),
            "deadline": 1_900_000_000 + i,
            "round": 0,
            "oem_accepted": False,
            "supplier_accepted": False,
            "lab_deadline_missed": False,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n_cases)
    ]
    session.execute(insert(CaseRecord), cases)
    return {"parties": parties, "batch": ids[-1], "agreement": agreement_id}


def measure_pages(n_batches: int = 10_000, n_cases: int = 1_000, repeat: int = 15) -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine, text

    from app.auth import issue_key
    from app.db import CaseRecord, Party, session_scope
    from app.main import create_app
    from app.settings import Settings
    from chain.node import LocalNode

    name = f"qcn_bench_portal_{os.getpid()}"
    admin_engine = create_engine(f"{PG}/test", isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    tmp = Path(tempfile.mkdtemp(prefix="qcn-bench-portal-"))
    node = LocalNode(tmp / "chain", port=_free_port())
    node.start()
    try:
        from app.chainctx import deploy_contracts

        settings = Settings(
            env="test",
            data_dir=tmp / "data",
            database_url=f"{PG}/{name}",
            rpc_url=node.url,
            deployments_dir=tmp / "deployments",
        )
        deploy_contracts(settings)
        app = create_app(settings, embedded_worker=False)
        with TestClient(app) as client:
            with session_scope(app.state.session_factory) as s:
                seeded = _seed(s, n_batches, n_cases)
                key = issue_key(session=s, party=s.get(Party, seeded["parties"]["supplier"]))
            with session_scope(app.state.session_factory) as s:
                case_pk = s.query(CaseRecord.id).order_by(CaseRecord.id.desc()).first()[0]
            pages = {
                "supplier": [
                    "/portal/",
                    "/portal/batches",
                    "/portal/batches?page=150",
                    f"/portal/batches/{seeded['batch']}",
                    "/portal/upload",
                    "/portal/cases",
                    f"/portal/cases/{case_pk}",
                    "/portal/agreements",
                    "/portal/agreements/1",
                ],
                "oem": [
                    "/portal/",
                    "/portal/batches",
                    "/portal/cases",
                    "/portal/scorecard",
                    "/portal/templates",
                    "/portal/templates/new?start=electrode_coating_line",
                    f"/portal/cases/{case_pk}",
                ],
                "lab": ["/portal/", "/portal/cases", f"/portal/cases/{case_pk}", "/portal/lab/reports"],
            }
            times: dict[str, list[float]] = {}
            for who, urls in pages.items():
                c = TestClient(app)
                r = c.post("/portal/login", data={"email": f"{who}@bench", "password": PASSWORD})
                assert r.status_code == 200, r.text[:300]
                for url in urls:
                    assert c.get(url).status_code == 200, (who, url)  # warm
                    for _ in range(repeat):
                        t0 = time.perf_counter()
                        resp = c.get(url)
                        times.setdefault(f"{who} {url}", []).append((time.perf_counter() - t0) * 1000)
                        assert resp.status_code == 200
            api = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                assert client.get("/v1/batches?limit=50", headers={"Authorization": f"Bearer {key}"}).status_code == 200
                api.append((time.perf_counter() - t0) * 1000)
            js = _js_per_page(c_html=[TestClient(app).get("/verify").text, c.get("/portal/").text])
        every = [v for vs in times.values() for v in vs]
        out: dict[str, Any] = _stats("portal_page_ms", every)
        out |= _stats("api_batches_list_ms", api)
        out["portal_page_vs_api_list_p95_ratio"] = round(out["portal_page_ms_p95"] / out["api_batches_list_ms_p95"], 2)
        out["portal_page_ms_p95_by_page"] = {k: round(_pct(v, 0.95), 1) for k, v in sorted(times.items())}
        out["portal_pages_measured"] = len(times)
        out["portal_page_data"] = f"{n_batches} batches, {n_cases} cases, PostgreSQL"
        out |= js
        return out
    finally:
        node.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


def _js_per_page(c_html: list[str]) -> dict[str, Any]:
    static = ROOT / "app" / "portal"
    sizes = []
    for html in c_html:
        scripts = re.findall(r'<script src="(/portal/static/[^"]+)"', html)
        sizes.append(sum((static / s.removeprefix("/portal/")).stat().st_size for s in scripts) / 1024)
    return {"portal_js_kib": round(max(sizes), 1), "portal_js_kib_note": "largest page, minified, not compressed"}


def _lot_csv(rows: int, seed: int) -> bytes:
    """A measurement CSV of exactly ``rows`` records for the demo template (areal capacity, porosity, adhesion)."""
    from models.simulate.lots import make_batch

    lot = make_batch(seed=seed, lot_id=f"BENCH-{seed}", n_samples=rows // 3 + 1)
    _name, data, _type = next(f for _field, f in lot.files() if f[0].endswith("_measurements.csv"))
    lines = data.decode().splitlines()
    return ("\n".join(lines[: rows + 1]) + "\n").encode()


# In the page: the moment of the drop, then of the per-characteristic result and of "anchored" being shown.
_DROP = """async ([name, text]) => {
  window.__qcn = {};
  const seen = () => {
    const s = document.querySelector('#anchor-status');
    if (!window.__qcn.validated && document.querySelector('#upload-characteristics')) {
      window.__qcn.validated = performance.now();
    }
    if (s && s.dataset.status === 'anchored' && s.textContent.includes('0x')) {
      window.__qcn.anchored = performance.now();
      observer.disconnect();
    }
  };
  const observer = new MutationObserver(seen);
  observer.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  const files = new DataTransfer();
  files.items.add(new File([text], name, {type: 'text/csv'}));
  const zone = document.querySelector('#drop');
  window.__qcn.dropped = performance.now();
  zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: files, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true}));
  document.querySelector('#upload-submit').click();  // a user who presses Upload at once
}"""


def measure_upload(n: int = 10, rows: int = 1000) -> dict[str, Any]:
    """Drop to "anchored" shown in the upload page of a real Chromium, for a ``rows``-record CSV delivered under an
    active agreement (validated against its template per characteristic, then anchored), timed in the page
    from the drop event to the moment the page shows "anchored" with the transaction. The agreement is set up
    as ``make demo`` does (parties, template, both signatures, deposit); the gateway runs with its defaults."""
    import contextlib
    import io

    from playwright.sync_api import sync_playwright

    from app.chainctx import deploy_contracts
    from app.demo import Demo, Story, _act_agreement, _act_parties
    from app.settings import Settings
    from chain.node import LocalNode
    from chain.tx import TxSender, http_web3

    tmp = Path(tempfile.mkdtemp(prefix="qcn-bench-upload-"))
    node = LocalNode(tmp / "chain", port=_free_port())
    node.start()
    port = _free_port()
    settings = Settings(env="dev", data_dir=tmp / "data", rpc_url=node.url, deployments_dir=tmp / "deployments")
    book = deploy_contracts(settings)
    env = {
        **os.environ,
        "QCN_ENV": "dev",
        "QCN_DATA_DIR": str(tmp / "data"),
        "QCN_RPC_URL": node.url,
        "QCN_DEPLOYMENTS_DIR": str(tmp / "deployments"),
        "QCN_EMBEDDED_WORKER": "1",
    }
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
    url = f"http://127.0.0.1:{port}"
    try:
        http = httpx.Client(base_url=url, timeout=60)
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
        w3 = http_web3(node.url)
        faucet = TxSender(w3, settings.admin_key.get_secret_value())
        token = book["contracts"]["SettlementToken"]
        demo = Demo(Story(), http, {}, {}, env, node.url, tmp / "data", w3, faucet, token)
        with contextlib.redirect_stdout(io.StringIO()):  # the demo's story lines: not the bench's output
            _act_parties(demo, settings.api_admin_token.get_secret_value())
            ref = _act_agreement(demo)["ref"]
        admin = {"Authorization": f"Bearer {settings.api_admin_token.get_secret_value()}"}
        user = {"party_id": demo.ids["supplier"], "email": "s@bench", "display_name": "bench", "role": "signer",
                "password": PASSWORD}  # fmt: skip
        http.post("/v1/users", headers=admin, json=user).raise_for_status()
        key = demo.parties["supplier"].headers
        form = {"agreement_id": ref, "lot_size": "1200"}
        api = []
        for i in range(-1, n):  # -1: a warm-up upload, not timed (first parser and model imports in the gateway)
            lot = _lot_csv(rows, 10_000 + i)  # made before the clock starts, as for the page below
            t0 = time.perf_counter()
            r = http.post("/v1/batches", headers=key, data=form, files=[("files", ("lot.csv", lot))])
            assert r.status_code in (200, 201, 202), r.text[:300]
            batch = r.json()
            assert batch["record_count"] == rows and batch["assessment"], batch
            while http.get(f"/v1/batches/{batch['id']}", headers=key).json()["status"] != "anchored":
                time.sleep(0.01)
            if i >= 0:
                api.append((time.perf_counter() - t0) * 1000)
        portal, validated = [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            # the page's CSP forbids eval, which Playwright's wait_for_function uses (the portal's own code does not)
            page = browser.new_context(bypass_csp=True).new_page()
            page.goto(url + "/portal/login")
            page.fill('input[name="email"]', "s@bench")
            page.fill('input[name="password"]', PASSWORD)
            page.click('button[type="submit"]')
            page.wait_for_url(re.compile(".*/portal/$"))
            for i in range(n):
                page.goto(url + "/portal/upload")
                page.select_option("#upload-agreement", ref)
                page.fill("#upload-key", f"BENCH-LOT-{i}")
                lot = _lot_csv(rows, 20_000 + i)
                page.evaluate(_DROP, [f"lot{i}.csv", lot.decode()])
                page.wait_for_function("() => window.__qcn && window.__qcn.anchored", timeout=60_000)
                t = page.evaluate("window.__qcn")
                assert page.locator("#upload-characteristics tr").count() == 4  # header + 3 characteristics
                assert f"{rows} " in page.inner_text("#upload-result h2")
                portal.append(t["anchored"] - t["dropped"])
                validated.append(t["validated"] - t["dropped"])
            browser.close()
        out = _stats("portal_upload_to_anchored_ms", portal) | _stats("api_upload_to_anchored_ms", api)
        out |= _stats("portal_upload_to_validated_ms", validated)
        out["portal_upload_vs_api_p95_ratio"] = round(
            out["portal_upload_to_anchored_ms_p95"] / out["api_upload_to_anchored_ms_p95"], 2
        )
        out["portal_upload_records_per_batch"] = rows
        out["portal_upload_batches"] = n
        out["portal_upload_note"] = (
            "in-page time from the drop event (Upload pressed at once) to 'anchored' shown, 1,000-record CSV under "
            "an active agreement (assessed against its template); API baseline: same upload, polled"
        )
        return out
    finally:
        gw.terminate()
        gw.wait(timeout=15)
        node.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def measure_portal(quick: bool = False, pages_only: bool = False) -> dict[str, Any]:
    out = measure_pages(
        n_batches=1_000 if quick else 10_000, n_cases=100 if quick else 1_000, repeat=5 if quick else 15
    )
    if not pages_only:  # --pages: the page timings alone (no browser upload), e.g. after changing a page
        out |= measure_upload(n=3 if quick else 10)
    return out


if __name__ == "__main__":
    print(json.dumps(measure_portal(quick="--quick" in sys.argv, pages_only="--pages" in sys.argv), indent=2,
                     sort_keys=True))  # fmt: skip
