"""Spec limits: verdicts, margins, Cp/Cpk against hand-computed values."""

from __future__ import annotations

import math

import pytest

from models.errors import InsufficientData, InvalidInput
from models.spec import SpecLimit, capability, check_value, check_values, parse_spec

LIM = SpecLimit(characteristic="bore_mm", lsl=9.7, usl=10.5, nominal=10.0, unit="mm")


def test_value_inside_passes_with_margins_to_both_limits() -> None:
    v = check_value(10.1, LIM)
    assert v.verdict == "pass"
    assert v.margin_low == pytest.approx(0.4)
    assert v.margin_high == pytest.approx(0.4)
    assert v.margin == pytest.approx(0.4)


def test_value_above_usl_fails_high_with_negative_margin() -> None:
    v = check_value(10.6, LIM)
    assert v.verdict == "fail_high"
    assert v.margin_high == pytest.approx(-0.1)
    assert v.margin_low == pytest.approx(0.9)
    assert v.margin == pytest.approx(-0.1)


def test_value_below_lsl_fails_low() -> None:
    v = check_value(9.5, LIM)
    assert v.verdict == "fail_low"
    assert v.margin == pytest.approx(-0.2)


def test_limits_are_inclusive() -> None:
    assert [r.verdict for r in check_values([9.7, 10.5], LIM)] == ["pass", "pass"]
    assert check_value(9.7, LIM).margin == 0.0


def test_one_sided_upper_limit() -> None:
    lim = SpecLimit(characteristic="roughness_um", usl=0.8)
    low = check_value(0.1, lim)
    assert low.verdict == "pass" and low.margin_low is None and low.margin == pytest.approx(0.7)
    assert check_value(0.9, lim).verdict == "fail_high"


def test_non_finite_value_is_invalid_input_naming_the_characteristic() -> None:
    with pytest.raises(InvalidInput) as err:
        check_value(math.nan, LIM)
    assert err.value.field == "bore_mm"


def test_capability_worked_example_from_docstring() -> None:
    c = capability([9.9, 10.0, 10.1, 10.0, 10.0], LIM)
    sigma = math.sqrt(0.02 / 4)  # 0.0707107
    assert c.n == 5 and c.mean == pytest.approx(10.0) and c.std == pytest.approx(sigma)
    assert c.cp == pytest.approx(0.8 / (6 * sigma))  # 1.8856
    assert c.cpu == pytest.approx(0.5 / (3 * sigma))  # 2.3570
    assert c.cpl == pytest.approx(0.3 / (3 * sigma))  # 1.4142
    assert c.cpk == pytest.approx(1.4142, abs=1e-4)


def test_capability_with_given_sigma_and_one_sided_limit() -> None:
    c = capability([1.0, 2.0, 3.0], SpecLimit(characteristic="x", lsl=0.0), sigma=0.5)
    assert c.cp is None and c.cpu is None
    assert c.cpk == pytest.approx(2.0 / 1.5)


def test_capability_needs_two_values_and_nonzero_spread() -> None:
    with pytest.raises(InsufficientData) as err:
        capability([10.0], LIM)
    assert (err.value.needed, err.value.got) == (2, 1)
    with pytest.raises(InvalidInput):
        capability([10.0, 10.0, 10.0], LIM)


def test_parse_spec_accepts_dicts_and_rejects_bad_limits_naming_them() -> None:
    spec = parse_spec(
        {
            "bore_mm": {"lsl": 9.7, "usl": 10.5, "unit": "mm"},
            "len": LIM.model_copy(update={"characteristic": "len"}),
        }
    )
    assert spec["bore_mm"].usl == 10.5 and spec["len"].lsl == 9.7
    with pytest.raises(InvalidInput) as err:
        parse_spec({"flat": {"lsl": 2.0, "usl": 1.0}})
    assert err.value.field == "flat"
    with pytest.raises(InvalidInput) as err:
        parse_spec({"none": {"unit": "mm"}})
    assert err.value.field == "none"
