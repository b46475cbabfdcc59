"""SPC: chart limits from a baseline and the eight Nelson rules, each on a hand-made series."""

from __future__ import annotations

import pytest

from models.errors import InsufficientData, InvalidInput, NotFittedError
from models.spc import WESTERN_ELECTRIC, IndividualsChart, XBarChart, nelson_rules

# centre 0, sigma 1: each series fires exactly one rule, at the given index, with the given points
RULE_CASES = {
    1: ([0.5, -0.5, 0.5, 3.5, -0.5, 0.5], 3, [3]),
    2: ([-0.5, 0.5, 0.3, 0.6, 0.2, 0.7, 0.4, 0.8, 0.3, 0.5], 9, list(range(1, 10))),
    3: ([0.0, -0.5, -0.4, -0.2, 0.0, 0.2, 0.4, 0.3], 6, list(range(1, 7))),
    4: ([0.5, -0.5] * 7, 13, list(range(14))),
    5: ([0.5, -0.5, 2.5, 0.5, 2.5, -0.5], 4, [2, 4]),
    6: ([-0.5, 1.5, 1.5, 0.5, 1.5, 1.5, -0.5], 5, [1, 2, 4, 5]),
    7: ([0.1, 0.2, -0.1, -0.2] * 3 + [0.1, 0.2, -0.1], 14, list(range(15))),
    8: ([1.5, -1.5] * 4, 7, list(range(8))),
}

CLEAN = [
    0.3,
    -0.2,
    0.8,
    -0.6,
    0.1,
    0.4,
    -1.2,
    0.5,
    -0.3,
    0.2,
    1.1,
    -0.4,
    0.0,
    -0.7,
    0.6,
    0.2,
    -0.1,
    0.9,
    -0.5,
    0.3,
]


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_each_rule_fires_alone_at_the_expected_index(rule: int) -> None:
    series, index, indices = RULE_CASES[rule]
    v = nelson_rules(series, center=0.0, sigma=1.0)
    assert [(x.rule, x.index) for x in v] == [(rule, index)]
    assert v[0].indices == indices
    assert v[0].name


def test_clean_series_fires_nothing() -> None:
    assert nelson_rules(CLEAN, center=0.0, sigma=1.0) == []


def test_rules_use_given_centre_and_sigma() -> None:
    series, _, _ = RULE_CASES[1]
    shifted = [10 + 2 * x for x in series]
    assert [x.rule for x in nelson_rules(shifted, center=10.0, sigma=2.0)] == [1]
    assert nelson_rules(shifted, center=10.0, sigma=3.0) == []


def test_longer_run_fires_at_each_further_point() -> None:
    v = nelson_rules([0.5] * 10, center=0.0, sigma=1.0)
    assert [(x.rule, x.index) for x in v] == [(2, 8), (2, 9)]
    assert v[0].side == "above"


def test_rule1_reports_side_and_western_electric_number() -> None:
    (v,) = nelson_rules([0.0, -3.2, 0.0], center=0.0, sigma=1.0)
    assert (v.rule, v.side, v.western_electric) == (1, "below", 1)


def test_western_electric_set_uses_run_of_eight() -> None:
    series = [-0.5] + [0.5] * 8
    assert nelson_rules(series, 0.0, 1.0) == []
    (v,) = nelson_rules(series, 0.0, 1.0, rules=WESTERN_ELECTRIC)
    assert (v.rule, v.western_electric, v.index, v.indices) == (2, 4, 8, list(range(1, 9)))
    assert "8 points" in v.name
    # WE 2 is Nelson 5
    (v5,) = nelson_rules(RULE_CASES[5][0], 0.0, 1.0, rules=WESTERN_ELECTRIC)
    assert (v5.rule, v5.western_electric) == (5, 2)


def test_point_on_centre_line_breaks_a_run() -> None:
    assert nelson_rules([0.5] * 4 + [0.0] + [0.5] * 4, 0.0, 1.0) == []


def test_individuals_chart_limits_worked_example() -> None:
    chart = IndividualsChart("bore", min_baseline=5).fit([10, 12, 11, 13, 12])
    lim = chart.limits
    assert lim.center == pytest.approx(11.6)
    assert lim.sigma == pytest.approx(1.5 / 1.128)
    assert lim.ucl == pytest.approx(11.6 + 3 * 1.5 / 1.128)
    assert lim.lcl == pytest.approx(11.6 - 3 * 1.5 / 1.128)
    res = chart.score([11.6, 16.0])
    assert [(v.rule, v.index) for v in res.violations] == [(1, 1)]
    assert res.rules_fired == [1] and res.characteristic == "bore"


def test_individuals_chart_needs_fit_and_enough_baseline() -> None:
    with pytest.raises(NotFittedError):
        IndividualsChart().score([1.0, 2.0])
    with pytest.raises(InsufficientData) as err:
        IndividualsChart("bore").fit([1.0] * 5)
    assert (err.value.needed, err.value.got) == (20, 5)
    assert "bore" in str(err.value)
    with pytest.raises(InvalidInput):
        IndividualsChart(min_baseline=3).fit([1.0, 1.0, 1.0])


def test_xbar_chart_limits_hand_computed() -> None:
    base = [[1.0, 3.0], [2.0, 4.0], [3.0, 3.0], [2.0, 2.0]]  # ranges 2,2,0,0 -> R̄ = 1
    chart = XBarChart(min_baseline=4).fit(base)
    lim = chart.limits
    assert lim.center == pytest.approx(2.5)
    assert lim.sigma == pytest.approx(1.0 / (1.128 * 2**0.5))
    assert lim.subgroup_size == 2
    res = chart.score([[2.5, 2.5], [5.0, 5.0]])
    assert res.points == [2.5, 5.0]
    assert [(v.rule, v.index) for v in res.violations] == [(1, 1)]
    with pytest.raises(InvalidInput):
        chart.score([[1.0, 2.0, 3.0]])


def test_non_finite_values_are_rejected_with_index() -> None:
    with pytest.raises(InvalidInput, match="index 2"):
        nelson_rules([0.0, 1.0, float("nan")], 0.0, 1.0)
    with pytest.raises(InvalidInput):
        nelson_rules([0.0], 0.0, 0.0)
