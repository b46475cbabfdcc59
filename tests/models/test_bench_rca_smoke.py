"""Smoke run of ``scripts/bench_rca.py --quick``: every documented key, values in sane ranges (no timings)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from models.bench import DEV, FAULT_KINDS, HELDOUT, PROCESSES, get, make_cases

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_rca.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_rca_smoke", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_generator_covers_what_the_benchmark_promises() -> None:
    assert len(PROCESSES) >= 5 and len(HELDOUT) == 2 and not set(HELDOUT) & set(DEV)
    for name in PROCESSES:
        proc = get(name)
        assert 15 <= len(proc.observed) <= 25
        assert proc.categorical and proc.harmless and proc.bidirected()  # discrete, harmless, hidden confounder
        assert {proc.by_name[v].tier for v in proc.observed} >= {"material", "process", "quality"}
        assert all(not proc.reaches_quality(h) for h in proc.harmless)
    cases = make_cases(get("tempering"), 24, seed=1)
    assert {c.kind for c in cases} == set(FAULT_KINDS)
    assert all(20 <= len(c.batch) <= 50 and c.root in c.truth for c in cases)
    assert all(get("tempering").by_name[c.root].tier != "quality" for c in cases)
    stuck = next(c for c in cases if c.kind == "stuck")
    onset = stuck.faults[0].onset
    assert stuck.batch[stuck.root].iloc[onset:].nunique() == 1
    lot = next(c for c in cases if c.kind == "material_lot")
    assert lot.truth == {"steel_heat", "carbon_content"} and lot.batch["steel_heat"].iloc[-1] == "S6"
    assert 0.25 <= sum(c.concurrent is not None for c in cases) / len(cases) <= 0.7


def test_tier_files_never_forbid_a_true_edge() -> None:
    """The tiers are the engineer's knowledge given to the learner: a partial order that the process's own
    mechanisms respect (a tier order that forbids a true edge caps what any learner can recover)."""
    from models.causal.knowledge import ProcessKnowledge

    for name in PROCESSES:
        proc = get(name)
        knowledge = ProcessKnowledge.from_doc(proc.tiers_doc())
        forbidden = sorted((u, v) for u, v in proc.observed_edges() if not knowledge.allows(u, v))
        assert forbidden == [], name
    assert get("machining_finish").tiers_doc()["variables"]["spindle_power"] == "intermediate"


@pytest.mark.slow
def test_quick_hard_bench_reports_every_key_in_range() -> None:
    res = _bench().run(quick=True)
    assert res["hard_quick"] is True and res["hard_cases"] == 24
    for key in ("hard_top1", "hard_top3", "hard_top1_learned", "hard_top3_learned"):
        assert 0.0 <= res[key] <= 1.0
    assert res["hard_top1"] <= res["hard_top3"] and res["hard_top1_learned"] <= res["hard_top3_learned"]
    assert res["hard_top1"] >= 0.6  # the known-graph engine finds most faults even on 12 cases a process
    assert set(res["hard_top1_by_kind"]) == set(FAULT_KINDS)
    assert set(res["hard_skeleton_f1"]) == {"thermal_oxidation", "tempering"}
    assert all(0.0 <= f <= 1.0 for f in res["hard_skeleton_f1"].values())
    assert res["hard_latency_ms_p50"] <= res["hard_latency_ms_p95"]
    assert set(res["hard_baselines"]) == {"zscore", "zscore_flat", "circa_rht", "qcn_v1", "qcn_v1_learned"}
    for b in res["hard_baselines"].values():
        assert b["cases"] == 24 and 0.0 <= b["top1"] <= b["top3"] <= 1.0
    assert res["hard_heldout_top1_learned"] is None  # the quick run never scores the held-out processes
    for key in ("counterfactual_confirms_true_root", "counterfactual_confirms_wrong_root"):
        assert res[key] is None or 0.0 <= res[key] <= 1.0
