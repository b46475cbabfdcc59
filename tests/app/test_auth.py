"""Who may do what: API keys bound to a party and role; suppliers see only their own batches."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db import ApiKey
from tests.app.conftest import ACCOUNTS, CSV_OK, Gateway

pytestmark = pytest.mark.node


def test_requests_without_or_with_a_wrong_key_are_401(gateway: Gateway) -> None:
    assert gateway.client.get("/v1/batches").status_code == 401
    resp = gateway.client.get("/v1/batches", headers={"Authorization": "Bearer qcn_nope_nope"})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthenticated"
    assert gateway.client.get("/v1/batches", headers={"X-API-Key": gateway.keys["oem"]}).status_code == 200


def test_api_keys_are_stored_hashed(gateway: Gateway) -> None:
    factory = gateway.client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as s:
        hashes = [k.key_hash for k in s.scalars(select(ApiKey))]
    assert hashes and all(len(h) == 64 for h in hashes)
    # the secret is everything after "qcn_<prefix>_" (token_urlsafe may itself hold "_": splitting on the last
    # one left a 2-character tail that a hex hash contained by chance, 1 run in ~50)
    secrets = [key.split("_", 2)[2] for key in gateway.keys.values()]
    assert all(len(secret) >= 40 for secret in secrets)
    assert not any(key in hashes for key in gateway.keys.values())
    assert not any(secret in h or secret.lower() in h for secret in secrets for h in hashes)


def test_only_admin_registers_parties(gateway: Gateway) -> None:
    body = {
        "name": "x",
        "kind": "lab",
        "account": ACCOUNTS["oem2"],
        "accreditation_id": "D-1",
        "accreditation_expires": "2030-01-01T00:00:00Z",
    }
    for who in ("oem", "supplier"):
        resp = gateway.client.post("/v1/parties", json=body, headers=gateway.auth(who))
        assert resp.status_code == 403
        assert "admin" in resp.json()["error"]["message"]
    assert gateway.client.post("/v1/parties", json=body, headers=gateway.auth("admin")).status_code == 201


def test_party_registration_errors_name_the_field(gateway: Gateway) -> None:
    admin = gateway.auth("admin")
    bad_addr = gateway.client.post("/v1/parties", json={"name": "x", "kind": "oem", "account": "0x123"}, headers=admin)
    assert bad_addr.status_code == 422 and "account" in bad_addr.json()["error"]["message"]
    lab = gateway.client.post(
        "/v1/parties", json={"name": "x", "kind": "lab", "account": ACCOUNTS["oem2"]}, headers=admin
    )
    assert lab.status_code == 422 and "accreditation" in lab.json()["error"]["message"]
    dup = gateway.client.post(
        "/v1/parties", json={"name": "x", "kind": "oem", "account": ACCOUNTS["oem"]}, headers=admin
    )
    assert dup.status_code == 409


def test_only_suppliers_upload_and_each_sees_only_its_own_batches(gateway: Gateway) -> None:
    assert gateway.upload("oem", CSV_OK).status_code == 403
    mine = gateway.upload("supplier", CSV_OK).json()
    theirs = gateway.upload("supplier2", CSV_OK).json()
    assert mine["supplier_account"] == ACCOUNTS["supplier"] and theirs["supplier_account"] == ACCOUNTS["supplier2"]
    gateway.anchor_all()

    listed = gateway.client.get("/v1/batches", headers=gateway.auth("supplier")).json()
    assert [b["id"] for b in listed] == [mine["id"]]
    for path in (f"/v1/batches/{theirs['id']}", f"/v1/batches/{theirs['batch_id']}",
                 f"/v1/batches/{theirs['id']}/records", f"/v1/batches/{theirs['id']}/records/0/proof"):  # fmt: skip
        resp = gateway.client.get(path, headers=gateway.auth("supplier"))
        assert resp.status_code == 404, path
    assert gateway.client.get(f"/v1/batches/{theirs['id']}", headers=gateway.auth("supplier2")).status_code == 200
    assert len(gateway.client.get("/v1/batches", headers=gateway.auth("admin")).json()) == 2


def test_a_party_sees_only_itself_in_the_party_list(gateway: Gateway) -> None:
    parties = gateway.client.get("/v1/parties", headers=gateway.auth("supplier")).json()
    assert [p["account"] for p in parties] == [ACCOUNTS["supplier"]]
    everyone = gateway.client.get("/v1/parties", headers=gateway.auth("admin")).json()
    assert {p["kind"] for p in everyone} == {"admin", "oem", "supplier"}
