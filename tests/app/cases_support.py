"""Shared set-up of the tracing-case gateway tests (no tests here): a gateway on a real anvil node with an OEM, two
suppliers and two labs, an active agreement (OEM, supplier, lab) with the supplier's deposit posted and the
OEM's lab-fee pool funded, and helpers to make an anomalous anchored batch, sign as a party and travel in time.

The agreement is created directly on chain with ``chain.agreements`` (the OEM publishes the template, both
parties sign, the supplier deposits) and mirrored into ``TemplateRecord`` / ``AgreementRecord`` rows; batches are
uploaded through the API and put under the agreement in the database before anchoring, which keeps these tests
about cases. The agreement API itself is tested in test_agreements_api.py and benchmarked through the API in
scripts/bench_tracing.py.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from app.chainctx import ChainContext, deploy_contracts
from app.db import AgreementRecord, AnalysisResult, Batch, CaseRecord, Party, TemplateRecord
from app.main import create_app
from app.worker import AnchorWorker
from chain.agreements import AgreementRegistryClient, AgreementTerms, TemplateTerms, Tier
from chain.cases import TracingCasesClient
from chain.contracts import contract_at
from chain.tx import TxSender
from tests.app.conftest import ACCOUNTS, Gateway, make_settings

MNEMONIC = "test test test test test test test test test test test junk"
DAY = 86_400
LAB_FEE = 3_000
POOL = 30_000
DEPOSIT = 100_000  # base 1,000,000 x 10 %
PENALTY_MAJOR = 20_000
SUPPLIER_RESPONSE = 5 * DAY
LAB_VERDICT = 10 * DAY
DISPUTE_WINDOW = 7 * DAY
QUARTER = 7_862_400
AGREEMENT_ID = "0x" + keccak(text="qcn/agreement/tracing-test").hex()
TEMPLATE_ID = keccak(text="qcn/template/tracing-test")

# anvil dev accounts (mnemonic above): 2..6 as in conftest.ACCOUNTS, 7 a second lab
_INDEX = {"oem": 2, "supplier": 3, "lab": 4, "supplier2": 5, "oem2": 6, "lab2": 7}
Account.enable_unaudited_hdwallet_features()
KEYS: dict[str, bytes] = {
    who: bytes(Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key) for who, i in _INDEX.items()
}
ADDRESSES = {who: str(Account.from_key(k).address) for who, k in KEYS.items()}
assert all(ADDRESSES[w] == a for w, a in ACCOUNTS.items())


def template_terms(**changes: Any) -> TemplateTerms:
    """The template of the tests: penalties 50k / 20k / 5k, deadlines 5 / 10 / 7 days."""
    base: dict[str, Any] = {
        "template_id": TEMPLATE_ID,
        "version": 1,
        "document_hash": keccak(text="tracing test template document"),
        "deposit_base": 1_000_000,
        "initial_ratio_bps": 1_000,
        "min_ratio_bps": 500,
        "max_ratio_bps": 3_000,
        "max_step_bps": 500,
        "tiers": (Tier(0, 3_000), Tier(50, 2_000), Tier(70, 1_500), Tier(85, 1_000), Tier(95, 500)),
        "penalty_critical": 50_000,
        "penalty_major": PENALTY_MAJOR,
        "penalty_minor": 5_000,
        "penalty_per_ppm": 10,
        "ppm_target": 100,
        "supplier_response_seconds": SUPPLIER_RESPONSE,
        "lab_verdict_seconds": LAB_VERDICT,
        "dispute_window_seconds": DISPUTE_WINDOW,
        "top_up_grace_seconds": 14 * DAY,
        "lab_fee_cap": 2 * LAB_FEE,
    }
    base.update(changes)
    return TemplateTerms(**base)


@dataclass
class Tracing:
    """A gateway with parties, an active agreement and helpers for the case tests."""

    gw: Gateway
    chain: ChainContext
    party_ids: dict[str, int] = field(default_factory=dict)

    @property
    def client(self) -> TestClient:
        """The API client."""
        return self.gw.client

    def auth(self, who: str) -> dict[str, str]:
        """Authorization header of ``who`` (``admin`` = the bootstrap token)."""
        return self.gw.auth(who)

    def sender(self, who: str) -> TxSender:
        """A sender with the party's own key (what its wallet would do)."""
        return TxSender(self.chain.w3, KEYS[who], poll_interval=0.005)

    def cases_as(self, who: str) -> TracingCasesClient:
        """The tracing contract sending as ``who``."""
        return self.chain.cases.with_sender(self.sender(who))

    def agreements_as(self, who: str) -> AgreementRegistryClient:
        """The agreement registry sending as ``who``."""
        return self.chain.agreements.with_sender(self.sender(who))

    def token(self) -> Any:
        """The settlement token contract."""
        return contract_at(self.chain.w3, "TestToken", self.chain.token_address)

    def token_balance(self, who: str) -> int:
        """Token balance of a party's account."""
        return int(self.token().functions.balanceOf(ADDRESSES[who]).call())

    def chain_time(self) -> int:
        """Timestamp of the latest block."""
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def travel(self, seconds: int) -> None:
        """Move the node's clock forward and mine a block (the contracts read block time)."""
        self.chain.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def run(self, passes: int = 1) -> None:
        """Run worker passes (anchoring, analysis, cases, indexer, scheduler, webhooks)."""
        for _ in range(passes):
            self.gw.worker.run_once()

    def relayed(self, resp: Any, who: str, passes: int = 200) -> dict[str, Any]:
        """A relay endpoint's 202 followed to the end (running the worker between looks): the final status of
        its last transaction, which must be mined."""
        assert resp.status_code == 202, resp.text
        url = resp.json()["status_url"]
        status: dict[str, Any] = resp.json()["transactions"][-1]
        for _ in range(passes):
            status = self.client.get(url, headers=self.auth(who)).json()
            if status["status"] != "pending":
                break
            self.run()
        assert status["status"] == "mined", status
        return status

    def sessions(self) -> Any:
        """The gateway's session factory."""
        return self.client.app.state.session_factory  # type: ignore[attr-defined]

    def anomalous_batch(self, lot: str, *, who: str = "supplier", agreement_id: str = AGREEMENT_ID) -> str:
        """Upload a batch under the agreement, anchor it, store an anomalous analysis; returns the batch uuid.

        The analysis document stands in for an anomaly verdict (the full analysis pipeline runs in the
        end-to-end story); it is stored exactly as the analysis stores one: canonical JSON and its SHA-256.
        """
        csv = f"sample_id,characteristic,value,unit,uncertainty\n{lot}-1,thickness,12.31,um,0.05\n"
        resp = self.gw.upload(who, csv, name=f"{lot}.csv", key=lot)
        assert resp.status_code == 201, resp.text
        batch_pk = str(resp.json()["id"])
        with self.sessions()() as s, s.begin():
            s.execute(update(Batch).where(Batch.id == batch_pk).values(agreement_id=agreement_id))
        self.run()  # anchored (and the regular analysis runs)
        with self.sessions()() as s, s.begin():
            batch = s.get(Batch, batch_pk)
            assert batch is not None and batch.status == "anchored", batch and batch.status
            doc = {
                "batch": batch.batch_id,
                "verdict": {"anomalous": True, "reasons": [{"kind": "spec_failure", "characteristic": "thickness"}]},
                "root_cause": {"status": "done", "primary": {"variable": "roll_pressure"}},
            }
            text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
            seq = (s.scalar(select(func.max(AnalysisResult.seq)).where(AnalysisResult.batch_pk == batch_pk)) or 0) + 1
            s.add(
                AnalysisResult(
                    batch_pk=batch_pk,
                    seq=seq,
                    profile=None,
                    anomalous=True,
                    complete=True,
                    root_cause_status="done",
                    top_cause="roll_pressure",
                    document=text,
                    sha256=hashlib.sha256(text.encode()).hexdigest(),
                    input_sha256="00" * 32,
                )
            )
        return batch_pk

    def case_of(self, batch_pk: str) -> CaseRecord:
        """The case row of a batch."""
        with self.sessions()() as s:
            case = s.scalars(select(CaseRecord).where(CaseRecord.batch_pk == batch_pk)).first()
            assert case is not None, f"no case for batch {batch_pk}"
            return case

    def open_case(self, lot: str) -> str:
        """An anomalous batch whose case is open on chain and indexed; returns the case id."""
        batch_pk = self.anomalous_batch(lot)
        self.run()
        case = self.case_of(batch_pk)
        assert case.state == "opened", (case.state, case.last_error)
        assert case.case_id is not None
        return case.case_id

    def get(self, case_id: str, who: str) -> dict[str, Any]:
        """GET the case as ``who`` (asserts 200)."""
        resp = self.client.get(f"/v1/cases/{case_id}", headers=self.auth(who))
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def sign_tx(self, who: str, prepared: dict[str, Any]) -> str:
        """Sign a prepared transaction with the party's key (eth-account, as a wallet would)."""
        tx = {k: v for k, v in prepared["tx"].items() if k != "from"}
        return str(Account.sign_transaction(tx, KEYS[who]).raw_transaction.to_0x_hex())

    def respond(self, case_id: str, evidence: bytes = b"8D report: roll pressure sensor drift") -> dict[str, Any]:
        """Supplier: upload evidence, sign the prepared respond, relay it."""
        prep = self.client.post(
            f"/v1/cases/{case_id}/response/prepare",
            files=[("files", ("8d.txt", evidence, "text/plain"))],
            headers=self.auth("supplier"),
        )
        assert prep.status_code == 200, prep.text
        raw = self.sign_tx("supplier", prep.json()["transactions"][0])
        resp = self.client.post(f"/v1/cases/{case_id}/response", json={"raw": raw}, headers=self.auth("supplier"))
        out: dict[str, Any] = self.relayed(resp, "supplier") | {"evidence_hash": prep.json()["evidence_hash"]}
        self.run()  # the indexer folds the response into the case
        return out

    def verdict(self, case_id: str, who: str = "lab", **params: Any) -> Any:
        """Lab: fetch the typed verdict, sign it with plain eth-account, submit it; returns the response."""
        typed = self.client.get(f"/v1/cases/{case_id}/verdict-typed-data", params=params, headers=self.auth(who))
        assert typed.status_code == 200, typed.text
        data = typed.json()["typed_data"]
        sig = Account.sign_typed_data(KEYS[who], full_message=data).signature.to_0x_hex()
        return self.client.post(
            f"/v1/cases/{case_id}/verdict",
            json={"message": data["message"], "signature": sig},
            headers=self.auth(who),
        )

    def answer(self, case_id: str, who: str, *, accept: bool = True) -> Any:
        """OEM / supplier: sign the typed acceptance (or dispute) and submit it; returns the response."""
        typed = self.client.get(
            f"/v1/cases/{case_id}/acceptance-typed-data",
            params={"accept": str(accept).lower()},
            headers=self.auth(who),
        )
        assert typed.status_code == 200, typed.text
        data = typed.json()["typed_data"]
        sig = Account.sign_typed_data(KEYS[who], full_message=data).signature.to_0x_hex()
        return self.client.post(
            f"/v1/cases/{case_id}/acceptance",
            json={"message": data["message"], "signature": sig},
            headers=self.auth(who),
        )


def _register(gw: Gateway, who: str, kind: str, **extra: Any) -> tuple[int, str]:
    body = {"name": f"{who} ltd", "kind": kind, "account": ADDRESSES[who], **extra}
    resp = gw.client.post("/v1/parties", json=body, headers=gw.auth("admin"))
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"]), str(resp.json()["api_key"])


def setup_agreement(tr: Tracing, *, lab: str = "lab", agreement_id: str = AGREEMENT_ID) -> None:
    """Template (OEM), agreement signed by OEM and supplier and activated, deposit posted, DB rows mirrored."""
    chain = tr.chain
    terms = template_terms()
    oem_reg = tr.agreements_as("oem")
    if oem_reg.latest_version(ADDRESSES["oem"], TEMPLATE_ID) == 0:
        oem_reg.publish_template(terms)
    agreement = AgreementTerms(
        agreement_id=bytes.fromhex(agreement_id[2:]),
        template_id=TEMPLATE_ID,
        template_version=1,
        oem=ADDRESSES["oem"],
        supplier=ADDRESSES["supplier"],
        lab=ADDRESSES[lab],
        oem_nonce=chain.agreements.nonces(ADDRESSES["oem"]),
        supplier_nonce=chain.agreements.nonces(ADDRESSES["supplier"]),
        deadline=tr.chain_time() + DAY,
    )
    oem_reg.activate(agreement, oem_reg.sign(agreement, KEYS["oem"]), oem_reg.sign(agreement, KEYS["supplier"]))
    supplier = tr.sender("supplier")
    token = tr.token()
    supplier.send(token.functions.mint(ADDRESSES["supplier"], DEPOSIT))
    supplier.send(token.functions.approve(chain.agreements.address, DEPOSIT))
    tr.agreements_as("supplier").deposit(agreement.agreement_id, DEPOSIT)
    with tr.sessions()() as s, s.begin():
        template = s.scalars(select(TemplateRecord).where(TemplateRecord.template_id == "tracing-test")).first()
        if template is None:
            template = TemplateRecord(
                template_id="tracing-test",
                version=1,
                oem_id=tr.party_ids["oem"],
                chain_template_id="0x" + TEMPLATE_ID.hex(),
                document=json.dumps({"template_id": "tracing-test"}),
                document_hash="0x" + terms.document_hash.hex(),
                status="published",
            )
            s.add(template)
            s.flush()
        s.add(
            AgreementRecord(
                agreement_id=agreement_id,
                template_pk=template.id,
                oem_id=tr.party_ids["oem"],
                supplier_id=tr.party_ids["supplier"],
                lab_id=tr.party_ids[lab],
                terms=json.dumps(
                    {k: ("0x" + v.hex() if isinstance(v, bytes) else v) for k, v in agreement.message().items()}
                ),
                status="active",
            )
        )


def make_tracing(
    tmp_path: Path, db_url: str, anvil: Any, *, lab_valid_days: int = 400, **settings_extra: Any
) -> Iterator[Tracing]:
    """Build the set-up (see the module docstring) and yield it; closes the app afterwards."""
    settings = make_settings(
        tmp_path,
        db_url,
        anvil.url,
        parse_isolated=False,
        cases_lab_fee=LAB_FEE,
        cases_retry_base_s=0.0,
        webhook_retry_base_s=0.0,
        webhook_allow="127.0.0.1/32",  # the test receivers listen on loopback
        **settings_extra,
    )
    deploy_contracts(settings)
    app = create_app(settings, embedded_worker=False)
    with TestClient(app) as client:
        chain = app.state.chain_holder.get()
        gw = Gateway(
            client=client,
            settings=settings,
            worker=AnchorWorker(settings=settings, session_factory=app.state.session_factory, chain=chain),
            keys={},
            admin_token=settings.api_admin_token.get_secret_value(),
        )
        tr = Tracing(gw=gw, chain=chain)
        now = datetime.fromtimestamp(tr.chain_time(), UTC)
        for who, kind in [("oem", "oem"), ("supplier", "supplier"), ("supplier2", "supplier"), ("oem2", "oem")]:
            tr.party_ids[who], gw.keys[who] = _register(gw, who, kind)
        for who, days in (("lab", lab_valid_days), ("lab2", 400)):
            tr.party_ids[who], gw.keys[who] = _register(
                gw,
                who,
                "lab",
                accreditation_id=f"D-PL-{_INDEX[who]:05d}-01-00",
                accreditation_expires=(now + timedelta(days=days)).isoformat(),
            )
        oem = tr.sender("oem")
        token = tr.token()
        oem.send(token.functions.mint(ADDRESSES["oem"], POOL))
        oem.send(token.functions.approve(chain.cases.address, POOL))
        tr.cases_as("oem").fund_lab_fees(ADDRESSES["oem"], POOL)
        setup_agreement(tr)
        yield tr


def party_row(tr: Tracing, who: str) -> Party:
    """The party row of ``who``."""
    with tr.sessions()() as s:
        party = s.get(Party, tr.party_ids[who])
        assert party is not None
        return party


# ------------------------------------------------------------------------------------- webhook receiver
@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 in a thread; answers ``fail_first`` requests with 500, then 200."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[Received] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                outer.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                failing = len(outer.received) <= outer.fail_first
                self.send_response(500 if failing else 200)
                self.end_headers()
                self.wfile.write(b"no" if failing else b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The endpoint URL."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
