"""The portal in a real browser (Debian's Chromium driven by Playwright), on a real anvil chain and gateway.

One story, as in ``make demo``, done by three people in three browser contexts, each signing with its own key
that never leaves its browser: the OEM edits a library template field by field, publishes it and proposes an
agreement, OEM and supplier sign it, the supplier deposits and uploads lots (progress, per-characteristic
result, anchored with its transaction), the OEM records its incoming inspections, an anomalous lot opens a case
(the supplier's work list updates live, by server-sent events), the supplier answers with an 8D report, the
lab signs the verdict through an injected EIP-1193 wallet (a stand-in extension holding its key,
``wallet_stub.js``) and runs a counterfactual on the case page, OEM and supplier accept, the OEM claims the
penalty and reads its scorecard charts. The public verify page checks a downloaded proof in the browser
against the chain and rejects a tampered copy. Along the way: every request body and every gateway log line is
free of private keys and passwords, another supplier's session cannot act on these objects, axe-core finds no
serious or critical violation on any page, every control is reachable by keyboard, and screenshots of each
page in English and Chinese land in ``test-output/portal/``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.chainctx import deploy_contracts
from app.main import create_app
from app.settings import Settings
from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.browser, pytest.mark.node, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
OUT = ROOT / "test-output" / "portal"
MNEMONIC = "test test test test test test test test test test test junk"
PEOPLE = {"oem": 2, "supplier": 3, "lab": 4, "supplier2": 5}
PASSWORDS = {who: f"{who}-login-pass-2026" for who in PEOPLE}
KEYSTORE_PASSWORDS = {who: f"{who}-keystore-secret-77" for who in PEOPLE}
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.lines.append(str(record.msg))


class Live:
    """A gateway served by uvicorn in this process (worker embedded) on a real anvil node."""

    def __init__(self, tmp: Path, rpc_url: str) -> None:
        import uvicorn

        self.settings = Settings(
            env="test",
            data_dir=tmp / "data",
            database_url=f"sqlite:///{tmp / 'portal.db'}",
            rpc_url=rpc_url,
            deployments_dir=tmp / "deployments",
            anchor_retry_base_s=0.2,
            scheduler_evaluate_interval_s=1.0,
        )
        self.book = deploy_contracts(self.settings)
        self.app = create_app(self.settings, embedded_worker=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="info", access_log=True)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Live:
        self.thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("gateway did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def live(tmp_path: Path, anvil: Any) -> Iterator[Live]:
    capture = _Capture()
    capture.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.INFO)
    root.addHandler(capture)
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addHandler(capture)
    try:
        with Live(tmp_path, anvil.url) as gw:
            gw.log = capture  # type: ignore[attr-defined]
            yield gw
    finally:
        root.removeHandler(capture)
        root.setLevel(old)
        for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).removeHandler(capture)


def _keys() -> dict[str, str]:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return {
        who: Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex().removeprefix("0x")
        for who, i in PEOPLE.items()
    }


def _setup_parties(live: Live, tmp: Path, keys: dict[str, str]) -> dict[str, Any]:
    """Admin registers the parties (API) and creates their first portal users with ``qcn user create``."""
    from eth_account import Account

    admin = {"Authorization": f"Bearer {live.settings.api_admin_token.get_secret_value()}"}
    out: dict[str, Any] = {"ids": {}, "keystores": {}, "accounts": {}}
    bodies = {
        "oem": {"name": "Voltaris Automotive", "kind": "oem"},
        "supplier": {"name": "Cathodic Coatings GmbH", "kind": "supplier"},
        "lab": {
            "name": "Rheinland Test Lab",
            "kind": "lab",
            "accreditation_id": "D-PL-12345-01-00",
            "accreditation_expires": "2030-06-30T00:00:00Z",
        },
        "supplier2": {"name": "Other Coatings Ltd", "kind": "supplier"},
    }
    for who, body in bodies.items():
        account = Account.from_key(keys[who]).address
        r = httpx.post(f"{live.url}/v1/parties", json={**body, "account": account}, headers=admin, timeout=60)
        assert r.status_code == 201, r.text
        out["ids"][who] = r.json()["id"]
        out["accounts"][who] = account
        cli = subprocess.run(
            [sys.executable, "-m", "app.cli", "user", "create", "--api", live.url, "--party", str(r.json()["id"]),
             "--email", f"{who}@example.com", "--name", who.capitalize(), "--role", "signer"],
            env={"QCN_API_KEY": live.settings.api_admin_token.get_secret_value(),
                 "QCN_USER_PASSWORD": PASSWORDS[who], "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["email"] == f"{who}@example.com"
        # Web3 Secret Storage keystore; a light scrypt cost keeps the test quick (the format is the standard one)
        ks = Account.encrypt(keys[who], KEYSTORE_PASSWORDS[who], kdf="scrypt", iterations=2**12)
        path = tmp / f"{who}-keystore.json"
        path.write_text(json.dumps(ks))
        out["keystores"][who] = path
    return out


class Person:
    """One person in one browser context; records every request body it sends."""

    def __init__(self, browser: Any, live: Live, who: str, lang: str = "en") -> None:
        self.who = who
        self.live = live
        self.context = browser.new_context(bypass_csp=True, locale="zh-CN" if lang == "zh" else "en-GB")
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.sent: list[str] = []
        self.page.on("request", self._record)
        self.page.on("dialog", lambda d: d.dismiss())

    def _record(self, request: Any) -> None:
        self.sent.append(request.url)
        body = request.post_data_buffer
        if body:
            self.sent.append(body.decode("latin-1"))

    def go(self, path: str) -> Any:
        self.page.goto(self.live.url + path)
        return self.page

    def login(self) -> None:
        self.go("/portal/login")
        self.page.fill('input[name="email"]', f"{self.who}@example.com")
        self.page.fill('input[name="password"]', PASSWORDS[self.who])
        self.page.click('button[type="submit"]')
        self.page.wait_for_url(re.compile(r".*/portal/$"))

    def import_key(self, path: Path, account: str) -> None:
        self.go("/portal/key")
        self.page.set_input_files("#keystore-file", str(path))
        self.page.wait_for_function("a => document.querySelector('#key-state').textContent.includes(a)", arg=account)

    def sign(self) -> None:
        """Answer the signing dialog: type the keystore password; the page decrypts and signs locally."""
        self.page.wait_for_selector("#sign-dialog[open], .flow-error")
        if self.page.locator(".flow-error").count():
            raise AssertionError(f"{self.who} at {self.page.url}: {self.page.inner_text('.flow-error')}")
        if self.page.is_visible("#sign-pw-label"):  # an injected wallet asks for no password here
            self.page.fill("#sign-password", KEYSTORE_PASSWORDS[self.who])
        self.page.click("#sign-ok")
        self.page.wait_for_selector("#sign-dialog", state="hidden")

    def flow(self, button: str) -> None:
        """Click a prepare-sign-relay button, sign, and wait for the page to reload after the relay."""
        with self.page.expect_navigation(timeout=60_000):
            self.page.click(button)
            self.sign()

    def reload_until(self, predicate: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.page.reload()  # a fresh render (the live-updated facts alone do not bring the new actions)
            if self.page.evaluate(predicate):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {predicate} on {self.page.url}")
            time.sleep(0.5)


def _injected_wallet(key: str, chain_id: int) -> str:
    """The init script of a stand-in wallet extension (tests/portal/wallet_stub.js bundled with ethers)."""
    out = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "esbuild"), str(Path(__file__).parent / "wallet_stub.js"), "--bundle",
         "--format=iife", f"--define:QCN_TEST_KEY=\"0x{key}\"", f"--define:QCN_CHAIN_ID={chain_id}"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=True,
    )  # fmt: skip
    return out.stdout


def _axe(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def _keyboard_reaches_everything(page: Any) -> list[str]:
    """Tab through the page; return the interactive elements that never got focus."""
    page.evaluate(
        """() => { let i = 0; for (const el of document.querySelectorAll(
        'a[href], button, input:not([type=hidden]), select, textarea, [tabindex="0"]')) {
        if (!el.dataset.kb) el.dataset.kb = String(i++); } }"""
    )
    total = page.evaluate("() => document.querySelectorAll('[data-kb]').length")
    seen: set[str] = set()
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for _ in range(total * 2 + 10):
        page.keyboard.press("Tab")
        kb = page.evaluate(
            "() => { const a = document.activeElement; const c = a && a.closest('[data-kb]');"
            " return c ? c.dataset.kb : null }"
        )
        if kb is not None:
            seen.add(kb)
    missing = page.evaluate(
        """seen => [...document.querySelectorAll('[data-kb]')].filter(el => !seen.includes(el.dataset.kb)
        && el.offsetParent !== null && !el.closest('dialog') && !el.disabled
        && !(el.type === 'file' && el.classList.contains('sr-only')))
        .map(el => el.outerHTML.slice(0, 80))""",
        sorted(seen),
    )
    return list(missing)


def test_the_demo_story_through_the_portal(live: Live, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from scripts.demo_data import make_batch

    keys = _keys()
    world = _setup_parties(live, tmp_path, keys)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    visited: dict[str, set[str]] = {}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        oem, supplier, lab = (Person(browser, live, w) for w in ("oem", "supplier", "lab"))
        # the lab signs through an injected EIP-1193 wallet (its key lives in the "extension", not the portal)
        chain_id = int(httpx.post(live.settings.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId",
                                                                "params": []}).json()["result"], 16)  # fmt: skip
        lab.context.add_init_script(script=_injected_wallet(keys["lab"], chain_id))
        for person in (oem, supplier, lab):
            person.login()
            visited.setdefault(person.who, set()).update({"/portal/", "/portal/key"})
        for person in (oem, supplier):
            person.import_key(world["keystores"][person.who], world["accounts"][person.who])
        page = lab.go("/portal/key")
        page.click("#wallet-connect")
        page.wait_for_function("document.querySelector('#key-state').textContent.includes('wallet')")

        # OEM: a template from the library, validated, published and signed in the browser
        editor = "/portal/templates/new?start=electrode_coating_line"
        page = oem.go(editor)
        lsl, usl = page.input_value("#f-c-0-lsl"), page.input_value("#f-c-0-usl")
        # the gateway's validator answers next to the fields: LSL above USL on the row, "high" at its field
        p_lsl = page.input_value("#f-p-0-lsl")
        page.fill("#f-c-0-lsl", "9")
        page.fill("#f-c-1-nominal", "high")
        # deposit terms, penalties and process parameters are fields too; a bad value in each
        page.fill("#f-deposit-min-ratio-bps", "16000")  # above the maximum ratio
        page.fill("#f-penalties-per-batch-major", "-3")  # not an amount
        page.fill("#f-p-0-lsl", "20")  # above the parameter's USL
        page.click("#template-validate")
        page.wait_for_selector('#template-check[data-valid="false"]')
        assert f"lsl 9 must be below usl {usl}" in page.inner_text("#err-c-0")
        assert "not a number" in page.inner_text("#err-c-1-nominal")
        assert page.get_attribute("#f-c-1-nominal", "aria-invalid") == "true"
        assert "min_ratio_bps 16000 is above max_ratio_bps 15000" in page.inner_text("#err-deposit-min_ratio_bps")
        assert page.get_attribute("#f-deposit-min-ratio-bps", "aria-invalid") == "true"
        assert page.get_attribute("#f-deposit-min-ratio-bps", "aria-describedby") == "err-deposit-min_ratio_bps"
        assert "not an amount of tokens" in page.inner_text("#err-penalties-per_batch-major")
        assert page.get_attribute("#f-penalties-per-batch-major", "aria-invalid") == "true"
        assert "lsl 20 must be below usl" in page.inner_text("#err-p-0")
        assert page.get_attribute("#f-p-0-lsl", "aria-describedby") == "err-p-0"
        assert page.get_attribute("#f-p-0-lsl", "aria-invalid") == "true"
        assert _axe(page) == []  # the fields with their errors: still no serious or critical violation
        page.screenshot(path=str(OUT / "en-oem-template-editor-errors.png"), full_page=True)
        page.fill("#f-c-0-lsl", lsl)
        page.fill("#f-c-1-nominal", "30")
        page.fill("#f-c-0-name", "Areal capacity (OEM drawing 7)")
        # fixed, and edited: what the published template and the agreement will hold
        page.fill("#f-deposit-min-ratio-bps", "5000")
        page.fill("#f-penalties-per-batch-major", "800")
        page.fill("#f-p-0-lsl", p_lsl)
        edits = {
            "#f-deposit-base-amount": "40000",
            "#f-deposit-max-step-bps": "3000",
            "#f-tier-3-ratio-bps": "8000",
            "#f-penalties-per-batch-critical": "4000.5",
            "#f-penalties-target-ppm": "400",
            "#f-p-0-usl": "15",
        }
        for field, value in edits.items():
            page.fill(field, value)
        page.select_option("#f-p-1-tier", "process")
        page.click("#template-validate")
        page.wait_for_selector('#template-check[data-valid="true"]')
        assert page.locator(".field-error").count() == 0
        assert page.locator("[aria-invalid=true]").count() == 0
        with page.expect_navigation(timeout=60_000):
            page.click("#template-publish")
            oem.sign()
        assert page.inner_text("#template-status").strip() == "published"
        assert "Areal capacity (OEM drawing 7)" in page.text_content("details pre")  # the edit was published
        template_url = page.url.replace(live.url, "")
        # the published template read back through the API carries every edited term
        published_doc = httpx.get(f"{live.url}/v1/templates/{template_url.rsplit('/', 1)[1]}",
                                  headers={"Authorization": "Bearer " + _api_key(live, "oem")}).json()  # fmt: skip
        assert published_doc["status"] == "published", published_doc
        terms = published_doc["document"]
        assert terms["deposit"]["base_amount"] == str(40_000 * 10**18)
        assert terms["deposit"]["min_ratio_bps"] == 5000 and terms["deposit"]["max_step_bps"] == 3000
        assert terms["deposit"]["tiers"][3] == {"min_score": 90, "ratio_bps": 8000}
        assert terms["penalties"]["per_batch"] == {
            "critical": str(4_000_500 * 10**15), "major": str(800 * 10**18), "minor": str(200 * 10**18)
        }  # fmt: skip
        assert terms["penalties"]["target_ppm"] == 400
        assert terms["process_parameters"][0]["usl"] == 15.0 and terms["process_parameters"][0]["lsl"] == float(p_lsl)
        assert terms["process_parameters"][1]["tier"] == "process"

        # OEM proposes the agreement to the supplier with the lab, and signs it (EIP-712)
        page.select_option("#propose-supplier", str(world["ids"]["supplier"]))
        page.select_option("#propose-lab", str(world["ids"]["lab"]))
        with page.expect_navigation():
            page.click('#propose-form button[type="submit"]')
        agreement_url = page.url.replace(live.url, "")
        oem.flow("#sign-agreement")

        # the supplier finds it in its work list and signs: the agreement becomes active on chain
        page = supplier.go("/portal/")
        page.click(".work-sign_agreement a")
        supplier.flow("#sign-agreement")
        assert page.inner_text("#agreement-status").strip() == "active"

        # dev faucet (as in the demo), then the supplier posts the required deposit: approve + deposit, signed here
        from chain.contracts import contract_at
        from chain.tx import TxSender, http_web3

        w3 = http_web3(live.settings.rpc_url)
        token = contract_at(w3, "TestToken", live.book["contracts"]["SettlementToken"])
        TxSender(w3, live.settings.admin_key.get_secret_value()).send(
            token.functions.mint(world["accounts"]["supplier"], 10**24)
        )
        required = page.inner_text("#dep-required")
        assert page.input_value("#deposit-amount")  # the shortfall, prefilled
        # relaying answers at once; the page follows both transactions (approve, then deposit) until mined
        with page.expect_navigation(timeout=60_000):
            page.click("#deposit-submit")
            supplier.sign()
            page.wait_for_selector(".relay-status[data-done] .relay-tx >> nth=1", timeout=60_000)
            mined = page.eval_on_selector_all(
                ".relay-status .relay-tx", "els => els.map(e => [e.dataset.status, e.dataset.block, e.textContent])"
            )
        assert [m[0] for m in mined] == ["mined", "mined"] and all(int(m[1]) > 0 for m in mined), mined
        assert mined[0][2].startswith("approve") and mined[1][2].startswith("deposit"), mined
        assert "active" in mined[1][2]  # the follow-up's result: the agreement as the gateway re-read it
        assert page.inner_text("#dep-posted") == required and page.inner_text("#dep-shortfall") == "0.00"
        visited["supplier"].add(agreement_url)
        visited["oem"].update({agreement_url, template_url, "/portal/templates", "/portal/agreements"})

        # the supplier uploads lots: several files at once, progress, per-characteristic result, anchored + tx
        # four in-control lots: 128 sample rows, enough for the causal model (analysis_causal_min_rows = 120)
        lots = [make_batch(seed=s, lot_id=f"EC-{s + 1:03d}", n_samples=32) for s in range(4)]
        from models.simulate import Fault

        lots.append(make_batch(seed=99, lot_id="EC-099", n_samples=32, fault=Fault("mean_shift", "roll_pressure", 6.0)))
        batch_urls = []
        page = supplier.go("/portal/upload")
        for lot in lots:
            page.goto(live.url + "/portal/upload")
            page.fill("#upload-key", lot.lot_id)
            files = [{"name": name, "mimeType": "text/csv", "buffer": data} for _f, (name, data, _t) in lot.files()]
            page.set_input_files("#upload-files", files)
            assert page.locator("#upload-list li").count() == 2
            page.click("#upload-submit")
            page.wait_for_selector("#upload-characteristics")
            assert page.locator("#upload-characteristics tr").count() == 4  # header + 3 characteristics
            page.wait_for_selector('#anchor-status[data-status="anchored"]', timeout=60_000)
            assert re.search(r"0x[0-9a-f]{64}", page.inner_text("#anchor-status"))
            assert page.evaluate("document.querySelector('#upload-progress').value") == 100
            batch_urls.append(page.get_attribute("#upload-result a", "href"))
        visited["supplier"].update({"/portal/upload", "/portal/batches", batch_urls[0]})
        visited["oem"].update({"/portal/batches", batch_urls[-1], "/portal/scorecard"})

        # the OEM records its incoming inspection of each lot on chain with its own key (as make demo does); the
        # drifted lot is rejected: these counts, not the supplier's anchors, make the quarter's score
        from chain.agreements import AgreementRegistryClient
        from chain.clients import AnchorRegistryClient

        inspections = AgreementRegistryClient(
            w3, live.book["contracts"]["AgreementRegistry"], TxSender(w3, keys["oem"])
        )
        anchors = AnchorRegistryClient(w3, live.book["contracts"]["AnchorRegistry"])
        agreement = httpx.get(f"{live.url}/v1/agreements/{agreement_url.rsplit('/', 1)[1]}",
                              headers={"Authorization": "Bearer " + _api_key(live, "oem")}).json()  # fmt: skip
        agreement_bytes = bytes.fromhex(agreement["agreement_id"].removeprefix("0x"))
        for href in batch_urls:
            b = httpx.get(f"{live.url}/v1/batches/{href.rsplit('/', 1)[1]}",
                          headers={"Authorization": "Bearer " + _api_key(live, "supplier")}).json()  # fmt: skip
            event = anchors.event_of(b["batch_id"])
            assert event is not None
            rejected = href == batch_urls[-1]
            inspections.record_inspection(agreement_bytes, event.batch_id, event.header, accepted=not rejected)

        # the anomalous lot opens a case on chain by itself; the supplier's open page updates live (SSE)
        page = supplier.go("/portal/")
        page.wait_for_selector(".work-respond a", timeout=120_000)
        case_href = None
        for _ in range(120):
            cases = httpx.get(f"{live.url}/v1/cases", headers={"Authorization": "Bearer " + _api_key(live, "supplier")})
            mine = [
                c for c in cases.json() if c["batch"] == batch_urls[-1].rsplit("/", 1)[1] and c["state"] == "opened"
            ]
            if mine:
                case_href = f"/portal/cases/{mine[0]['id']}"
                break
            time.sleep(0.5)
        assert case_href, "the anomalous lot opened no case"

        # supplier: 8D report (D1-D8 + an attachment), evidence hashed, respond signed here and relayed
        page = supplier.go(case_href)
        for i in range(1, 9):
            page.fill(f"#eightd-d{i}", f"D{i}: calender roll pressure drift — step {i}")
        page.set_input_files(
            "#eightd-files", [{"name": "pressure-log.csv", "mimeType": "text/csv", "buffer": b"t,p\n0,6.1\n"}]
        )
        supplier.flow("#respond-submit")
        supplier.reload_until("document.querySelector('#case-state-value').dataset.state === 'supplier_responded'")
        assert "pressure-log.csv" in page.inner_text("body")

        # lab: verdict (root cause, responsibility, class) signed with the lab's key
        page = lab.go(case_href)
        page.fill("#verdict-root-cause", page.input_value("#verdict-root-cause") or "roll_pressure")
        page.select_option("#verdict-responsible", "1")
        page.select_option("#verdict-class", "1")
        lab.flow("#verdict-submit")
        lab.reload_until("document.querySelector('#case-state-value').dataset.state === 'verdict_submitted'")
        visited["lab"].update({case_href, "/portal/cases", "/portal/lab/reports"})
        # that verdict was signed by the injected wallet (no keystore in this browser), with the lab's account,
        # and the chain holds it: the case read back through the API carries the lab's verdict
        calls = page.evaluate("window.__walletCalls")
        signed = [c for c in calls if c["method"] == "eth_signTypedData_v4"]
        assert len(signed) == 1 and signed[0]["params"][0] == world["accounts"]["lab"], calls
        assert json.loads(signed[0]["params"][1])["primaryType"] == "Verdict", signed
        assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('qcn.keystore')).length") == 0
        on_chain = httpx.get(f"{live.url}/v1/cases/{case_href.rsplit('/', 1)[1]}",
                             headers={"Authorization": "Bearer " + _api_key(live, "lab")}).json()  # fmt: skip
        assert on_chain["state"] == "verdict_submitted" and on_chain["responsible_party"] == 1, on_chain
        assert on_chain["nc_class"] == 1 and on_chain["verdict_hash"], on_chain

        # the case page: the stored counterfactual checks, one asked here, the causal graph with its path
        page = lab.go(case_href)
        path = page.inner_text("#rc-path")
        assert " → " in path
        page.wait_for_function("document.querySelector('#causal-graph').complete && "
                               "document.querySelector('#causal-graph').naturalWidth > 0")  # fmt: skip
        graph = lab.context.request.get(live.url + case_href + "/causal-graph.svg")
        assert graph.status == 200 and graph.headers["content-type"].startswith("image/svg+xml")
        assert all(node in graph.text() for node in path.split(" → ")), path  # the path's nodes are drawn
        assert page.locator("#cf-stored tbody tr").count() >= 1
        variable = page.input_value("#cf-variable")
        characteristic = page.input_value("#cf-characteristic")
        page.click("#cf-submit")
        page.wait_for_selector("#cf-result .cf-answer")
        answer = page.get_attribute("#cf-result .cf-answer", "data-answer")
        same = httpx.post(
            f"{live.url}/v1/batches/{batch_urls[-1].rsplit('/', 1)[1]}/counterfactual",
            json={"variable": variable, "characteristic": characteristic,
                  "within_pct": live.settings.analysis_cf_within_pct},
            headers={"Authorization": "Bearer " + _api_key(live, "oem")}, timeout=60,
        ).json()  # fmt: skip
        assert answer == same["answer"], same
        shown = float(page.inner_text("#cf-value").split()[0].replace(",", ""))
        assert abs(shown - same["counterfactual_value"]) < 6e-4, (shown, same)

        # OEM and supplier accept; the contract settles; the OEM claims the penalty
        for person in (oem, supplier):
            person.go(case_href)
            person.reload_until("!!document.querySelector('#accept-submit')")
            person.flow("#accept-submit")
        oem.reload_until("document.querySelector('#case-state-value').dataset.state === 'settled'")
        assert oem.page.locator("#claim-submit").count(), oem.page.inner_text("#case-facts")
        oem.flow("#claim-submit")
        steps = oem.page.inner_text("#timeline")
        for event in ("CaseOpened", "SupplierResponded", "VerdictSubmitted", "CaseSettled"):
            assert event in steps, steps
        visited["oem"].update({case_href, "/portal/cases", editor})
        visited["supplier"].update({case_href, "/portal/cases"})

        # the quarter ends: block time moves forward by a quarter (dev chain, as make demo does) and the gateway's
        # scheduler evaluates it; the score and the new deposit ratio come from the chain
        def rpc(method: str, *params: Any) -> Any:
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
            answer = httpx.post(live.settings.rpc_url, json=body, timeout=30).json()
            assert "error" not in answer, answer
            return answer["result"]

        from app.demo import _QUARTER_S

        api_oem = {"Authorization": "Bearer " + _api_key(live, "oem")}
        ref = agreement_url.rsplit("/", 1)[1]
        before = httpx.get(f"{live.url}/v1/agreements/{ref}", headers=api_oem).json()["on_chain"]
        rpc("evm_increaseTime", _QUARTER_S + 60)
        rpc("evm_mine")
        evaluations: list[Any] = []
        for _ in range(180):
            evaluations = httpx.get(f"{live.url}/v1/agreements/{ref}/evaluations", headers=api_oem).json()
            if evaluations:
                break
            time.sleep(0.5)
        assert evaluations, "the scheduler did not evaluate the ended quarter"
        evaluation = evaluations[-1]
        after = httpx.get(f"{live.url}/v1/agreements/{ref}", headers=api_oem).json()["on_chain"]
        assert evaluation["quarter"] == 0 and after["ratio_bps"] == evaluation["newRatioBps"], (evaluation, after)
        assert evaluation["oldRatioBps"] == before["ratio_bps"] == 10_000
        # the edited curve: one quarter moves the ratio by at most the edited step (3,000 bps)
        assert abs(evaluation["newRatioBps"] - evaluation["oldRatioBps"]) <= 3000

        topped_up = after["shortfall"] != "0"
        if topped_up:  # short (penalty paid, new ratio): the supplier tops up in the portal, as the demo does
            page = supplier.go(agreement_url)
            assert page.input_value("#deposit-amount")  # the shortfall, prefilled
            with page.expect_navigation(timeout=60_000):
                page.click("#deposit-submit")
                supplier.sign()
                page.wait_for_selector(".relay-status[data-done] .relay-tx >> nth=1", timeout=60_000)
            after = httpx.get(f"{live.url}/v1/agreements/{ref}", headers=api_oem).json()["on_chain"]
            assert after["shortfall"] == "0", after

        # the OEM's scorecard: charts drawn from the chain and the stored batches, each with its data table
        page = oem.go("/portal/scorecard")
        last = page.locator(".sc-last-evaluation")
        assert last.get_attribute("data-quarter") == "0"
        assert last.get_attribute("data-score") == str(evaluation["score"])
        assert page.inner_text(".sc-last-score") == str(evaluation["score"])
        assert page.inner_text(".sc-last-ratio") == f"{evaluation['newRatioBps'] / 100:,.0f} %"
        assert page.inner_text(".sc-ratio") == f"{after['ratio_bps'] / 100:,.0f} %"
        assert page.inner_text(".sc-required") == f"{int(after['required']) / 1e18:,.2f}"
        score_rows = page.eval_on_selector_all(
            "table:has(caption:text('Quality score per quarter')) tbody tr",
            "rs => rs.map(r => [...r.cells].map(c => c.textContent.trim()))",
        )
        assert score_rows == [["Q0", str(evaluation["score"])]], score_rows
        ratio_rows = page.eval_on_selector_all(
            "table:has(caption:text('Deposit ratio per quarter')) tbody tr",
            "rs => rs.map(r => [...r.cells].map(c => c.textContent.trim()))",
        )
        assert ratio_rows == [["Q0", f"{evaluation['newRatioBps'] / 100:.1f} %"]], ratio_rows
        # the deposit chart runs over block time: each funding change at its block's timestamp, in the locale
        history = httpx.get(f"{live.url}/v1/agreements/{ref}/deposits", headers=api_oem).json()["history"]
        from datetime import UTC, datetime

        moments = [
            datetime.fromtimestamp(int(rpc("eth_getBlockByNumber", hex(e["blockNumber"]), False)["timestamp"], 16), UTC)
            for e in history
            if e["event"] == "FundingUpdated"
        ]
        assert len(moments) >= 2, history
        if topped_up:  # the top-up's funding change is a quarter after the first deposit's
            assert (moments[-1] - moments[0]).days >= 90, moments
        deposit_table = "figure:has(svg[id$='-deposit']) tbody tr th"  # the chart's data table, in any language
        shown = page.eval_on_selector_all(deposit_table, "hs => hs.map(h => h.textContent.trim())")
        assert len(shown) == len(moments), (shown, moments)
        for label, moment in zip(shown, moments, strict=True):
            assert label.startswith(f"{moment.day} ") and f"{moment.year}, {moment:%H:%M:%S} UTC" in label, label
        axis = page.eval_on_selector_all("svg[id$='-deposit'] text", "ts => ts.map(t => t.textContent)")
        assert f"{moments[0]:%d/%m/%Y, %H:%M}" in axis, axis  # no block numbers on the axis
        assert not any(t.startswith("#") for t in axis), axis
        page = oem.go("/portal/lang/zh?next=/portal/scorecard")
        shown = page.eval_on_selector_all(deposit_table, "hs => hs.map(h => h.textContent.trim())")
        assert shown == [
            f"{m.year}年{m.month}月{m.day}日 {m:%H:%M:%S} UTC" for m in moments
        ], shown  # fmt: skip
        axis = page.eval_on_selector_all("svg[id$='-deposit'] text", "ts => ts.map(t => t.textContent)")
        assert f"{moments[0].year}/{moments[0].month}/{moments[0].day} {moments[0]:%H:%M}" in axis, axis
        assert page.inner_text(".sc-last-score") == str(evaluation["score"])
        page = oem.go("/portal/lang/en?next=/portal/scorecard")

        assert page.locator("svg.chart[role=img] title").count() >= 5 + 3  # 5 charts + Cpk of 3 characteristics
        nc_rows = page.inner_text("table:has(caption:text('Non-conformities recorded on chain')) tbody")
        assert "critical" in nc_rows, nc_rows
        q_rows = page.eval_on_selector_all(
            "table:has(caption:text('Incoming inspection: rejection rate per quarter')) tbody tr",
            "rs => rs.map(r => [...r.cells].map(c => c.textContent.trim()))",
        )
        # the OEM's inspections counted on chain agree with the supplier-side acceptance verdicts of the five lots
        q0 = next(r for r in q_rows if r[0] == "Q0")  # the lots were inspected in quarter 0 (now evaluated)
        assert q0[1] == page.inner_text(".sc-rejection"), (q_rows, page.inner_text(".sc-rejection"))
        deposit = page.eval_on_selector_all(
            "table:has(caption:text('Required and posted deposit over time')) tbody tr", "rs => rs.length"
        )
        assert deposit >= 1

        # a record proof downloaded from the batch page verifies in the public page; a tampered copy does not
        page = supplier.go(batch_urls[0])
        with page.expect_download() as dl:
            page.click("#record-proof-link")
        proof_path = tmp_path / "proof.json"
        dl.value.save_as(proof_path)
        proof = json.loads(proof_path.read_text())
        assert proof["format"] == "qcn-proof" and proof["leaf"]["kind"] == "record"
        anyone = Person(browser, live, "public")
        page = anyone.go("/verify")
        page.set_input_files("#proof-file", str(proof_path))
        page.wait_for_selector("#verify-verdict")
        assert page.get_attribute("#verify-verdict", "data-ok") == "true", page.inner_text("#verify-result")

        def verdict_of(doc: dict[str, Any], name: str) -> tuple[str | None, str]:
            """Drop ``doc`` as a proof file on a fresh verify page: the verdict flag and the steps shown."""
            path = tmp_path / name
            path.write_text(json.dumps(doc))
            page.reload()
            page.set_input_files("#proof-file", str(path))
            page.wait_for_selector("#verify-verdict")
            return page.get_attribute("#verify-verdict", "data-ok"), page.inner_text("#verify-result")

        tampered = json.loads(proof_path.read_text())
        tampered["leaf"]["record"]["value"] = tampered["leaf"]["record"]["value"] + 0.5
        ok, steps = verdict_of(tampered, "tampered.json")
        assert ok == "false"
        assert "✗" in steps
        # a proof naming another registry is refused before that registry is asked anything
        assert page.input_value("#registry").lower() == proof["registry"].lower()
        elsewhere = json.loads(proof_path.read_text()) | {"registry": "0x000000000000000000000000000000000000dEaD"}
        ok, steps = verdict_of(elsewhere, "elsewhere.json")
        assert ok == "false"
        assert "0x000000000000000000000000000000000000dEaD" in steps
        # a whole file and its batch id: the proof path comes from the gateway, the check runs in the browser
        page.reload()
        batch_id = httpx.get(
            f"{live.url}/v1/batches/{batch_urls[0].rsplit('/', 1)[1]}",
            headers={"Authorization": "Bearer " + _api_key(live, "supplier")},
        ).json()["batch_id"]
        name, data = lots[0].files()[0][1][:2]
        page.set_input_files("#data-file", {"name": name, "mimeType": "text/csv", "buffer": data})
        page.fill("#batch-id", batch_id)
        page.click("#verify-file")
        page.wait_for_selector("#verify-verdict")
        assert page.get_attribute("#verify-verdict", "data-ok") == "true", page.inner_text("#verify-result")

        # another supplier's session cannot act on these objects by changing a URL or a form field
        other = Person(browser, live, "supplier2")
        other.login()
        csrf = other.page.get_attribute('meta[name="qcn-csrf"]', "content")
        hdr = {"X-CSRF-Token": csrf}
        agreement_ref = agreement_url.rsplit("/", 1)[1]
        case_ref = case_href.rsplit("/", 1)[1]
        attempts = {
            f"/portal/api/cases/{case_ref}/response/prepare": {"multipart": {f"d{i}": "x" for i in range(1, 9)}},
            f"/portal/api/cases/{case_ref}/acceptance/typed": {"form": {"accept": "true"}},
            f"/portal/api/cases/{case_ref}/acceptance/submit": {"data": {"message": {}, "signature": "0x00"}},
            f"/portal/api/cases/{case_ref}/claim/prepare": {},
            f"/portal/api/agreements/{agreement_ref}/typed": {},
            f"/portal/api/agreements/{agreement_ref}/prepare/deposit": {"form": {"amount": "1"}},
            f"/portal/api/agreements/{agreement_ref}/prepare/withdraw": {"form": {"amount": "1"}},
            f"/portal/api/agreements/{agreement_ref}/signature": {"data": {"signature": "0x" + "00" * 65}},
            f"/portal/api/agreements/{agreement_ref}/relay": {"data": {"raw": ["0x00"]}},
            f"/portal/api/templates/{template_url.rsplit('/', 1)[1]}/prepare": {},
            f"/portal/api/templates/{template_url.rsplit('/', 1)[1]}/publish": {"data": {"raw": ["0x00"]}},
            f"/portal/api/cases/{case_ref}/response/relay": {"data": {"raw": ["0x00"]}},
            f"/portal/api/cases/{case_ref}/claim/relay": {"data": {"raw": ["0x00"]}},
            f"/portal/api/cases/{case_ref}/verdict/typed": {
                "form": {"root_cause": "x", "responsible_party": "1", "nc_class": "1"}
            },
            f"/portal/api/cases/{case_ref}/verdict/submit": {"data": {"message": {}, "signature": "0x00"}},
        }
        for url, kw in attempts.items():
            r = other.context.request.post(live.url + url, headers=hdr, **kw)
            assert r.status in (403, 404), (url, r.status, r.text()[:200])
        for url in (case_href, agreement_url, batch_urls[0], template_url):
            assert other.context.request.get(live.url + url).status == 404, url
        # every transaction of the story went through the relay queue and was mined; its status is its party's
        from sqlalchemy import select

        from app.db import RelayTransaction

        with live.app.state.session_factory() as s:
            relayed = list(s.scalars(select(RelayTransaction)))
        assert {r.function for r in relayed} >= {"publishTemplate", "approve", "deposit", "respond", "claim"}
        assert all(r.status == "mined" and r.block_number for r in relayed), [(r.function, r.status) for r in relayed]
        published = next(r for r in relayed if r.function == "publishTemplate")
        assert json.loads(published.result or "{}").get("status") == "published"
        for r in relayed:
            assert other.context.request.get(f"{live.url}/portal/api/relay/{r.id}").status == 404, r.function
        assert oem.context.request.get(f"{live.url}/portal/api/relay/{published.id}").json()["status"] == "mined"

        # a relayed transaction that never gets a receipt: the chain stops mining and the gateway's relay timeout
        # is shortened for this one step; the page follows the status to "failed" and says why
        page = supplier.go(agreement_url)
        page.fill("#deposit-amount", "1")
        rpc("evm_setAutomine", False)
        live.settings.relay_timeout_s = 3.0
        try:
            page.click("#deposit-submit")
            supplier.sign()
            page.wait_for_selector(".relay-status[data-done]", timeout=60_000)
            error = page.inner_text(".flow-error")
            states = page.eval_on_selector_all(".relay-status .relay-tx", "els => els.map(e => e.dataset.status)")
        finally:
            live.settings.relay_timeout_s = 120.0
            rpc("evm_setAutomine", True)
            rpc("evm_mine")
        assert "approve failed" in error and "no receipt within 3 s" in error, error
        assert states == ["failed", "failed"], states  # the deposit after it was never sent (and timed out too)
        assert "Not mined" in page.inner_text(".relay-status .relay-tx >> nth=1")

        # accessibility and keyboard on every page, screenshots in both languages
        problems: dict[str, Any] = {}
        unreachable: dict[str, Any] = {}
        people = {"oem": oem, "supplier": supplier, "lab": lab}
        visited["public"] = {"/verify", "/portal/login"}
        for lang in ("en", "zh"):
            for who, urls in visited.items():
                person = people.get(who) or anyone
                person.go(f"/portal/lang/{lang}?next=/portal/")
                for url in sorted(urls):
                    page = person.go(url)
                    if url.endswith(".svg"):
                        continue
                    name = f"{lang}-{who}-{url.strip('/').replace('/', '_') or 'root'}.png"
                    page.screenshot(path=str(OUT / name), full_page=True)
                    found = _axe(page)
                    if found:
                        problems[f"{lang} {who} {url}"] = found
                    if lang == "en":
                        missing = _keyboard_reaches_everything(page)
                        if missing:
                            unreachable[f"{who} {url}"] = missing
        assert problems == {}, json.dumps(problems, indent=1)[:3000]
        assert unreachable == {}, json.dumps(unreachable, indent=1)[:3000]
        assert any("zh-" in p.name or p.name.startswith("zh") for p in OUT.iterdir())
        assert "追溯案例" in (people["oem"].go("/portal/lang/zh?next=/portal/cases").inner_text("h1"))
        browser.close()

    # no private key and no keystore password ever left a browser or reached a log line
    sent = "\n".join(oem.sent + supplier.sent + lab.sent + anyone.sent + other.sent).lower()
    logs = "\n".join(live.log.lines).lower()  # type: ignore[attr-defined]
    assert len(sent) > 10_000 and len(logs) > 1_000
    for who, key in keys.items():
        assert key.lower() not in sent and key.lower() not in logs, who
        assert KEYSTORE_PASSWORDS[who].lower() not in sent and KEYSTORE_PASSWORDS[who].lower() not in logs, who
        assert PASSWORDS[who].lower() not in logs, who


_KEYS: dict[str, str] = {}


def _api_key(live: Live, who: str) -> str:
    """An API key for test-side polling (machines keep API keys; people use the portal)."""
    if who not in _KEYS:
        admin = {"Authorization": f"Bearer {live.settings.api_admin_token.get_secret_value()}"}
        parties = httpx.get(f"{live.url}/v1/parties", headers=admin).json()
        pid = next(p["id"] for p in parties if p["kind"] == who)
        _KEYS[who] = httpx.post(f"{live.url}/v1/parties/{pid}/keys", headers=admin).json()["api_key"]
    return _KEYS[who]
