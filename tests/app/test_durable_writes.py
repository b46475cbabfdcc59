"""Durable before acknowledged: the commit happens before the response, a failed commit is an error for the
client, and identical idempotent uploads racing each other give one 201 and the same batch for the rest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from app.db import Batch, Blob
from tests.app.conftest import CSV_OK, Gateway

pytestmark = pytest.mark.node


@pytest.fixture
def failing_commit(gateway: Gateway) -> Iterator[dict[str, bool]]:
    """While ``state["fail"]`` is set, every commit of a gateway session raises like a lost database."""
    state = {"fail": False}
    factory = gateway.client.app.state.session_factory  # type: ignore[attr-defined]

    def _before_commit(_session: Any) -> None:
        if state["fail"]:
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    event.listen(factory, "before_commit", _before_commit)
    yield state
    event.remove(factory, "before_commit", _before_commit)


def _batches(gateway: Gateway) -> int:
    with gateway.client.app.state.session_factory() as s:  # type: ignore[attr-defined]
        return int(s.scalar(select(func.count()).select_from(Batch)) or 0)


def test_a_failed_commit_is_an_error_for_the_client_not_a_201(
    gateway: Gateway, failing_commit: dict[str, bool]
) -> None:
    client = TestClient(gateway.client.app, raise_server_exceptions=False)
    failing_commit["fail"] = True
    resp = client.post(
        "/v1/batches", files=[("files", ("lot.csv", CSV_OK.encode(), "text/csv"))], headers=gateway.auth("supplier")
    )
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"]["code"] == "storage_unavailable"
    gateway.client.app.state.settings.webhook_allow = "127.0.0.1/32"  # type: ignore[attr-defined]
    hook = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=gateway.auth("oem"))
    assert hook.status_code == 503
    failing_commit["fail"] = False
    assert _batches(gateway) == 0
    assert client.get("/v1/webhooks", headers=gateway.auth("oem")).json() == []
    again = client.post(
        "/v1/batches", files=[("files", ("lot.csv", CSV_OK.encode(), "text/csv"))], headers=gateway.auth("supplier")
    )
    assert again.status_code == 201
    assert client.get(f"/v1/batches/{again.json()['id']}", headers=gateway.auth("supplier")).status_code == 200


def test_concurrent_identical_idempotent_uploads_give_one_batch(gateway: Gateway) -> None:
    results: list[Any] = []
    barrier = threading.Barrier(8)

    def upload() -> None:
        barrier.wait()
        results.append(gateway.upload("supplier", CSV_OK, key="LOT-RACE-1"))

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    codes = sorted(r.status_code for r in results)
    assert codes == [200] * 7 + [201], [r.text for r in results if r.status_code >= 300]
    assert len({r.json()["id"] for r in results}) == 1
    assert _batches(gateway) == 1


def test_same_file_under_different_keys_at_once_shares_one_blob(gateway: Gateway) -> None:
    results: list[Any] = []
    barrier = threading.Barrier(4)

    def upload(i: int) -> None:
        barrier.wait()
        results.append(gateway.upload("supplier", CSV_OK, key=f"LOT-BLOB-{i}"))

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(r.status_code for r in results) == [201] * 4, [r.text for r in results]
    with gateway.client.app.state.session_factory() as s:  # type: ignore[attr-defined]
        assert s.scalar(select(func.count()).select_from(Blob)) == 1
