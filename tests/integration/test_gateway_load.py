"""Bounded smoke versions of ``scripts/bench_gateway.py`` (the full run is in ``make bench``): the embedded
node loses no confirmed transaction over kill -9 cycles, and the load bench runs end to end through the API
with no 5xx and well-formed figures (no timing asserted here)."""

from __future__ import annotations

import json

import pytest

from scripts.bench_gateway import crash_cycles, measure_gateway
from tests.conftest import _pg_available

pytestmark = pytest.mark.node


def test_kill_9_of_the_embedded_node_loses_no_confirmed_transaction() -> None:
    result = crash_cycles(3, durable=True, seed=11, max_run_s=0.8)
    assert result["cycles"] == 3 and result["confirmed"] > 0
    assert result["lost"] == 0


def test_gateway_bench_smoke_has_no_5xx_and_well_formed_figures() -> None:
    figures = measure_gateway(uploads=6, clients=3, anchored_n=2, crash=0, postgres=_pg_available(), baseline_uploads=2,
                              pg_runs=2)  # fmt: skip
    parsed = json.loads(json.dumps(figures))
    assert parsed["gateway_5xx"] == 0
    assert parsed["gateway_statuses_sqlite"] == {"201": 6}
    assert parsed["upload_then_404"] == 0
    for key in ("gateway_uploads_per_s_sqlite", "gateway_upload_ms_p99_sqlite", "upload_to_anchored_ms_p50",
                "anchor_latency_ms_p95_with_slow_webhooks", "anchor_latency_ms_p95_without_webhooks"):  # fmt: skip
        assert isinstance(parsed[key], int | float) and parsed[key] > 0, key
    assert parsed["baseline_child_parse_statuses_sqlite"] == {"201": 2}
    for key in ("gateway_cpu_ms_per_upload_sqlite", "gateway_uploads_per_s_2_free_cores_sqlite",
                "ratio_uploads_per_s_sqlite_vs_baseline_child_parse"):  # fmt: skip
        assert isinstance(parsed[key], int | float) and parsed[key] > 0, key
    assert parsed["gateway_batches_per_anchor_tx_sqlite"] >= 1
    # the slow webhooks really were in flight while the latency was measured
    assert parsed["silent_port_connections"] >= 1, parsed["silent_port_wait_s"]
    assert "deep_json_status" in parsed
    if _pg_available():
        assert parsed["gateway_statuses"] == {"201": 6} and parsed["gateway_processes"] == 2
        assert len(parsed["gateway_runs"]) == 2
        assert parsed["gateway_uploads_per_s"] in [run["uploads_per_s"] for run in parsed["gateway_runs"]]
        assert parsed["gateway_cpu_ms_per_upload_worker"] > 0 and parsed["gateway_cpu_ms_per_upload_db"] > 0
