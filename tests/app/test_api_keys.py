"""API keys: listed, issued with an expiry, revoked (honoured at once); lockout after repeated wrong keys,
shared by gateway processes on one database; the ``qcn key`` commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

import app.cli_keys as cli_keys
from app.cli import cli
from app.db import ApiKey
from app.main import create_app
from app.partyclient import PartyClient
from tests.app.conftest import Gateway

pytestmark = pytest.mark.node


def _me(gw: Gateway, who: str) -> int:
    return int(gw.client.get("/v1/parties/me", headers=gw.auth(who)).json()["id"])


def test_a_party_lists_issues_and_revokes_its_own_keys(gateway: Gateway) -> None:
    c, pid = gateway.client, _me(gateway, "supplier")
    listed = c.get(f"/v1/parties/{pid}/keys", headers=gateway.auth("supplier"))
    assert listed.status_code == 200
    assert [(k["label"], k["revoked_at"], k["expires_at"]) for k in listed.json()] == [("initial", None, None)]
    assert "api_key" not in listed.json()[0] and "key_hash" not in listed.json()[0]

    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    made = c.post(
        f"/v1/parties/{pid}/keys",
        json={"label": "ERP job", "expires_at": expires.isoformat()},
        headers=gateway.auth("supplier"),
    )
    assert made.status_code == 201, made.text
    new_key, new_id = made.json()["api_key"], made.json()["id"]
    assert datetime.fromisoformat(made.json()["expires_at"].replace("Z", "+00:00")) == expires
    assert c.get("/v1/batches", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200

    # another party's keys do not exist for the caller; the admin manages everyone's
    assert c.get(f"/v1/parties/{pid}/keys", headers=gateway.auth("supplier2")).status_code == 404
    assert c.delete(f"/v1/parties/{pid}/keys/{new_id}", headers=gateway.auth("oem")).status_code == 404
    assert len(c.get(f"/v1/parties/{pid}/keys", headers=gateway.auth("admin")).json()) == 2

    revoked = c.delete(f"/v1/parties/{pid}/keys/{new_id}", headers=gateway.auth("supplier"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = c.get("/v1/batches", headers={"Authorization": f"Bearer {new_key}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]["message"]
    assert c.get("/v1/batches", headers=gateway.auth("supplier")).status_code == 200  # the other key still works


def test_an_expired_key_is_refused(gateway: Gateway) -> None:
    pid = _me(gateway, "oem")
    made = gateway.client.post(
        f"/v1/parties/{pid}/keys",
        json={"expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        headers=gateway.auth("oem"),
    )
    key = made.json()["api_key"]
    assert gateway.client.get("/v1/parties/me", headers={"X-API-Key": key}).status_code == 200
    with gateway.client.app.state.session_factory() as s, s.begin():  # type: ignore[attr-defined]
        s.execute(update(ApiKey).where(ApiKey.id == made.json()["id"]).values(expires_at=datetime.now(UTC)))
    resp = gateway.client.get("/v1/parties/me", headers={"X-API-Key": key})
    assert resp.status_code == 401 and "expired" in resp.json()["error"]["message"]


def test_a_short_lived_key_cannot_mint_a_longer_lived_one(gateway: Gateway) -> None:
    pid = _me(gateway, "supplier")
    hour = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    temp = gateway.client.post(
        f"/v1/parties/{pid}/keys", json={"expires_at": hour.isoformat()}, headers=gateway.auth("supplier")
    ).json()["api_key"]
    as_temp = {"Authorization": f"Bearer {temp}"}
    # no expiry asked: the new key expires with the one that issued it
    child = gateway.client.post(f"/v1/parties/{pid}/keys", json={"label": "forever"}, headers=as_temp)
    assert child.status_code == 201, child.text
    assert datetime.fromisoformat(child.json()["expires_at"].replace("Z", "+00:00")) == hour
    # a later expiry is refused, naming the field and why
    later = (hour + timedelta(days=1)).isoformat()
    refused = gateway.client.post(f"/v1/parties/{pid}/keys", json={"expires_at": later}, headers=as_temp)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "expires_at"
    assert "outlive" in refused.json()["error"]["message"]
    # a key without expiry (the party's initial one) still issues keys without expiry
    free = gateway.client.post(f"/v1/parties/{pid}/keys", json={}, headers=gateway.auth("supplier"))
    assert free.status_code == 201 and free.json()["expires_at"] is None


@pytest.mark.parametrize(
    ("expires_at", "problem"),
    [("2001-01-01T00:00:00Z", "past"), ("2099-01-01T00:00:00Z", "3 years"), ("2027-01-01T00:00:00", "time zone")],
)
def test_bad_expiries_are_refused(gateway: Gateway, expires_at: str, problem: str) -> None:
    pid = _me(gateway, "oem")
    resp = gateway.client.post(f"/v1/parties/{pid}/keys", json={"expires_at": expires_at}, headers=gateway.auth("oem"))
    assert resp.status_code == 422 and problem in resp.json()["error"]["message"]


def test_repeated_wrong_keys_lock_the_address_out_in_every_gateway_process(gateway: Gateway) -> None:
    settings = gateway.settings.model_copy(update={"auth_lockout_failures": 3, "auth_lockout_base_s": 30.0})
    first = TestClient(create_app(settings, embedded_worker=False))
    second = TestClient(create_app(settings, embedded_worker=False))  # another process on the same database
    good = gateway.auth("oem")
    assert first.get("/v1/parties/me", headers=good).status_code == 200
    for _ in range(2):
        assert first.get("/v1/parties/me", headers={"X-API-Key": "qcn_guess_guess"}).status_code == 401
    assert first.get("/v1/parties/me").status_code == 401  # no key at all is no guess: not counted
    assert second.get("/v1/parties/me", headers={"X-API-Key": "qcn_guess_again"}).status_code == 401  # 3rd
    for client in (first, second):
        locked = client.get("/v1/parties/me", headers=good)
        assert locked.status_code == 429, locked.text
        assert 1 <= int(locked.headers["Retry-After"]) <= 30
        assert locked.json()["error"]["code"] == "too_many_requests"


def _cli(gw: Gateway, monkeypatch: pytest.MonkeyPatch, who: str, *args: str) -> Any:
    monkeypatch.setattr(cli_keys, "_client", lambda api, api_key: PartyClient(gw.client, api_key))
    result = CliRunner().invoke(cli, ["key", *args, "--api-key", gw.keys[who]])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_qcn_key_create_list_revoke(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    made = _cli(gateway, monkeypatch, "supplier", "create", "--label", "nightly", "--expires-in-days", "7")
    assert made["label"] == "nightly" and made["api_key"].startswith("qcn_")
    listed = _cli(gateway, monkeypatch, "supplier", "list")
    assert [k["label"] for k in listed] == ["nightly", "initial"]
    revoked = _cli(gateway, monkeypatch, "supplier", "revoke", str(made["id"]))
    assert revoked["revoked_at"] is not None
    assert gateway.client.get("/v1/batches", headers={"X-API-Key": made["api_key"]}).status_code == 401
    # another party's key: the gateway's 404, exit code 1
    monkeypatch.setattr(cli_keys, "_client", lambda api, api_key: PartyClient(gateway.client, api_key))
    other = CliRunner().invoke(cli, ["key", "revoke", str(made["id"]), "--api-key", gateway.keys["oem"]])
    assert other.exit_code == 1 and "not found" in other.output
