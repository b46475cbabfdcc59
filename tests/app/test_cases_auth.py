"""Who may see and do what on a case (every route), and contract refusals surfaced as 409 naming the error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from tests.app.cases_support import KEYS, Tracing, make_tracing

pytestmark = pytest.mark.node

OUTSIDERS = ("supplier2", "oem2", "lab2")


@pytest.fixture
def tr(tmp_path: Path, anvil: Any) -> Iterator[Tracing]:
    yield from make_tracing(tmp_path, f"sqlite:///{tmp_path / 'qcn.db'}", anvil)


def test_only_the_case_parties_see_it(tr: Tracing) -> None:
    case_id = tr.open_case("LOT-A")
    for who in ("oem", "supplier", "lab", "admin"):
        assert tr.client.get(f"/v1/cases/{case_id}", headers=tr.auth(who)).status_code == 200
        listed = tr.client.get("/v1/cases", headers=tr.auth(who)).json()
        assert [c["case_id"] for c in listed] == [case_id]
    for who in OUTSIDERS:
        for path in ("", "/timeline", "/analysis"):
            resp = tr.client.get(f"/v1/cases/{case_id}{path}", headers=tr.auth(who))
            assert resp.status_code == 404, (who, path, resp.text)
        assert tr.client.get("/v1/cases", headers=tr.auth(who)).json() == []
    assert tr.client.get(f"/v1/cases/{case_id}").status_code == 401


def test_every_action_is_refused_to_the_wrong_role(tr: Tracing) -> None:
    case_id = tr.open_case("LOT-B")
    evidence = [("files", ("e.txt", b"evidence", "text/plain"))]
    posts: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        ("/response/prepare", {"files": evidence}, ("supplier",)),
        ("/response", {"json": {"raw": "0x01"}}, ("supplier",)),
        ("/verdict", {"json": {"message": {}, "signature": "0x00"}}, ("lab",)),
        ("/acceptance", {"json": {"message": {}, "signature": "0x00"}}, ("oem", "supplier")),
        ("/claim/prepare", {}, ("oem",)),
        ("/claim", {"json": {"raw": "0x01"}}, ("oem",)),
        ("/lab-fee/prepare", {}, ("lab",)),
        ("/lab-fee", {"json": {"raw": "0x01"}}, ("lab",)),
        (
            "/arbitrate",
            {"json": {"responsible_party": 1, "nc_class": 2, "root_cause": "x", "ruling": "r"}},
            ("admin",),
        ),
    ]
    for path, kwargs, allowed in posts:
        for who in ("oem", "supplier", "lab"):
            if who in allowed:
                continue
            resp = tr.client.post(f"/v1/cases/{case_id}{path}", headers=tr.auth(who), **kwargs)
            assert resp.status_code == 403, (path, who, resp.text)
        for who in OUTSIDERS:
            resp = tr.client.post(f"/v1/cases/{case_id}{path}", headers=tr.auth(who), **kwargs)
            assert resp.status_code in (403, 404), (path, who, resp.text)
    for path, allowed in (("/verdict-typed-data", ("lab",)), ("/acceptance-typed-data", ("oem", "supplier"))):
        for who in ("oem", "supplier", "lab", *OUTSIDERS):
            if who not in allowed:
                assert tr.client.get(f"/v1/cases/{case_id}{path}", headers=tr.auth(who)).status_code in (403, 404)
    # the supplier cannot relay a transaction signed by someone else's key
    prep = tr.client.post(f"/v1/cases/{case_id}/response/prepare", files=evidence, headers=tr.auth("supplier")).json()
    forged = tr.sign_tx("supplier2", prep["transactions"][0])
    resp = tr.client.post(f"/v1/cases/{case_id}/response", json={"raw": forged}, headers=tr.auth("supplier"))
    assert resp.status_code == 403 and "not by your registered account" in resp.json()["error"]["message"]


def test_a_replayed_or_foreign_verdict_signature_is_refused_with_the_contract_error(tr: Tracing) -> None:
    case_id = tr.open_case("LOT-C")
    tr.respond(case_id)
    typed = tr.client.get(f"/v1/cases/{case_id}/verdict-typed-data", headers=tr.auth("lab")).json()["typed_data"]
    # signed by the wrong key (the other lab's): WrongSigner names the recovered signer
    bad = Account.sign_typed_data(KEYS["lab2"], full_message=typed).signature.to_0x_hex()
    resp = tr.client.post(
        f"/v1/cases/{case_id}/verdict", json={"message": typed["message"], "signature": bad}, headers=tr.auth("lab")
    )
    assert resp.status_code == 409 and resp.json()["error"]["revert"] == "WrongSigner", resp.text
    assert resp.json()["error"]["arguments"]["recovered"] == Account.from_key(KEYS["lab2"]).address
    good = Account.sign_typed_data(KEYS["lab"], full_message=typed).signature.to_0x_hex()
    body = {"message": typed["message"], "signature": good}
    assert tr.client.post(f"/v1/cases/{case_id}/verdict", json=body, headers=tr.auth("lab")).status_code == 200
    replay = tr.client.post(f"/v1/cases/{case_id}/verdict", json=body, headers=tr.auth("lab"))
    assert replay.status_code == 409 and replay.json()["error"]["revert"] == "InvalidState", replay.text
    tr.run()
    # an acceptance signed for the supplier but submitted as the OEM does not count for the OEM
    typed_acc = tr.client.get(f"/v1/cases/{case_id}/acceptance-typed-data", headers=tr.auth("supplier")).json()
    sig = Account.sign_typed_data(KEYS["supplier"], full_message=typed_acc["typed_data"]).signature.to_0x_hex()
    resp = tr.client.post(
        f"/v1/cases/{case_id}/acceptance",
        json={"message": typed_acc["typed_data"]["message"], "signature": sig},
        headers=tr.auth("oem"),
    )
    assert resp.status_code == 409 and resp.json()["error"]["revert"] == "WrongSigner"
    ok = tr.client.post(
        f"/v1/cases/{case_id}/acceptance",
        json={"message": typed_acc["typed_data"]["message"], "signature": sig},
        headers=tr.auth("supplier"),
    )
    assert ok.status_code == 200, ok.text
    again = tr.client.post(
        f"/v1/cases/{case_id}/acceptance",
        json={"message": typed_acc["typed_data"]["message"], "signature": sig},
        headers=tr.auth("supplier"),
    )
    assert again.status_code == 409 and again.json()["error"]["revert"] == "AlreadyAccepted"
