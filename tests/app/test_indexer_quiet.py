"""The indexer's quiet pass (app/services/indexer.py): with the same latest block as the previous pass it
returns at once, but a new block — or a block replaced at the same height — is still read or rewound."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.db import ChainEventRecord
from app.services import indexer
from tests.app.conftest import CSV_OK, Gateway


def _anchor_events(gw: Gateway) -> list[str]:
    sessions = gw.client.app.state.session_factory  # type: ignore[attr-defined]
    with sessions() as s:
        return list(s.scalars(select(ChainEventRecord.batch_id).where(ChainEventRecord.batch_id.is_not(None))))


def test_a_block_replaced_at_the_same_height_is_rewound_after_a_quiet_pass(gateway: Gateway) -> None:
    gw = gateway
    sessions = gw.client.app.state.session_factory  # type: ignore[attr-defined]
    chain = gw.worker.chain
    sync = lambda: indexer.sync(sessions=sessions, chain=chain, settings=gw.settings)  # noqa: E731
    resp = gw.upload("supplier", CSV_OK)
    assert resp.status_code == 201, resp.text
    sync()
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    assert gw.anchor_all() == 1
    sync()
    batch_id = resp.json()["batch_id"]
    assert _anchor_events(gw) == [batch_id]
    assert indexer._QUIET.get(chain) is not None and sync() == 0  # quiet: nothing read
    height = chain.rpc.block_number()
    assert chain.w3.provider.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
    chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert chain.rpc.block_number() == height  # same height, another block
    sync()
    assert _anchor_events(gw) == []  # the replaced block's event is gone


def test_a_log_the_node_repeats_in_one_answer_is_stored_once(gateway: Gateway, monkeypatch: Any) -> None:
    """Outside review: some JSON-RPC providers have answered eth_getLogs with a log twice. The events of a range
    are inserted together, so the repeat must be recognised in the range itself, or the unique key fails the
    whole range on every pass and indexing stops."""
    gw = gateway
    sessions = gw.client.app.state.session_factory  # type: ignore[attr-defined]
    chain = gw.worker.chain
    resp = gw.upload("supplier", CSV_OK)
    assert resp.status_code == 201, resp.text
    logs = chain.rpc.logs
    monkeypatch.setattr(chain.rpc, "logs", lambda params: (lambda found: found + found)(logs(params)))
    assert gw.anchor_all() == 1  # anchors, then indexes the anchoring block
    indexer.sync(sessions=sessions, chain=chain, settings=gw.settings)
    assert _anchor_events(gw) == [resp.json()["batch_id"]]
