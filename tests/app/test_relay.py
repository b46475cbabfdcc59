"""Relaying party-signed transactions never blocks the gateway: 202 + status URL, the receipt awaited by the
relay queue; refusals are 4xx (empty raw, EIP-7702 / blob types, legacy without chain id, replays, nonces
that would never be mined); per-party rate limit and in-flight cap; a transaction the node lost (chain went
back) is broadcast again from its stored raw bytes. Real anvil node, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import func, select

from app.db import RelayTransaction
from app.quality import library_template
from tests.app.conftest import Gateway
from tests.app.test_agreements_api import KEYS

pytestmark = pytest.mark.node


def _draft(gw: Gateway, template_id: str = "tpl.relay") -> dict[str, Any]:
    doc = library_template("electrode_coating_line").document() | {"template_id": template_id}
    resp = gw.client.post("/v1/templates", json={"document": doc}, headers=gw.auth("oem"))
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _sign(prepared: dict[str, Any], key: bytes = KEYS["oem"], **change: Any) -> str:
    tx = {k: v for k, v in prepared["tx"].items() if k != "from"} | change
    return "0x" + bytes(Account.sign_transaction(tx, key).raw_transaction).hex()


def _publish(gw: Gateway, draft: dict[str, Any], raw: str) -> Any:
    return gw.client.post(f"/v1/templates/{draft['template']['id']}/publish", json={"raw": [raw]},
                          headers=gw.auth("oem"))  # fmt: skip


def _rows(gw: Gateway) -> int:
    with gw.client.app.state.session_factory() as s:  # type: ignore[attr-defined]
        return int(s.scalar(select(func.count()).select_from(RelayTransaction)) or 0)


def _final(gw: Gateway, url: str, who: str = "oem") -> dict[str, Any]:
    status: dict[str, Any] = {}
    for _ in range(100):
        status = gw.client.get(url, headers=gw.auth(who)).json()
        if status["status"] != "pending":
            return status
        gw.worker.run_once()
    return status


def test_publish_is_accepted_then_mined_by_the_queue_and_a_replay_is_409(gateway: Gateway) -> None:
    gw = gateway
    draft = _draft(gw)
    raw = _sign(draft["transactions"][0])
    resp = _publish(gw, draft, raw)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "pending" and resp.headers["location"] == body["status_url"]
    tx = body["transactions"][0]
    assert tx["function"] == "publishTemplate" and tx["status"] == "pending"
    # nothing waited in the request: the template is published only once the queue saw the receipt
    shown = gw.client.get(f"/v1/templates/{draft['template']['id']}", headers=gw.auth("oem")).json()
    assert shown["status"] == "draft"
    final = _final(gw, body["status_url"])
    assert final["status"] == "mined" and final["block_number"] > 0 and final["gas_used"] > 0
    assert final["result"]["status"] == "published" and final["result"]["chain_tx"] == tx["tx_hash"]
    # another party cannot read it
    assert gw.client.get(body["status_url"], headers=gw.auth("supplier")).status_code == 404
    # the same signed bytes again: a replay, refused before anything is sent
    again = _publish(gw, draft, raw)
    assert again.status_code == 409, again.text
    draft2 = _draft(gw, "tpl.relay2")
    stale = _publish(gw, draft2, _sign(draft2["transactions"][0], nonce=draft["transactions"][0]["tx"]["nonce"]))
    assert stale.status_code == 409 and "already used" in stale.json()["error"]["message"]


def test_refusals_are_4xx_and_store_nothing(gateway: Gateway) -> None:
    gw = gateway
    draft = _draft(gw)
    prepared = draft["transactions"][0]
    base = {k: v for k, v in prepared["tx"].items() if k != "from"}
    oem = Account.from_key(KEYS["oem"])
    cases: dict[str, tuple[str, int, str]] = {
        "empty": ("", 422, "at least 4 characters"),  # the request schema bounds it before the service
        "0x": ("0x", 422, "at least 4 characters"),
        "not hex": ("0xzz", 422, "body.raw.0"),  # the schema names the field: 0x and whole bytes of hex
        "far-future nonce": (_sign(prepared, nonce=base["nonce"] + 1000), 422, "ahead"),
        "legacy without chain id": (
            "0x"
            + bytes(
                oem.sign_transaction(
                    {
                        "nonce": base["nonce"],
                        "to": base["to"],
                        "data": base["data"],
                        "value": 0,
                        "gas": base["gas"],
                        "gasPrice": 10**10,
                    }
                ).raw_transaction
            ).hex(),
            422,
            "chain id",
        ),
        "EIP-7702": (
            "0x"
            + bytes(
                oem.sign_transaction(
                    base
                    | {
                        "authorizationList": [
                            oem.sign_authorization(
                                {"chainId": base["chainId"], "address": base["to"], "nonce": base["nonce"] + 1}
                            )
                        ]
                    }
                ).raw_transaction
            ).hex(),
            422,
            "type 4",
        ),
        "blob type": ("0x03" + "c0", 422, "type 3"),
    }
    for name, (raw, code, words) in cases.items():
        resp = _publish(gw, draft, raw)
        assert resp.status_code == code, (name, resp.text)
        assert words in resp.json()["error"]["message"], (name, resp.text)
    assert _rows(gw) == 0
    # the gateway stays responsive; nothing is waiting on the node for those
    assert gw.client.get("/health").status_code == 200


def _in_one_rate_window(needed_s: float = 30.0) -> None:
    """Wait, if need be, for a fresh fixed rate window (app.services.relay.take_rate: whole minutes) so the next
    ``needed_s`` seconds of requests are counted in one window, not split over two (which would let them pass)."""
    import time

    left = 60.0 - time.time() % 60.0
    if left < needed_s:
        time.sleep(left + 0.2)


def test_rate_limit_and_in_flight_cap_per_party(gateway: Gateway) -> None:
    gw = gateway
    gw.settings.relay_max_pending_per_party = 1
    d1, d2 = _draft(gw, "tpl.a"), _draft(gw, "tpl.b")
    first = _publish(gw, d1, _sign(d1["transactions"][0]))
    assert first.status_code == 202
    # a second one while the first is in flight: over the cap (nonce is right: the node counts pending)
    nonce = d1["transactions"][0]["tx"]["nonce"] + 1
    capped = _publish(gw, d2, _sign(d2["transactions"][0], nonce=nonce))
    assert capped.status_code == 429 and "in flight" in capped.json()["error"]["message"]
    assert _final(gw, first.json()["status_url"])["status"] == "mined"
    gw.settings.relay_max_pending_per_party = 16
    gw.settings.relay_rate_per_minute = 2  # two per window: of three more in one window, one at least is over
    _in_one_rate_window()
    answers = [_publish(gw, d2, _sign(d2["transactions"][0], nonce=nonce)).status_code for _ in range(3)]
    assert 429 in answers and int(
        _publish(gw, d2, "0x00").headers.get("retry-after", "0")) >= 1  # fmt: skip


def test_a_transaction_the_node_lost_is_broadcast_again_from_its_raw_bytes(gateway: Gateway) -> None:
    gw = gateway
    chain = gw.client.app.state.chain_holder.get()  # type: ignore[attr-defined]
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    draft = _draft(gw)
    resp = _publish(gw, draft, _sign(draft["transactions"][0]))
    assert resp.status_code == 202
    tx_hash = resp.json()["transactions"][0]["tx_hash"]
    assert chain.w3.eth.get_transaction_receipt(tx_hash)["status"] == 1  # automine: mined at once
    # the chain goes back (a dev node restarted from an older state): the transaction is gone
    assert chain.w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    oem = Account.from_key(KEYS["oem"]).address
    assert chain.w3.eth.get_transaction_count(oem) == int(draft["transactions"][0]["tx"]["nonce"])
    final = _final(gw, resp.json()["status_url"])
    assert final["status"] == "mined" and final["tx_hash"] == tx_hash
    assert chain.w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
    with gw.client.app.state.session_factory() as s:  # type: ignore[attr-defined]
        row = s.scalars(select(RelayTransaction)).one()
        assert row.broadcasts == 2


def test_a_transaction_that_would_revert_is_409_naming_the_contract_error_and_stores_nothing(gateway: Gateway) -> None:
    # the simulation's revert is translated once in chain/ (chain.client.Rpc) and mapped once to HTTP (app.errors)
    gw = gateway
    draft = _draft(gw)
    first = _publish(gw, draft, _sign(draft["transactions"][0]))
    assert _final(gw, first.json()["status_url"])["status"] == "mined"
    rows = _rows(gw)
    draft2 = _draft(gw, "tpl.relay2")
    # draft2's next nonce, but the call data of the template published above: the contract refuses it
    again = _sign(draft2["transactions"][0], data=draft["transactions"][0]["tx"]["data"])
    resp = _publish(gw, draft2, again)
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "contract_revert" and error["revert"] == "TemplateExists", error
    assert error["arguments"]["version"] == 1
    assert error["revert"] in error["message"]
    assert _rows(gw) == rows


def test_the_rate_limit_is_shared_by_gateway_processes_on_one_database(gateway: Gateway) -> None:
    """This test's gateway and a second gateway *process* (uvicorn) on the same database: together they let a
    party through at most ``relay_rate_per_minute`` times per window; beyond that 429 with Retry-After (a
    per-process limit would let each process take the full count)."""
    import os
    import subprocess
    import sys

    import httpx

    from tests.app.test_request_limits_live import _wait_http
    from tests.conftest import ROOT, free_port

    gw = gateway
    draft = _draft(gw, "tpl.shared-rate")
    gw.settings.relay_rate_per_minute = 3
    st = gw.settings
    port = free_port()
    env = {**os.environ, "QCN_ENV": "test", "QCN_DATA_DIR": str(st.data_dir), "QCN_DATABASE_URL": st.db_url,
           "QCN_RPC_URL": st.rpc_url, "QCN_DEPLOYMENTS_DIR": str(st.deployments_dir), "QCN_EMBEDDED_WORKER": "0",
           "QCN_RELAY_RATE_PER_MINUTE": "3"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app_from_env", "--factory", "--port", str(port),
         "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", proc)
        url = f"/v1/templates/{draft['template']['id']}/publish"
        body, headers = {"raw": ["0x00"]}, gw.auth("oem")  # refused (type 0) after being counted
        answers = []
        _in_one_rate_window()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as second:
            for client in (gw.client, second, gw.client, second, gw.client):
                resp = client.post(url, json=body, headers=headers)
                answers.append((resp.status_code, resp.headers.get("retry-after")))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert [code for code, _ in answers[:3]] == [422, 422, 422], answers
    for code, retry_after in answers[3:]:
        assert code == 429 and retry_after is not None and 1 <= int(retry_after) <= 60, answers
