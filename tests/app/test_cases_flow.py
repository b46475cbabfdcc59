"""Tracing cases in the gateway on a real anvil node (SQLite and PostgreSQL): an anomalous analysis opens a case on
chain exactly once, the supplier responds with evidence, the lab signs with plain eth-account, both parties
accept by signature, the scheduler settles; balances, counters, timeline and webhooks are checked."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from sqlalchemy import func, select, update

from app.db import AnalysisResult, CaseRecord, ChainEventRecord
from app.services import cases, webhooks
from tests.app.cases_support import (
    ADDRESSES,
    AGREEMENT_ID,
    DEPOSIT,
    DISPUTE_WINDOW,
    LAB_FEE,
    PENALTY_MAJOR,
    SUPPLIER_RESPONSE,
    Receiver,
    Tracing,
    make_tracing,
)

pytestmark = pytest.mark.node


@pytest.fixture
def tr(tmp_path: Path, db_url: str, anvil: Any) -> Iterator[Tracing]:
    yield from make_tracing(tmp_path, db_url, anvil)


def _count(tr: Tracing, model: Any, *where: Any) -> int:
    with tr.sessions()() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_anomaly_opens_one_case_and_the_parties_settle_it(tr: Tracing) -> None:
    aid = bytes.fromhex(AGREEMENT_ID[2:])
    batch_pk = tr.anomalous_batch("LOT-1")
    tr.run()
    case_row = tr.case_of(batch_pk)
    case_id = str(case_row.case_id)
    on_chain = tr.chain.cases.case(bytes.fromhex(case_id[2:]))
    assert on_chain.state == 1 and on_chain.lab == ADDRESSES["lab"] and on_chain.lab_fee == LAB_FEE
    body = tr.get(case_id, "oem")
    assert body["state"] == "opened" and body["lab_id"] == tr.party_ids["lab"]
    assert body["deadline"] == on_chain.deadline == on_chain.opened_at + SUPPLIER_RESPONSE
    # opened exactly once: more passes send nothing, the chain holds one case for the batch
    tr.run(2)
    assert _count(tr, CaseRecord) == 1
    assert _count(tr, ChainEventRecord, ChainEventRecord.name == "CaseOpened") == 1
    # the analysis is the one anchored with the case
    analysis = tr.client.get(f"/v1/cases/{case_id}/analysis", headers=tr.auth("lab")).json()
    assert analysis["matches"] is True and analysis["anchored_as"] == "0x" + analysis["sha256"]

    resp = tr.respond(case_id)
    tr.run()
    assert tr.get(case_id, "supplier")["state"] == "supplier_responded"

    verdict = tr.verdict(case_id, root_cause="roll_pressure", responsible_party=1, nc_class=2)
    assert verdict.status_code == 200, verdict.text
    tr.run()
    got = tr.get(case_id, "lab")
    assert got["state"] == "verdict_submitted" and got["verdict_hash"] == verdict.json()["verdict_hash"]
    assert got["root_cause_code"] == "0x" + keccak(text="roll_pressure").hex()

    for who in ("oem", "supplier"):
        answered = tr.answer(case_id, who)
        assert answered.status_code == 200, answered.text
    tr.run()  # indexer sees Accepted, scheduler settles, indexer sees Settled
    final = tr.get(case_id, "admin")
    assert final["state"] == "settled" and final["penalized"] is True and final["lab_fee_paid"] == str(LAB_FEE)
    balances = tr.chain.agreements.balances(aid)
    assert balances.deposited == DEPOSIT - PENALTY_MAJOR and balances.claimable == PENALTY_MAJOR
    assert tr.chain.cases.lab_fee_claimable(ADDRESSES["lab"]) == LAB_FEE
    quarter = tr.chain.agreements.current_quarter(aid)
    assert tr.chain.agreements.quarter_counters(aid, quarter).nc_major == 1

    timeline = tr.client.get(f"/v1/cases/{case_id}/timeline", headers=tr.auth("supplier")).json()
    names = [s["event"] for s in timeline["steps"]]
    # opening binds the critical penalty of the deposit (same transaction, logged first)
    assert names[:2] == ["DepositBound", "CaseOpened"]
    assert {"SupplierResponded", "VerdictSubmitted", "VerdictAccepted", "NonConformityRecorded"} <= set(names)
    assert "DepositReleased" in names
    settled = next(s for s in timeline["steps"] if s["event"] == "CaseSettled")
    assert settled["block_number"] == timeline["steps"][-1]["block_number"]  # penalty and settlement: one tx
    assert all(s["tx_hash"].startswith("0x") and s["block_number"] > 0 for s in timeline["steps"])
    assert timeline["analysis"]["matches"] is True
    assert timeline["anchoring"]["tx_hash"] and timeline["anchoring"]["event_indexed"] is True
    (evidence,) = timeline["evidence"]
    assert evidence["evidence_hash"] == resp["evidence_hash"] and evidence["matches"] is True
    assert evidence["files"][0]["sha256"] == hashlib.sha256(b"8D report: roll pressure sensor drift").hexdigest()

    # OEM claims its penalty, lab its fee: prepared by the gateway, signed by their own keys
    before = tr.token_balance("oem")
    prep = tr.client.post(f"/v1/cases/{case_id}/claim/prepare", headers=tr.auth("oem")).json()
    assert prep["claimable"] == str(PENALTY_MAJOR)
    claim = tr.client.post(
        f"/v1/cases/{case_id}/claim", json={"raw": tr.sign_tx("oem", prep["transactions"][0])}, headers=tr.auth("oem")
    )
    tr.relayed(claim, "oem")
    assert tr.token_balance("oem") == before + PENALTY_MAJOR
    prep = tr.client.post(f"/v1/cases/{case_id}/lab-fee/prepare", headers=tr.auth("lab")).json()
    fee = tr.client.post(
        f"/v1/cases/{case_id}/lab-fee", json={"raw": tr.sign_tx("lab", prep["transactions"][0])}, headers=tr.auth("lab")
    )
    tr.relayed(fee, "lab")
    assert tr.token_balance("lab") == LAB_FEE


def test_silent_parties_the_scheduler_advances_and_settles_on_chain_time(tr: Tracing) -> None:
    case_id = tr.open_case("LOT-S")
    tr.run()
    assert tr.get(case_id, "oem")["state"] == "opened"  # nothing due yet
    tr.travel(SUPPLIER_RESPONSE + 1)
    tr.run()
    assert tr.get(case_id, "oem")["state"] == "supplier_defaulted"
    aid = bytes.fromhex(AGREEMENT_ID[2:])
    assert tr.chain.agreements.quarter_counters(aid, tr.chain.agreements.current_quarter(aid)).deadline_breaches == 1
    assert tr.verdict(case_id).status_code == 200
    tr.run()
    tr.travel(DISPUTE_WINDOW + 1)  # OEM and supplier stay silent: acceptance by silence
    tr.run()
    final = tr.get(case_id, "oem")
    assert final["state"] == "settled" and final["penalized"] is True
    assert tr.chain.agreements.balances(aid).deposited == DEPOSIT - PENALTY_MAJOR


def test_webhooks_are_signed_retried_and_logged(tr: Tracing) -> None:
    with Receiver(fail_first=1) as receiver:
        created = tr.client.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["case.opened"]}, headers=tr.auth("supplier")
        )
        assert created.status_code == 201, created.text
        sub = created.json()
        secret = sub["secret"]
        case_id = tr.open_case("LOT-W")  # first delivery attempt fails with 500
        log = tr.client.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=tr.auth("supplier")).json()
        assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log] == [("pending", 1, 500)]
        tr.run()  # retried (backoff base 0 in tests) and delivered
        log = tr.client.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=tr.auth("supplier")).json()
        assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log] == [("delivered", 2, 200)]
        assert len(receiver.received) == 2
        last = receiver.received[-1]
        assert last.headers["x-qcn-event"] == "case.opened"
        assert webhooks.verify_signature(
            secret, last.headers["x-qcn-timestamp"], last.body, last.headers["x-qcn-signature"]
        )
        ts, sig = last.headers["x-qcn-timestamp"], last.headers["x-qcn-signature"]
        assert not webhooks.verify_signature("wrong-secret-0123456789", ts, last.body, sig)
        assert not webhooks.verify_signature(secret, ts, last.body + b" ", sig)  # body tampered
        assert not webhooks.verify_signature(secret, str(int(ts) + 1), last.body, sig)  # timestamp is in the MAC
        payload = json.loads(last.body)
        assert payload["type"] == "case.opened" and payload["case"]["case_id"] == case_id
        assert payload["event"]["tx_hash"].startswith("0x")
        # another party cannot read this subscription's log
        assert tr.client.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=tr.auth("oem")).status_code == 404


def _anomalies(tr: Tracing, batch_pk: str, reasons: list[dict[str, Any]]) -> None:
    """Replace the stored analysis of ``batch_pk`` with one whose verdict has ``reasons`` (hash kept in step)."""
    doc = {"verdict": {"anomalous": True, "reasons": reasons}, "root_cause": {"status": "done"}}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    with tr.sessions()() as s, s.begin():
        s.execute(
            update(AnalysisResult)
            .where(AnalysisResult.batch_pk == batch_pk)
            .values(document=text, sha256=hashlib.sha256(text.encode()).hexdigest())
        )


def _out(sample: str) -> dict[str, Any]:
    return {"kind": "spec_failure", "severity": "anomaly", "characteristic": "thickness", "sample_id": sample}


def _rule(rule: int, sample: str) -> dict[str, Any]:
    out = {"kind": "spc_rule", "severity": "anomaly", "characteristic": "thickness", "rule": rule}
    return {**out, "sample_ids": [sample]}


def test_one_value_far_out_opens_no_case_two_samples_do(
    tr: Tracing, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    lots = {
        # one unit out (its spec failure, its rule-1 point, its model warning): contained by acceptance
        "LOT-1V": [_out("S1"), _rule(1, "S1"), {"kind": "model_score", "severity": "warning", "sample_id": "S1"}],
        # the same characteristic out on two samples: the process may have changed, a case opens
        "LOT-2V": [_out("S1"), _out("S4")],
        # a lot-mean rule is about the lot as a whole, even when one sample is also out
        "LOT-MEAN": [_out("S1"), _rule(0, "S1")],
    }
    pks = {}
    monkeypatch.setattr(cases, "_ONE_VALUE", set())  # judgements of earlier tests in this process: forgotten
    caplog.set_level(logging.INFO, logger="qcn.cases")
    for lot, reasons in lots.items():
        pks[lot] = tr.anomalous_batch(lot)  # (its uploads and anchoring run discovery passes)
        _anomalies(tr, pks[lot], reasons)
    two, mean = pks["LOT-2V"], pks["LOT-MEAN"]
    tr.run(4)
    with tr.sessions()() as s:
        cased = set(s.scalars(select(CaseRecord.batch_pk)))
    assert cased == {two, mean}
    assert _count(tr, ChainEventRecord, ChainEventRecord.name == "CaseOpened") == 2
    # the one-value batch is said once, not on every discovery pass
    assert len([r for r in caplog.records if r.getMessage().startswith("no case for batch")]) == 1
