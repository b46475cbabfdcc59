"""Tracing cases end to end on a real anvil node and a real PostgreSQL: the full story with the quarterly evaluation,
a silent supplier, dispute and arbitration, a lab whose accreditation expired, a replayed signature and a
gateway restart in the middle of a case. Each asserts final balances, counters and case state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import CaseRecord, ChainEventRecord
from app.main import create_app
from app.worker import AnchorWorker
from chain.agreements import next_ratio, score_of
from tests.app.cases_support import (
    ADDRESSES,
    AGREEMENT_ID,
    DAY,
    DEPOSIT,
    DISPUTE_WINDOW,
    LAB_FEE,
    PENALTY_MAJOR,
    QUARTER,
    SUPPLIER_RESPONSE,
    Receiver,
    Tracing,
    make_tracing,
    template_terms,
)
from tests.app.conftest import Gateway

pytestmark = [pytest.mark.node, pytest.mark.postgres, pytest.mark.slow]

AID = bytes.fromhex(AGREEMENT_ID[2:])


@pytest.fixture
def tr(tmp_path: Path, pg_url: str, anvil: Any) -> Iterator[Tracing]:
    yield from make_tracing(tmp_path, pg_url, anvil, scheduler_evaluate_interval_s=0)


def _quarter(tr: Tracing) -> int:
    return tr.chain.agreements.current_quarter(AID)


def test_full_story_settles_and_the_quarter_is_evaluated(tr: Tracing) -> None:
    with Receiver() as receiver:
        sub = tr.client.post("/v1/webhooks", json={"url": receiver.url}, headers=tr.auth("oem")).json()
        quarter = _quarter(tr)
        case_id = tr.open_case("LOT-E2E")
        tr.respond(case_id)
        assert tr.verdict(case_id, root_cause="roll_pressure").status_code == 200
        tr.run()
        assert tr.answer(case_id, "oem").status_code == 200
        assert tr.answer(case_id, "supplier").status_code == 200
        tr.run()
        assert tr.get(case_id, "oem")["state"] == "settled"
        balances = tr.chain.agreements.balances(AID)
        assert (balances.deposited, balances.claimable) == (DEPOSIT - PENALTY_MAJOR, PENALTY_MAJOR)
        assert tr.chain.cases.lab_fee_claimable(ADDRESSES["lab"]) == LAB_FEE
        counters = tr.chain.agreements.quarter_counters(AID, quarter)
        # the anchor itself counts nothing: batch counts come from the OEM's inspections (none here)
        assert counters.nc_major == 1 and counters.batches == 0
        # the quarter ends: the scheduler evaluates it by itself, the deposit ratio follows the score
        ratio_before = tr.chain.agreements.agreement(AID).ratio_bps
        tr.travel(QUARTER + DAY)
        tr.run()
        after = tr.chain.agreements.agreement(AID)
        assert after.next_quarter == quarter + 1
        assert after.ratio_bps == next_ratio(template_terms(), ratio_before, score_of(counters))
        tr.run()
        with tr.sessions()() as s:
            assert s.scalar(select(func.count()).where(ChainEventRecord.name == "Evaluated")) == 1
        log = tr.client.get(f"/v1/webhooks/{sub['id']}/deliveries", headers=tr.auth("oem")).json()
        types = [d["event_type"] for d in reversed(log)]
        assert types[0] == "case.opened" and "case.settled" in types and types[-1] == "agreement.evaluated"
        assert all(d["status"] == "delivered" for d in log)
        assert len(receiver.received) == len(log)


def test_silent_supplier_then_silent_parties_settle(tr: Tracing) -> None:
    case_id = tr.open_case("LOT-SILENT")
    tr.travel(SUPPLIER_RESPONSE + 60)
    tr.run()
    assert tr.get(case_id, "lab")["state"] == "supplier_defaulted"
    assert tr.verdict(case_id).status_code == 200
    tr.travel(DISPUTE_WINDOW + 60)
    tr.run()
    assert tr.get(case_id, "oem")["state"] == "settled"
    counters = tr.chain.agreements.quarter_counters(AID, _quarter(tr))
    assert (counters.deadline_breaches, counters.nc_major) == (1, 1)
    assert tr.chain.agreements.balances(AID).deposited == DEPOSIT - PENALTY_MAJOR


def test_dispute_then_arbitration_rules_no_supplier_fault(tr: Tracing) -> None:
    case_id = tr.open_case("LOT-DISPUTE")
    tr.respond(case_id)
    assert tr.verdict(case_id).status_code == 200
    tr.run()
    disputed = tr.answer(case_id, "supplier", accept=False)
    assert disputed.status_code == 200, disputed.text
    tr.run()
    assert tr.get(case_id, "oem")["state"] == "disputed"
    ruling = {"responsible_party": 3, "nc_class": 0, "root_cause": "supplier of the roll", "ruling": "not the supplier"}
    assert tr.client.post(f"/v1/cases/{case_id}/arbitrate", json=ruling, headers=tr.auth("oem")).status_code == 403
    resp = tr.client.post(f"/v1/cases/{case_id}/arbitrate", json=ruling, headers=tr.auth("admin"))
    assert resp.status_code == 200, resp.text
    tr.run()
    final = tr.get(case_id, "supplier")
    assert final["state"] == "settled" and final["penalized"] is False and final["responsible_party"] == 3
    assert tr.chain.agreements.balances(AID).deposited == DEPOSIT  # nothing moved
    assert tr.chain.agreements.quarter_counters(AID, _quarter(tr)).nc_major == 0


def test_expired_accreditation_refuses_the_verdict_with_409(tmp_path: Path, pg_url: str, anvil: Any) -> None:
    gen = make_tracing(tmp_path, pg_url, anvil, lab_valid_days=3)
    tr = next(gen)
    try:
        case_id = tr.open_case("LOT-EXPIRED")
        tr.respond(case_id)
        tr.travel(4 * DAY)  # lab deadline is 10 days away, the accreditation ended after 3
        resp = tr.verdict(case_id)
        assert resp.status_code == 409, resp.text
        error = resp.json()["error"]
        assert error["revert"] == "LabAccreditationExpired" and "LabAccreditationExpired" in error["message"]
        assert error["arguments"]["lab"] == ADDRESSES["lab"]
        tr.run()
        assert tr.get(case_id, "lab")["state"] == "supplier_responded"
    finally:
        gen.close()


def test_replayed_signature_changes_nothing(tr: Tracing) -> None:
    case_id = tr.open_case("LOT-REPLAY")
    tr.respond(case_id)
    typed = tr.client.get(f"/v1/cases/{case_id}/verdict-typed-data", headers=tr.auth("lab")).json()["typed_data"]
    from eth_account import Account

    from tests.app.cases_support import KEYS

    sig = Account.sign_typed_data(KEYS["lab"], full_message=typed).signature.to_0x_hex()
    body = {"message": typed["message"], "signature": sig}
    assert tr.client.post(f"/v1/cases/{case_id}/verdict", json=body, headers=tr.auth("lab")).status_code == 200
    replay = tr.client.post(f"/v1/cases/{case_id}/verdict", json=body, headers=tr.auth("lab"))
    assert replay.status_code == 409 and replay.json()["error"]["revert"] == "InvalidState"
    tr.run()
    with tr.sessions()() as s:
        assert s.scalar(select(func.count()).where(ChainEventRecord.name == "VerdictSubmitted")) == 1


def test_gateway_restart_mid_case_resumes_without_duplicates(tr: Tracing) -> None:
    case_id = tr.open_case("LOT-RESTART")
    tr.respond(case_id)
    tr.run()
    settings = tr.gw.settings
    tr.gw.worker.release_lease()
    # a new gateway process on the same database and chain: the indexer resumes from its cursors
    app = create_app(settings, embedded_worker=False)
    with TestClient(app) as client:
        chain = app.state.chain_holder.get()
        worker = AnchorWorker(settings=settings, session_factory=app.state.session_factory, chain=chain)
        tr2 = Tracing(
            gw=Gateway(client=client, settings=settings, worker=worker, keys=tr.gw.keys, admin_token=tr.gw.admin_token),
            chain=chain,
            party_ids=tr.party_ids,
        )
        tr2.run()
        assert tr2.get(case_id, "lab")["state"] == "supplier_responded"
        assert tr2.verdict(case_id).status_code == 200
        tr2.travel(DISPUTE_WINDOW + 60)
        tr2.run()
        assert tr2.get(case_id, "oem")["state"] == "settled"
        with tr2.sessions()() as s:
            names = s.scalars(select(ChainEventRecord.name).where(ChainEventRecord.case_id == case_id)).all()
            assert s.scalar(select(func.count()).select_from(CaseRecord)) == 1
        on_chain = chain.cases.contract.events.CaseSettled().get_logs(from_block=0)
        assert len(on_chain) == 1
        registry_events = {"NonConformityRecorded", "DepositBound", "DepositReleased", "FundingUpdated"}
        assert sorted(n for n in names if n not in registry_events) == sorted(
            ["CaseOpened", "SupplierResponded", "VerdictSubmitted", "CaseSettled"]
        )
        assert tr2.chain.agreements.balances(AID).deposited == DEPOSIT - PENALTY_MAJOR
