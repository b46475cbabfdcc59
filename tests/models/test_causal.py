"""Causal core: constraints, structure learning, graph store, ANM ranking, do(), counterfactuals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.causal import (
    AdditiveNoiseModel,
    CausalConstraints,
    CausalGraph,
    ConstraintError,
    GraphStore,
    Spec,
    StructureLearner,
    Tier,
    counterfactual,
    do_effect,
    learn_structure,
    load_constraints,
    plot_graph,
    rank_root_causes,
    safe_domain,
)
from models.errors import InsufficientData, ModelIntegrityError, NotFittedError, UnknownVariable
from models.simulate import Fault, get_process

FMEA = Path(__file__).resolve().parents[2] / "models" / "fmea"


@pytest.fixture(scope="module")
def plasma():
    scm = get_process("plasma_deposition")
    return scm, scm.sample(2000, seed=5)


def _linear_scm(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """x ~ N(0,1); y = 1 + 2x + N(0, 0.5); w ~ N(0,1); z = 3 - y + 0.5 w + N(0, 0.2)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    y = 1 + 2 * x + 0.5 * rng.standard_normal(n)
    w = rng.standard_normal(n)
    z = 3 - y + 0.5 * w + 0.2 * rng.standard_normal(n)
    return pd.DataFrame({"x": x, "y": y, "w": w, "z": z})


@pytest.fixture(scope="module")
def linear_anm():
    g = CausalGraph.build(["x", "y", "w", "z"], [("x", "y"), ("y", "z"), ("w", "z")])
    return AdditiveNoiseModel(max_degree=1).fit(_linear_scm(), graph=g)


# --- constraints ---------------------------------------------------------------------------------------
def test_shipped_fmea_files_match_simulator_tiers():
    for name in ("plasma_deposition", "heat_treatment", "reflow_soldering", "electrode_coating"):
        cons = load_constraints(FMEA / f"{name}.yaml")
        scm = get_process(name)
        assert dict(cons.tiers) == {n.name: n.tier for n in scm.nodes}
        assert cons.specs == scm.specs
        # every true edge is allowed by the expert constraints
        assert all(cons.allows(u, v) for u, v in scm.edges)


def test_constraints_tier_order_and_quality_terminal():
    cons = load_constraints(FMEA / "plasma_deposition.yaml")
    assert cons.allows("rf_power", "breakdown_voltage")
    assert not cons.allows("breakdown_voltage", "rf_power")  # quality never flows back
    assert not cons.allows("film_stress", "breakdown_voltage")  # quality -> quality off by default
    assert not cons.allows("rf_power", "electrode_wear")  # process -> equipment is backwards
    assert not cons.allows("cleanroom_humidity", "rf_power")  # explicit forbidden edge


def test_constraints_errors_name_the_problem(tmp_path):
    with pytest.raises(ConstraintError, match="unknown tier 'machine'") as ei:
        CausalConstraints.from_dict({"variables": {"a": {"tier": "machine"}}})
    assert ei.value.field == "variables.a.tier"
    with pytest.raises(ConstraintError, match="required edge q->p"):
        CausalConstraints.from_dict({"variables": {"p": "process", "q": "quality"}, "required": [["q", "p"]]})
    bad = tmp_path / "x.yaml"
    bad.write_text("variables: [unclosed", encoding="utf-8")
    with pytest.raises(ConstraintError, match="not valid YAML"):
        load_constraints(bad)


# --- structure learning --------------------------------------------------------------------------------
def test_learned_graph_honours_constraints_and_finds_most_edges(plasma):
    scm, df = plasma
    cons = scm.constraints()
    req = CausalConstraints(
        cons.name, cons.tiers, required=frozenset({("gas_lot_moisture", "film_stress")}), forbidden=cons.forbidden
    )
    g = learn_structure(df, req)
    assert all(req.allows(u, v) for u, v in g.edges)
    assert ("gas_lot_moisture", "film_stress") in g.edges  # required edge kept although not causal
    assert not any(req.tier(u) is Tier.QUALITY for u, _ in g.edges)
    true = {frozenset(e) for e in scm.edges}
    found = g.skeleton()
    recall = len(true & found) / len(true)
    precision = len(true & found) / len(found)
    assert recall >= 0.7 and precision >= 0.7, (recall, precision)


def test_graph_hash_stable_and_changes_with_data(plasma):
    scm, df = plasma
    cons = scm.constraints()
    g1 = learn_structure(df, cons)
    g2 = learn_structure(df.copy(), cons)
    assert g1.sha256 == g2.sha256 and len(g1.sha256) == 64
    df2 = df.copy()
    df2.iloc[0, 0] += 1e-9
    g3 = learn_structure(df2, cons)
    assert g3.data_sha256 != g1.data_sha256 and g3.sha256 != g1.sha256
    other = CausalConstraints(cons.name, cons.tiers, forbidden=frozenset())
    assert learn_structure(df, other).sha256 != g1.sha256


def test_graph_store_versions_and_detects_tampering(tmp_path, plasma):
    scm, df = plasma
    store = GraphStore(tmp_path)
    g1 = learn_structure(df.iloc[:1000], scm.constraints())
    g2 = learn_structure(df, scm.constraints())
    assert store.save("plasma", g1) == 1
    assert store.save("plasma", g1) == 1  # identical graph is not duplicated
    assert store.save("plasma", g2) == 2
    assert store.versions("plasma") == [1, 2]
    assert store.load("plasma").sha256 == g2.sha256
    assert store.load("plasma", 1).edges == g1.edges
    path = next(tmp_path.glob("plasma/v0001-*.json"))
    doc = json.loads(path.read_text())
    doc["edges"] = doc["edges"][1:]
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelIntegrityError):
        store.load("plasma", 1)


def test_refresh_keeps_structure_when_nothing_changed_and_retests_changed_mechanism():
    scm = get_process("heat_treatment")
    learner = StructureLearner(scm.constraints())
    g0 = learner.fit(scm.sample(2000, seed=1))
    same = learner.refresh(scm.sample(2000, seed=2))
    assert same.changed_variables == [] and not same.structure_changed and same.pairs_retested == 0
    assert same.graph.data_sha256 != g0.data_sha256
    # a stuck thermocouple breaks its link to the furnace temperature in the new batch
    batch = scm.sample(4000, seed=3, fault=Fault("stuck_sensor", "thermocouple_reading", 0.0, 0))
    res = learner.refresh(batch)
    assert "thermocouple_reading" in res.changed_variables
    assert 0 < res.pairs_retested < 16 * 15 // 2


def test_insufficient_rows_and_unknown_variable(plasma):
    scm, df = plasma
    with pytest.raises(InsufficientData) as ei:
        learn_structure(df.iloc[:10], scm.constraints())
    assert ei.value.got == 10 and ei.value.needed >= 30
    with pytest.raises(UnknownVariable) as eu:
        learn_structure(df.assign(mystery_sensor=1.0), scm.constraints())
    assert eu.value.name == "mystery_sensor"


# --- ANM, ranking ------------------------------------------------------------------------------------
def test_ranking_names_injected_root_cause(plasma):
    scm, df = plasma
    g = CausalGraph.build(scm.variables, scm.edges)
    anm = AdditiveNoiseModel().fit(df, graph=g, specs=scm.specs)
    run = scm.sample(50, seed=9, fault=Fault("mean_shift", "rf_power", 6.0, 0))
    row = run.iloc[int(np.argmax(np.abs(run["film_density"] - df["film_density"].mean())))]
    rep = rank_root_causes(anm, row, "breakdown_voltage", k=3)
    assert rep.top.variable == "rf_power"
    assert rep.top.z > 3 and rep.top.share > 0.3
    assert rep.top.path[0] == "rf_power" and rep.top.path[-1] == "breakdown_voltage"
    assert all(scm.graph.has_edge(a, b) for a, b in zip(rep.top.path[:-1], rep.top.path[1:], strict=True))
    assert rep.top.expected == pytest.approx(df["rf_power"].mean(), abs=0.5)
    with pytest.raises(UnknownVariable, match="'no_such_char'"):
        rank_root_causes(anm, row, "no_such_char")


def test_anm_not_fitted_and_too_few_rows():
    anm = AdditiveNoiseModel()
    with pytest.raises(NotFittedError):
        anm.score({"x": 1.0})
    g = CausalGraph.build(["x", "y"], [("x", "y")])
    with pytest.raises(InsufficientData):
        anm.fit(_linear_scm(10), graph=g)


def test_counterfactual_linear_scm_equals_hand_computation(linear_anm):
    anm = linear_anm
    obs = {"x": 1.0, "y": 4.0, "w": 0.5, "z": -0.5}
    # abduction with the fitted mechanisms, then y' = a + b * 2 + n_y, z' = c + d y' + e w + n_z
    my, mz = anm.mechanisms[anm.idx("y")], anm.mechanisms[anm.idx("z")]
    xv = anm.to_vector(obs)[None, :]
    n = anm.noise_of(xv)[0]
    x2 = xv.copy()
    x2[0, anm.idx("x")] = 2.0
    y2 = float(my.predict(x2)[0] + n[anm.idx("y")])
    x2[0, anm.idx("y")] = y2
    z2 = float(mz.predict(x2)[0] + n[anm.idx("z")])
    res = counterfactual(anm, obs, {"x": 2.0}, "z")
    assert res.value == pytest.approx(z2, rel=1e-9)
    # and with the true coefficients: y' = 4 + 2 * (2 - 1) = 6, z' = -0.5 - (6 - 4) = -2.5
    assert res.value == pytest.approx(-2.5, abs=0.05)
    rng = counterfactual(anm, obs, {"x": (1.5, 2.5)}, "z", spec=Spec(usl=-2.5))
    assert rng.value == pytest.approx(-0.5 - 2 * (1.5 - 1.0), abs=0.05)  # observed x clipped to 1.5
    assert rng.probability == pytest.approx(0.5, abs=0.03)  # z' <= -2.5 iff x' >= 2: half the range
    assert rng.in_spec is False


def test_do_matches_analytic_effect(linear_anm):
    res = do_effect(linear_anm, {"x": 1.5}, "z", n=4000, seed=1)
    # E[z | do(x=1.5)] = 3 - (1 + 2 * 1.5) + 0 = -1; sd = sqrt(0.5^2 + 0.25 + 0.2^2)
    assert res.mean == pytest.approx(-1.0, abs=0.05)
    assert res.std == pytest.approx(np.sqrt(0.25 + 0.25 + 0.04), rel=0.08)
    assert res.quantiles["q05"] < res.mean < res.quantiles["q95"]


def test_safe_domain_distance_on_linear_boundary(linear_anm):
    anm = linear_anm
    obs = {"x": 0.2, "y": 1.4, "w": 0.0, "z": 1.6}
    # z' = 3 - (1 + 2x + n_y) + 0.5 w + n_z is linear in (x, w); in spec while z' >= lsl = 0.
    # In sd units the distance to the plane is margin / ||(dz/dx * sd_x, dz/dw * sd_w)||, with the
    # slopes read from the fitted (linear) mechanisms.
    res = safe_domain(anm, obs, ["x", "w"], "z", spec=Spec(lsl=0.0))
    sx, sw = anm.std[anm.idx("x")], anm.std[anm.idx("w")]
    my, mz = anm.mechanisms[anm.idx("y")], anm.mechanisms[anm.idx("z")]
    b_xy = my.coef[0] / my.sd[0]
    b_yz, b_wz = (mz.coef / mz.sd)[[list(mz.parents).index("y"), list(mz.parents).index("w")]]
    grad = np.array([b_yz * b_xy * sx, b_wz * sw])
    m0 = 1.6 - 0.0  # margin to lsl at the current point (its own noises are kept)
    assert res.inside
    assert res.distance == pytest.approx(m0 / np.linalg.norm(grad), rel=2e-3)
    assert res.boundary_point is not None
    out = safe_domain(anm, {"x": 2.0, "y": 5.0, "w": 0.0, "z": -2.0}, ["x", "w"], "z", spec=Spec(lsl=0.0))
    assert not out.inside and out.distance < 0


def test_plot_highlights_path(plasma):
    scm, df = plasma
    g = CausalGraph.build(scm.variables, scm.edges)
    anm = AdditiveNoiseModel().fit(df, graph=g)
    row = scm.sample(1, seed=3, fault=Fault("mean_shift", "rf_power", 8.0, 0)).iloc[0]
    rep = rank_root_causes(anm, row, "breakdown_voltage")
    svg = plot_graph(g, scm.constraints().tiers, rep, fmt="svg").decode()
    assert svg.lstrip().startswith("<?xml") and "anomalous: breakdown_voltage" in svg
    assert f"1. {rep.top.variable}" in svg
    png = plot_graph(g, scm.constraints().tiers, rep, fmt="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_draws_from_threads_without_pyplot(plasma):
    """Plots use matplotlib's object API: concurrent draws from server threads each get their own
    complete figure, and importing the causal core does not load pyplot."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    scm, df = plasma
    g = CausalGraph.build(scm.variables, scm.edges)
    anm = AdditiveNoiseModel().fit(df, graph=g)
    row = scm.sample(1, seed=3, fault=Fault("mean_shift", "rf_power", 8.0, 0)).iloc[0]
    rep = rank_root_causes(anm, row, "breakdown_voltage")
    tiers = scm.constraints().tiers
    with ThreadPoolExecutor(4) as pool:
        svgs = list(pool.map(lambda i: plot_graph(g, tiers, rep, fmt="svg", title=f"title-{i}").decode(), range(8)))
    for i, svg in enumerate(svgs):
        assert f"title-{i}" in svg and "anomalous: breakdown_voltage" in svg
        assert sum(f"title-{j}" in svg for j in range(8)) == 1  # no figure state leaks between threads
    code = "import sys, models.causal; print('matplotlib.pyplot' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_refresh_aligns_columns_by_name_and_tolerates_subset_and_superset(caplog):
    """A batch whose columns come in another order, or are a subset or superset of the history's, is
    compared on the common columns with a warning instead of failing for good."""
    scm = get_process("heat_treatment")
    learner = StructureLearner(scm.constraints())
    g0 = learner.fit(scm.sample(2000, seed=1))
    n0 = learner.stats_.n
    reordered = scm.sample(500, seed=2)[list(reversed(g0.variables))]
    res = learner.refresh(reordered)
    assert res.warnings == [] and res.folded and learner.stats_.n == n0 + 500
    assert set(res.graph.variables) == set(g0.variables)
    extra = scm.sample(500, seed=3).assign(mystery_sensor=1.0)
    res = learner.refresh(extra)
    assert res.folded and learner.stats_.n == n0 + 1000
    assert any("mystery_sensor" in w for w in res.warnings)
    dropped = g0.variables[0]
    subset = scm.sample(500, seed=4).drop(columns=[dropped])
    res = learner.refresh(subset)
    assert not res.folded and learner.stats_.n == n0 + 1000
    assert any(dropped in w for w in res.warnings)
    assert dropped not in res.changed_variables and res.graph == learner.graph_
    assert any("common columns" in r.getMessage() for r in caplog.records)
