"""Templates and agreements through the gateway on a real node: the OEM publishes a template, both parties sign
the agreement with their own keys (EIP-712), the supplier deposits, batches are validated against the template
and counted on chain, the quarter is evaluated and the deposit ratio moves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from app.partyclient import ApiError, PartyClient
from app.quality import library_template
from chain.contracts import contract_at
from tests.app.conftest import ACCOUNTS, Gateway

pytestmark = pytest.mark.node

Account.enable_unaudited_hdwallet_features()
_MNEMONIC = "test test test test test test test test test test test junk"  # anvil's public dev mnemonic
KEYS = {who: Account.from_mnemonic(_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key
        for i, who in enumerate(["oem", "supplier", "lab", "supplier2", "oem2"], start=2)}  # fmt: skip
SAMPLE = (Path(__file__).resolve().parents[2] / "scripts" / "sample_data" / "coating_lot_A.csv").read_text()
QUARTER = 7_862_400


def _client(gw: Gateway, who: str) -> PartyClient:
    return PartyClient(gw.client, gw.keys[who], KEYS[who], poll=gw.worker.run_once)


def _lab(gw: Gateway) -> int:
    resp = gw.client.post("/v1/parties", headers=gw.auth("admin"), json={
        "name": "Rheinland Test Lab", "kind": "lab", "account": ACCOUNTS["lab"], "accreditation_id": "D-PL-1",
        "accreditation_expires": "2035-01-01T00:00:00Z"})  # fmt: skip
    assert resp.status_code == 201, resp.text
    gw.keys["lab"] = resp.json()["api_key"]
    return int(resp.json()["id"])


def _party_id(gw: Gateway, who: str) -> int:
    return int(_client(gw, who).get("/v1/parties/me")["id"])


def _publish(gw: Gateway, document: dict[str, Any]) -> dict[str, Any]:
    oem = _client(gw, "oem")
    draft = oem.post("/v1/templates", json={"document": document})
    assert draft["template"]["status"] == "draft"
    return dict(oem.post(f"/v1/templates/{draft['template']['id']}/publish",
                         json={"raw": oem.sign_transactions(draft["transactions"])}))  # fmt: skip


def _activate(gw: Gateway, template_pk: int, lab_id: int) -> dict[str, Any]:
    oem, supplier = _client(gw, "oem"), _client(gw, "supplier")
    proposed = oem.post("/v1/agreements", json={"template": template_pk, "supplier_id": _party_id(gw, "supplier"),
                                                "lab_id": lab_id})  # fmt: skip
    assert proposed["status"] == "proposed" and proposed["typed_data"]["primaryType"] == "Agreement"
    ref = proposed["agreement_id"]
    supplier.post(
        f"/v1/agreements/{ref}/signatures", json={"signature": supplier.sign_typed_data(proposed["typed_data"])}
    )
    done = oem.post(f"/v1/agreements/{ref}/signatures", json={"signature": oem.sign_typed_data(proposed["typed_data"])})
    return dict(done)


def _mint(gw: Gateway, who: str, amount: int) -> None:
    chain = gw.client.app.state.chain_holder.get()  # type: ignore[attr-defined]
    token = contract_at(chain.w3, "TestToken", chain.token_address)
    chain.relayer.send(token.functions.mint(ACCOUNTS[who], amount))  # open-mint dev token: any key


def _inspect(gw: Gateway, ref: str, batches: dict[str, bool]) -> None:
    """The OEM records its incoming inspection of each anchored batch through the gateway: the gateway prepares
    ``recordInspection``, the OEM signs it with its own key, the gateway relays it. These results are the
    quarter's batch counts (the supplier's anchors count nothing, docs/trust-model.md)."""
    oem = _client(gw, "oem")
    for batch_id, accepted in batches.items():
        body = {"batch": batch_id, "accepted": accepted}
        prepared = oem.post(f"/v1/agreements/{ref}/inspections/prepare", json=body)
        assert [p["description"] for p in prepared] == [f"recordInspection ({'accepted' if accepted else 'rejected'})"]
        relayed = oem.sign_and_relay(prepared, f"/v1/agreements/{ref}/transactions")
        assert [(r["function"], r["status"]) for r in relayed] == [("recordInspection", "mined")]


def _inspection_refusals(gw: Gateway, ref: str, inspected: str) -> None:
    """Only the agreement's OEM records inspections, once per batch, of batches of this agreement."""
    path = f"/v1/agreements/{ref}/inspections/prepare"
    for who, status in (("supplier", 403), ("supplier2", 404)):
        with pytest.raises(ApiError) as refused:
            _client(gw, who).post(path, json={"batch": inspected, "accepted": False})
        assert refused.value.status == status, who
    oem = _client(gw, "oem")
    with pytest.raises(ApiError) as unknown:
        oem.post(path, json={"batch": "0x" + "ab" * 32, "accepted": True})
    assert unknown.value.status == 404
    with pytest.raises(ApiError) as loose:
        oem.post(path, json={"batch": inspected, "accepted": "yes"})
    assert loose.value.status == 422 and "accepted" in json.dumps(loose.value.error)
    # a second result for the same batch is refused by the contract before anything is broadcast
    again = oem.post(path, json={"batch": inspected, "accepted": False})
    with pytest.raises(ApiError) as twice:
        oem.sign_and_relay(again, f"/v1/agreements/{ref}/transactions")
    assert twice.value.status == 409 and twice.value.error["revert"] == "AlreadyInspected"
    assert len(oem.get(f"/v1/agreements/{ref}/inspections")) == 2


def _time_travel(gw: Gateway, seconds: int) -> None:
    w3 = gw.client.app.state.chain_holder.get().w3  # type: ignore[attr-defined]
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


def test_template_agreement_deposit_validated_uploads_and_quarterly_ratio(gateway: Gateway) -> None:
    lab_id = _lab(gateway)
    template = library_template("battery_electrode_coating")
    published = _publish(gateway, template.document())
    assert published["status"] == "published" and published["chain_tx"]
    assert published["document_hash"] == "0x" + template.canonical_hash().hex()

    agreement = _activate(gateway, published["id"], lab_id)
    assert agreement["status"] == "active" and agreement["signed_by_oem"] and agreement["signed_by_supplier"]
    ref = agreement["agreement_id"]
    status = agreement["on_chain"]
    assert status["state"] == "active" and status["ratio_bps"] == template.deposit.initial_ratio_bps
    required = int(status["required"])
    assert required == template.deposit.base_amount * template.deposit.initial_ratio_bps // 10_000

    supplier = _client(gateway, "supplier")
    _mint(gateway, "supplier", required * 2)
    prepared = supplier.post(f"/v1/agreements/{ref}/deposits/prepare", json={"amount": required})
    assert [p["description"] for p in prepared][1] == "deposit"
    relayed = supplier.sign_and_relay(prepared, f"/v1/agreements/{ref}/transactions")
    assert [r["function"] for r in relayed] == ["approve", "deposit"]
    deposits = supplier.get(f"/v1/agreements/{ref}/deposits")
    assert int(deposits["status"]["deposited"]) == required and deposits["status"]["shortfall"] == "0"
    # activation started a top-up deadline; the deposit funds the agreement and clears it (FundingUpdated)
    assert [h["event"] for h in deposits["history"]] == ["Deposited", "FundingUpdated"]

    # one accepted and one rejected batch (an areal mass above the 22.2 mg/cm2 critical limit)
    good = gateway.client.post("/v1/batches", headers=gateway.auth("supplier"),
                               files=[("files", ("lot-a.csv", SAMPLE.encode(), "text/csv"))],
                               data={"agreement_id": ref, "lot_size": "2000"})  # fmt: skip
    assert good.status_code == 201, good.text
    assert good.json()["verdict"] == "accept" and good.json()["assessment"]["lot_size"] == 2000
    bad_csv = SAMPLE.replace("S001,areal_mass,21.577", "S001,areal_mass,22.900")
    bad = gateway.client.post("/v1/batches", headers=gateway.auth("supplier"),
                              files=[("files", ("lot-b.csv", bad_csv.encode(), "text/csv"))],
                              data={"agreement_id": ref, "lot_size": "2000"})  # fmt: skip
    assert bad.json()["verdict"] == "reject"
    assert any(f["code"] == "aql_reject" for f in bad.json()["assessment"]["findings"])
    gateway.anchor_all()
    assert supplier.get(f"/v1/agreements/{ref}")["on_chain"]["counters"]["batches"] == 0  # anchors count nothing
    _inspect(gateway, ref, {good.json()["batch_id"]: True, bad.json()["batch_id"]: False})
    counters = supplier.get(f"/v1/agreements/{ref}")["on_chain"]["counters"]
    assert counters["batches"] == 2 and counters["rejected"] == 1
    oem_account = _client(gateway, "oem").get("/v1/parties/me")["account"]
    recorded = supplier.get(f"/v1/agreements/{ref}/inspections")
    assert [(r["batchId"], r["accepted"], r["quarter"], r["by"]) for r in recorded] == [
        (good.json()["batch_id"], True, 0, oem_account),
        (bad.json()["batch_id"], False, 0, oem_account),
    ]
    _inspection_refusals(gateway, ref, good.json()["batch_id"])

    # the quarter ends; evaluation is deterministic from the counters: 50 % rejected -> score 75
    _time_travel(gateway, QUARTER + 60)
    evaluated = supplier.post(f"/v1/agreements/{ref}/evaluations/0")
    assert evaluated["function"] == "evaluate"
    history = supplier.get(f"/v1/agreements/{ref}/evaluations")
    assert len(history) == 1 and history[0]["quarter"] == 0 and history[0]["score"] == 75
    new_ratio = supplier.get(f"/v1/agreements/{ref}")["on_chain"]["ratio_bps"]
    assert new_ratio == history[0]["newRatioBps"]
    step = template.deposit.max_step_bps
    assert abs(new_ratio - template.deposit.initial_ratio_bps) <= step
    with pytest.raises(ApiError) as again:
        supplier.post(f"/v1/agreements/{ref}/evaluations/0")
    assert again.value.status == 409 and again.value.error["revert"] == "AlreadyEvaluated"


def test_bad_template_names_the_field_and_agreement_rules_hold(gateway: Gateway) -> None:
    lab_id = _lab(gateway)
    doc = library_template("battery_electrode_coating").document()
    broken = json.loads(json.dumps(doc))
    broken["characteristics"][0]["lsl"] = 99.0  # above its usl
    with pytest.raises(ApiError) as exc:
        _client(gateway, "oem").post("/v1/templates", json={"document": broken})
    assert exc.value.status == 422 and "characteristics[0]" in exc.value.error["message"]
    with pytest.raises(ApiError) as not_oem:
        _client(gateway, "supplier").post("/v1/templates", json={"document": doc})
    assert not_oem.value.status == 403

    published = _publish(gateway, doc)
    with pytest.raises(ApiError) as immutable:
        _client(gateway, "oem").post("/v1/templates", json={"document": doc})
    assert immutable.value.status == 409 and "new version" in immutable.value.error["message"]

    oem, supplier = _client(gateway, "oem"), _client(gateway, "supplier")
    body = {"template": published["id"], "supplier_id": _party_id(gateway, "supplier"), "lab_id": lab_id}
    proposed = oem.post("/v1/agreements", json=body)
    ref = proposed["agreement_id"]
    # the supplier signing with someone else's key is refused, naming both keys
    forged = PartyClient(gateway.client, gateway.keys["supplier"], KEYS["oem"], poll=gateway.worker.run_once)
    with pytest.raises(ApiError) as wrong:
        forged.post(
            f"/v1/agreements/{ref}/signatures", json={"signature": forged.sign_typed_data(proposed["typed_data"])}
        )
    assert wrong.value.status == 422 and ACCOUNTS["supplier"] in wrong.value.error["message"]
    # another supplier neither sees nor uploads under it
    with pytest.raises(ApiError) as hidden:
        _client(gateway, "supplier2").get(f"/v1/agreements/{ref}")
    assert hidden.value.status == 404
    upload = [("files", ("lot.csv", SAMPLE.encode(), "text/csv"))]
    other = gateway.client.post(
        "/v1/batches", headers=gateway.auth("supplier2"), files=upload, data={"agreement_id": ref}
    )
    assert other.status_code == 404
    # not active yet (only proposed): uploads under it are refused, nothing stored
    early = gateway.client.post("/v1/batches", headers=gateway.auth("supplier"),
                                files=[("files", ("lot.csv", SAMPLE.encode(), "text/csv"))],
                                data={"agreement_id": ref, "lot_size": "2000"})  # fmt: skip
    assert early.status_code == 409 and "proposed" in early.json()["error"]["message"]
    assert supplier.get("/v1/batches") == []
