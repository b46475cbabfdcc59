"""Manufacturing simulator: determinism, faults and labelled cases."""

from __future__ import annotations

import numpy as np
import pytest

from models.causal import Tier
from models.errors import InvalidInput, UnknownVariable
from models.simulate import PROCESS_MODELS, Fault, get_process, make_cases, random_process


def test_process_models_sizes_tiers_and_determinism():
    for name in PROCESS_MODELS:
        scm = get_process(name)
        assert 10 <= len(scm.variables) <= 60
        assert {scm.by_name[v].tier for v in scm.variables} == set(Tier)
        a, b = scm.sample(100, seed=4), scm.sample(100, seed=4)
        assert a.equals(b)
        assert not a.equals(scm.sample(100, seed=5))
        for c in scm.characteristics:  # in-control data is (almost always) in spec
            s = scm.specs[c]
            assert ((a[c] >= s.lsl) & (a[c] <= s.usl)).mean() > 0.98


def test_faults_change_the_right_variable():
    scm = get_process("plasma_deposition")
    base = scm.sample(400, seed=1)
    shifted = scm.sample(400, seed=1, fault=Fault("mean_shift", "rf_power", 5.0, onset=200))
    assert np.allclose(shifted["rf_power"][:200], base["rf_power"][:200])
    assert np.allclose(shifted["rf_power"][200:] - base["rf_power"][200:], 15.0)
    assert np.allclose(shifted["gas_flow_sih4"], base["gas_flow_sih4"])  # not downstream
    stuck = scm.sample(400, seed=1, fault=Fault("stuck_sensor", "pressure_sensor", 3.0, onset=100))
    assert stuck["pressure_sensor"][100:].nunique() == 1 and stuck["pressure_sensor"][100] == 830.0
    var = scm.sample(4000, seed=1, fault=Fault("variance", "gas_flow_sih4", 3.0, onset=0))
    assert var["gas_flow_sih4"].std() == pytest.approx(3 * base["gas_flow_sih4"].std(), rel=0.15)
    with pytest.raises(InvalidInput, match="fault kind"):
        Fault("meltdown", "rf_power", 1.0)
    with pytest.raises(UnknownVariable):
        scm.sample(10, seed=1, fault=Fault("drift", "nope", 1.0))


def test_cases_are_labelled_visible_and_deterministic():
    scm = get_process("heat_treatment")
    cases = make_cases(scm, 10, seed=2)
    assert cases == make_cases(scm, 10, seed=2)
    assert {c.kind for c in cases} == {"mean_shift", "drift", "variance", "stuck_sensor", "material_lot"}
    for c in cases:
        assert abs(c.z_characteristic) >= 3.5
        assert c.root_cause in scm.graph.nodes and c.characteristic in scm.characteristics
        import networkx as nx

        assert c.root_cause in nx.ancestors(scm.graph, c.characteristic)
        if c.kind == "material_lot":
            assert scm.by_name[c.root_cause].tier is Tier.MATERIAL


def test_random_process_is_tiered_and_sized():
    scm = random_process(200, seed=0)
    assert len(scm.variables) == 200
    cons = scm.constraints()
    assert all(cons.allows(u, v) for u, v in scm.edges)
