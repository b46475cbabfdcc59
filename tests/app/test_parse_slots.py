"""Heavy parses are bounded per gateway process and per party: a party flooding the gateway with files that
parse in child processes gets a 503 with Retry-After (nothing stored) once it holds its share, while another
party still gets a slot; a freed slot is taken by the next waiting upload."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.chainctx import deploy_contracts
from app.db import Batch
from app.errors import ServiceUnavailable
from app.main import create_app
from app.parse_slots import ParseSlots
from tests.app.conftest import ACCOUNTS, make_settings
from tests.conftest import ROOT

JSON_BATCH = (ROOT / "tests" / "fixtures" / "inspection" / "json" / "batch_with_process.json").read_bytes()


def test_a_party_holds_at_most_its_share_and_a_freed_slot_wakes_a_waiter() -> None:
    slots = ParseSlots(4, wait_s=0.2)
    assert slots.per_party == 2
    with slots.hold("a", "f1"), slots.hold("a", "f2"):
        with pytest.raises(ServiceUnavailable, match=r"this party already runs 2 of at most 2") as exc:
            slots.hold("a", "f3").__enter__()
        assert exc.value.retry_after == 1.0 and exc.value.status == 503
        # the other party still finds its two; then nobody finds one
        with slots.hold("b", "g1"), slots.hold("b", "g2"), pytest.raises(ServiceUnavailable, match=r"all 4 are busy"):
            slots.hold("c", "h1").__enter__()

    waiting = ParseSlots(1, wait_s=5.0)
    got: list[float] = []
    with waiting.hold("a", "f1"):
        t = threading.Thread(target=lambda: got.append(_timed(waiting)))
        t.start()
        time.sleep(0.2)
        assert not got  # still waiting for the held slot
    t.join(5)
    assert got and got[0] < 4.0  # woken by the release, not by its time-out


def _timed(slots: ParseSlots) -> float:
    t0 = time.monotonic()
    with slots.hold("b", "f"):
        return time.monotonic() - t0


@pytest.fixture
def busy_gateway(tmp_path: Path, db_url: str, anvil: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = make_settings(tmp_path, db_url, anvil.url, parse_max_children=2, parse_slot_wait_s=0.3)
    deploy_contracts(settings)
    app = create_app(settings, embedded_worker=False)
    admin = {"Authorization": f"Bearer {settings.api_admin_token.get_secret_value()}"}
    with TestClient(app) as client:
        keys = {}
        for who in ("supplier", "supplier2"):
            resp = client.post(
                "/v1/parties", json={"name": who, "kind": "supplier", "account": ACCOUNTS[who]}, headers=admin
            )
            keys[who] = resp.json()["api_key"]
        yield client, keys


@pytest.mark.node
def test_an_upload_without_a_free_parser_slot_is_a_503_and_stores_nothing(
    busy_gateway: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = busy_gateway
    slots: ParseSlots = client.app.state.parse_slots  # type: ignore[attr-defined]
    sessions = client.app.state.session_factory  # type: ignore[attr-defined]

    def upload(who: str, key: str) -> Any:
        return client.post(
            "/v1/batches",
            files=[("files", ("lot.json", JSON_BATCH, "application/json"))],
            headers={"Authorization": f"Bearer {keys[who]}", "Idempotency-Key": key},
        )

    with sessions() as s:
        supplier_id = s.scalar(select(Batch.supplier_id).limit(1))  # no batch yet
        assert supplier_id is None
    first = upload("supplier", "LOT-1")
    assert first.status_code == 201, first.text
    with sessions() as s:
        supplier_id = s.scalar(select(Batch.supplier_id))
    with slots.hold(supplier_id, "a long PDF"):  # the supplier's one slot (2 // 2) is taken
        busy = upload("supplier", "LOT-2")
        assert busy.status_code == 503, busy.text
        assert busy.headers["Retry-After"] == "1"
        body = busy.json()["error"]
        assert body["code"] == "service_unavailable" and "no parser slot for lot.json" in body["message"]
        assert "nothing was stored" in body["message"]
        other = upload("supplier2", "LOT-A")  # another supplier is not held up
        assert other.status_code == 201, other.text
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Batch)) == 2
    again = upload("supplier", "LOT-2")  # the same request once the slot is free
    assert again.status_code == 201, again.text
