"""Batch root-cause model: knowledge files, detectors, attribution to a variable's own noise, symptoms,
path rule, counterfactual on anomalous rows, structure learning on a tier partial order."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.causal.errors import ConstraintError, GraphError
from models.causal.knowledge import KnownGraph, ProcessKnowledge, specs_from_doc
from models.causal.learn import learn_graph
from models.causal.rca import DETECTORS, BatchRootCauseModel, _stats, _wilson
from models.errors import InvalidInput, NotFittedError

TIERS = {
    "order": [["material", "environment"], "process", "intermediate", "quality"],
    "variables": {
        "machine": "material",
        "x": "process",
        "h": "environment",
        "y": "intermediate",
        "q": "quality",
        "q2": "quality",
    },
    "categorical": ["machine"],
}
EDGES = [("machine", "y"), ("x", "y"), ("y", "q"), ("x", "q2"), ("q", "q2")]


def _simulate(n: int, seed: int, fault: str | None = None, at: int = 0) -> pd.DataFrame:
    """x -> y (saturating, machine offset) -> q -> q2; h is harmless (no path to any output)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    on = t >= at
    machine = np.where((t // 40) % 2 == 0, "M1", "M2")
    x = 10 + np.cumsum(rng.normal(0, 0.05, n)) * 0 + rng.normal(0, 0.5, n)
    h = 3 + rng.normal(0, 0.2, n)
    if fault == "shift_x":
        x = x + np.where(on, 2.0, 0.0)
    if fault == "shift_h":
        h = h + np.where(on, 1.5, 0.0)
    y = 5 * np.tanh((x - 10) / 1.5) + np.where(machine == "M2", 0.8, 0.0) + rng.normal(0, 0.15, n)
    if fault == "mech_y":
        y = y + np.where(on, 0.9, 0.0)
    if fault == "new_machine":
        machine = np.where(on, "M9", machine)
        y = y + np.where(on, 0.9, 0.0)
    q = 2 * y + rng.normal(0, 0.2, n)
    q2 = q + 0.5 * x + rng.normal(0, 0.2, n)
    x_meas = np.round(x, 3)
    if fault == "stuck_x":
        x_meas[at:] = x_meas[at]
    return pd.DataFrame({"machine": machine, "x": x_meas, "h": np.round(h, 3), "y": y, "q": q, "q2": q2})


@pytest.fixture(scope="module")
def model() -> BatchRootCauseModel:
    graph = KnownGraph(
        ("machine", "x", "h", "y", "q", "q2"),
        frozenset(EDGES),
        tiers=TIERS["variables"],
        categorical=frozenset({"machine"}),
    )
    kn = ProcessKnowledge.from_doc(TIERS)
    return BatchRootCauseModel().fit(_simulate(1500, 1), knowledge=kn, graph=graph)


def test_dag_document_projects_hidden_confounders_and_rejects_cycles() -> None:
    doc = {
        "nodes": [{"name": "u", "observed": False}, "a", "b", {"name": "c", "tier": "quality"}, "h2"],
        "edges": [["u", "a"], ["u", "b"], ["a", "h2"], ["h2", "c"], ["b", "c"]],
    }
    doc["nodes"][4] = {"name": "h2", "observed": False}
    g = KnownGraph.from_doc(doc)
    assert g.nodes == ("a", "b", "c")
    assert g.edges == {("a", "c"), ("b", "c")}  # a -> hidden -> c collapses to a -> c
    assert g.bidirected == {("a", "b")}  # u confounds a and b
    assert g.tiers == {"c": "quality"}
    with pytest.raises(GraphError, match="cycle"):
        KnownGraph.from_doc({"nodes": ["a", "b"], "edges": [["a", "b"], ["b", "a"]]})
    with pytest.raises(GraphError, match="unknown node 'z'"):
        KnownGraph.from_doc({"nodes": ["a"], "edges": [["a", "z"]]})


def test_tiers_are_a_partial_order_and_bad_documents_are_named() -> None:
    kn = ProcessKnowledge.from_doc(TIERS)
    assert kn.allows("h", "machine") is False  # discrete variables are never children
    assert kn.allows("machine", "h") and kn.allows("h", "x") is True  # same rank: either way ... h < x
    assert kn.allows("x", "h") is False  # process does not precede environment
    assert kn.allows("q", "q2") and not kn.allows("q", "y")  # outputs drive outputs only
    with pytest.raises(ConstraintError, match="not in the tier order"):
        ProcessKnowledge.from_doc({"order": ["process"], "variables": {"a": "quality"}})
    with pytest.raises(ConstraintError, match="contradicts"):
        ProcessKnowledge.from_doc({**TIERS, "required": [["q", "x"]]})
    specs, nominal = specs_from_doc({"q": {"lsl": 1, "usl": 3, "nominal": 2}})
    assert specs["q"].lsl == 1 and nominal == {"q": 2.0}
    with pytest.raises(ConstraintError, match=r"lsl 3\.0 >= usl 1\.0"):
        specs_from_doc({"q": {"lsl": 3, "usl": 1}})


def test_detector_statistics_match_their_formulas() -> None:
    e = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    raw = np.array([[5.0, 7.0], [6.0, 7.0], [6.0, 7.0], [8.0, 7.0]])
    st = _stats(e[None], raw[None])[0]
    d = {k: st[i] for i, k in enumerate(DETECTORS)}
    assert d["level_shift"][0] == pytest.approx(1.5 * 2.0)  # |mean| sqrt(w)
    # slope 1 per row; sqrt(sum (t - 1.5)^2) = sqrt(5)
    assert d["drift"][0] == pytest.approx(math.sqrt(5.0))
    assert d["variance"][0] == pytest.approx(math.log(1.25 + 1e-12))
    assert d["outliers"][1] == 1.0
    assert d["stuck"][0] == pytest.approx(1 / 3) and d["stuck"][1] == 1.0
    assert d["cusum"][0] == pytest.approx(2.0 / 2.0)  # cumsum of (e - 1.5) peaks at |-1.5 - 0.5| = 2
    assert _wilson(5, 5) == [pytest.approx(0.5655, abs=1e-4), 1.0]


@pytest.mark.parametrize(
    ("fault", "root", "kind"),
    [
        ("shift_x", "x", "level_shift"),
        ("stuck_x", "x", "stuck"),
        ("mech_y", "y", "level_shift"),
        ("new_machine", "machine", "new_level"),
    ],
)
def test_each_fault_is_attributed_to_its_own_variable(
    model: BatchRootCauseModel, fault: str, root: str, kind: str
) -> None:
    batch = _simulate(40, 11, fault, at=5)
    rk = model.rank(batch)
    assert rk.top is not None and rk.top.variable == root and rk.top.evidence in (kind, "cusum")
    assert all(c.variable not in ("q", "q2") for c in rk.causes)  # symptoms are never causes
    if fault == "shift_x":
        # y follows x through its own (saturating) mechanism: its noise stays normal
        assert rk.variables["y"]["score"] < 3.0 < rk.variables["x"]["score"]
        assert rk.top.path[0] == "x" and rk.top.path[-1] in ("q", "q2") and rk.top.reaches_output


def test_a_change_that_reaches_no_output_ranks_after_one_that_does(model: BatchRootCauseModel) -> None:
    both = _simulate(40, 12, "shift_x", at=0)
    both["h"] = both["h"] + 3.0  # harmless: 15 sd, far stronger evidence than x's
    rk = model.rank(both)
    names = [c.variable for c in rk.causes]
    assert rk.variables["h"]["score"] > rk.variables["x"]["score"]
    assert names.index("x") < names.index("h")
    assert next(c for c in rk.causes if c.variable == "h").path == ["h"]


def test_counterfactual_restores_the_rows_its_root_cause_spoiled(model: BatchRootCauseModel) -> None:
    batch = _simulate(40, 13, "mech_y", at=0)
    batch["y"] += 5.0  # y's own mechanism broke: q (= 2 y + noise) leaves its normal window on many rows
    batch["q"] += 10.0
    batch["q2"] += 10.0
    rk = model.rank(batch)
    assert rk.anomalous_rows >= 15
    top = rk.top
    assert top is not None and top.variable == "y"
    cf = top.counterfactual
    assert cf is not None and cf["anomalous_rows"] == rk.anomalous_rows and set(cf["outputs"]) == {"q", "q2"}
    assert cf["restored_fraction"] >= 0.9 and cf["interval"][0] <= cf["restored_fraction"] <= cf["interval"][1]
    wrong = model.counterfactual(batch, "h")  # h reaches no output: no row is its to restore
    assert wrong["outputs"] == [] and wrong["anomalous_rows"] == 0 and wrong["restored_fraction"] is None
    upstream = model.counterfactual(batch, "x")  # x is normal: clipping it to normal changes nothing
    assert upstream["anomalous_rows"] == rk.anomalous_rows and upstream["restored_fraction"] <= 0.1


def test_bad_input_is_named(model: BatchRootCauseModel) -> None:
    with pytest.raises(NotFittedError):
        BatchRootCauseModel().rank(_simulate(30, 1))
    with pytest.raises(InvalidInput, match="lacks variable"):
        model.rank(_simulate(30, 1).drop(columns=["y"]))
    bad = _simulate(30, 1)
    bad.loc[3, "x"] = np.nan
    with pytest.raises(InvalidInput, match="'x'"):
        model.rank(bad)


def test_learned_graph_recovers_the_chain_and_keeps_discrete_variables_exogenous() -> None:
    data = _simulate(1500, 2)
    g = learn_graph(data, ProcessKnowledge.from_doc(TIERS))
    skel = {frozenset(e) for e in g.edges}
    for u, v in EDGES:
        assert frozenset((u, v)) in skel, (u, v)
    assert not any(v == "machine" for _, v in g.edges)
    assert not any("h" in e for e in g.edges)  # the harmless variable is independent of everything


def _ar1(n: int, phi: float, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + math.sqrt(1 - phi * phi) * rng.standard_normal()
    return out


def test_learned_graph_uses_time_order_and_finds_multiplicative_mechanisms() -> None:
    """Two independent slowly wandering series are not linked (they look correlated in levels); a product
    mechanism with level-proportional noise is found with exactly its two inputs; a linear chain inside
    one tier is oriented so that no false edge appears."""
    rng = np.random.default_rng(11)
    n = 2000
    room = 22 + 1.5 * _ar1(n, 0.995, rng)  # drifts slowly; reaches nothing
    wear = 0.2 + 0.05 * _ar1(n, 0.99, rng)  # drifts slowly too, independent of room
    force = 900 * (1 + wear) * np.exp(0.05 * rng.standard_normal(n))
    speed = 200 + 3 * rng.standard_normal(n)
    power = force * speed / 60_000 * np.exp(0.02 * rng.standard_normal(n))  # P = F v
    a = rng.standard_normal(n)
    b = a + 0.5 * rng.standard_normal(n)
    c = b + 0.5 * rng.standard_normal(n)
    data = pd.DataFrame({"room": room, "wear": wear, "force": force, "speed": speed, "power": power})
    data = data.assign(a=a, b=b, c=c)
    tiers = {
        "order": ["environment", "equipment", "process", "intermediate"],
        "variables": {
            "room": "environment",
            "wear": "equipment",
            "speed": "process",
            "force": "intermediate",
            "power": "intermediate",
            "a": "process",
            "b": "process",
            "c": "process",
        },
    }
    g = learn_graph(data, ProcessKnowledge.from_doc(tiers))
    skel = {frozenset(e) for e in g.edges}
    assert frozenset(("room", "wear")) not in skel
    assert sorted(g.parents("power")) == ["force", "speed"] or ("power", "force") in g.edges
    assert {frozenset(("wear", "force")), frozenset(("force", "power")), frozenset(("speed", "power"))} <= skel
    assert {frozenset(("a", "b")), frozenset(("b", "c"))} <= skel and frozenset(("a", "c")) not in skel
    assert not any("room" in e for e in g.edges)
