"""G-test values against scipy / hand computation; ranking fixes for extrapolating mechanisms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2, chi2_contingency

from models.causal import AdditiveNoiseModel, CausalGraph, GTest, rank_root_causes
from models.causal.ranking import _effective_sd
from models.simulate import get_process, make_cases


@pytest.fixture(scope="module")
def discrete() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 3000
    z = rng.integers(0, 3, n)
    x = (z + rng.integers(0, 2, n)) % 3
    y = (z + rng.integers(0, 2, n)) % 4  # depends on x only through z
    w = rng.integers(0, 2, n)
    return pd.DataFrame({"x": x, "y": y, "z": z, "w": w}).astype(str)


def test_unconditional_g_matches_scipy_log_likelihood(discrete) -> None:
    g = GTest(discrete)
    for a, b in (("x", "y"), ("x", "w"), ("y", "w")):
        table = pd.crosstab(discrete[a], discrete[b]).to_numpy()
        _, p, _, _ = chi2_contingency(table, lambda_="log-likelihood", correction=False)
        assert g.pvalue(a, b, []) == pytest.approx(p, rel=1e-9, abs=1e-300)
    assert g.pvalue("x", "y", []) < 1e-10 < 0.01 < g.pvalue("x", "w", [])  # dependent through z / independent


def test_conditional_g_is_the_sum_over_strata(discrete) -> None:
    g = GTest(discrete)
    stat = 0.0
    dof = 0
    for _, part in discrete.groupby("z"):
        t = pd.crosstab(part["x"], part["y"]).to_numpy()  # only observed rows/columns: adjusted dof
        s, _, d, _ = chi2_contingency(t, lambda_="log-likelihood", correction=False)
        stat += s
        dof += d
    assert g.pvalue("x", "y", ["z"]) == pytest.approx(chi2.sf(stat, dof), rel=1e-9)
    assert g.pvalue("x", "y", ["z"]) > 0.01  # independent given z
    assert g("x", "y", ["z"], significance_level=0.01) is True
    assert g("x", "y", [], significance_level=0.01) is False


def test_g_cache_is_keyed_by_unordered_pair_and_set(discrete) -> None:
    g = GTest(discrete)
    p1 = g.pvalue("x", "y", ["z", "w"])
    calls = g.calls
    assert g.pvalue("y", "x", ("w", "z")) == p1 and g.calls == calls


@pytest.fixture(scope="module")
def plasma() -> tuple[object, AdditiveNoiseModel]:
    scm = get_process("plasma_deposition")
    anm = AdditiveNoiseModel().fit(
        scm.sample(3000, seed=101), graph=CausalGraph.build(scm.variables, scm.edges), specs=scm.specs
    )
    return scm, anm


def test_effective_sd_widens_only_outside_the_training_range(plasma) -> None:
    scm, anm = plasma
    row = scm.sample(1, seed=7).iloc[0].to_dict()
    x = anm.to_vector(row)[None, :]
    sd = np.array([m.resid_sd for m in anm.mechanisms])
    cands = np.arange(len(anm.order))
    np.testing.assert_array_equal(_effective_sd(anm, x, cands, sd), sd)  # typical row: unchanged
    far = dict(row, matching_network_temp=row["matching_network_temp"] + 16.0)  # ~8 sd out
    xf = anm.to_vector(far)[None, :]
    eff = _effective_sd(anm, xf, cands, sd)
    j = anm.idx("reflected_power")
    assert eff[j] > sd[j]  # its mechanism extrapolates in matching_network_temp
    others = [i for i in cands if i != j]
    np.testing.assert_array_equal(eff[others], sd[others])


def test_quadratic_parent_far_out_is_ranked_first_not_its_child(plasma) -> None:
    # development seed 3 (the held-out benchmark seed is 202): matching-network faults used to be
    # blamed on reflected_power (quadratic mechanism clipped in extrapolation)
    scm, anm = plasma
    cases = [c for c in make_cases(scm, 55, seed=3) if c.root_cause == "matching_network_temp"]
    assert len(cases) >= 3
    tops = [rank_root_causes(anm, c.row, c.characteristic, k=3).top.variable for c in cases]
    assert tops.count("matching_network_temp") >= len(cases) - 1


def test_plasma_top1_on_development_seed(plasma) -> None:
    scm, anm = plasma
    cases = make_cases(scm, 55, seed=17)
    top1 = np.mean([rank_root_causes(anm, c.row, c.characteristic, k=3).top.variable == c.root_cause for c in cases])
    assert top1 >= 0.9  # 0.855 on this seed before the extrapolation fixes, 0.927 after
