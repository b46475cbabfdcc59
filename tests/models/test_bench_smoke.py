"""Smoke run of ``scripts/bench_causal.py --quick``: every documented key, values in sane ranges."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_causal.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_causal_smoke", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_quick_causal_bench_reports_every_key_in_range() -> None:
    res = _bench().measure_causal(quick=True)
    assert res["quick"] is True
    # ranking: 4 process models x 6 cases, true graph
    assert res["cases"] == 24 and set(res["models"]) == {
        "plasma_deposition",
        "heat_treatment",
        "reflow_soldering",
        "electrode_coating",
    }
    assert 0.6 <= res["top1"] <= res["top3"] <= 1.0
    assert 0.0 < res["latency_ms_p50"] <= res["latency_ms_p95"] < 50.0
    for m in res["models"].values():
        assert m["cases"] == 6 and 0.0 <= m["top1"] <= m["top3"] <= 1.0
    # baselines are skipped in quick mode, explicitly (None), never silently missing
    for key in (
        "baseline_scores_top1",
        "baseline_scores_top3",
        "baseline_scores_latency_ms_p50",
        "baseline_shapley_top1",
        "baseline_shapley_top3",
        "baseline_shapley_latency_ms_p50",
    ):
        assert key in res and res[key] is None
    # alarm structure learning, ours vs plain pgmpy PC (3 interleaved runs)
    assert res["alarm_rows"] == 2000 and res["alarm_runs"] == 3
    assert 0.85 <= res["alarm_skeleton_f1"] <= 1.0 and 0.5 <= res["baseline_pgmpy_pc_f1"] <= 1.0
    assert 0.0 < res["alarm_seconds"] < 30 and 0.0 < res["baseline_pgmpy_pc_seconds"] < 60
    assert len(res["alarm_seconds_runs"]) == 3
    assert math.isclose(
        res["alarm_speedup_median"],
        sorted(b / a for a, b in zip(res["alarm_seconds_runs"], res["baseline_pgmpy_pc_seconds_runs"], strict=True))[1],
    )
    # incremental refresh (60 variables x 3,000 rows in quick mode)
    assert (res["refresh_vars"], res["refresh_rows"]) == (60, 3000)
    assert 0.7 <= res["learn_200vars_skeleton_f1"] <= 1.0
    assert 0.0 < res["refresh_200vars_seconds"] < 60 and res["refresh_changed_variables"] >= 1
    assert res["refresh_pairs_retested"] >= 1
