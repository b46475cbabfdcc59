"""Control chart rendering: valid PNG/SVG with limits and labelled rule violations."""

from __future__ import annotations

import io
import re

import pytest
from defusedxml import ElementTree

from models.charts import control_chart
from models.errors import InvalidInput
from models.spc import IndividualsChart, SPCResult
from models.spec import SpecLimit

SPEC = SpecLimit(characteristic="thickness_nm", lsl=470.0, usl=530.0, nominal=500.0, unit="nm")
BASELINE = [500 + (3 if i % 3 == 0 else -2) + (i % 5) * 0.5 for i in range(25)]


@pytest.fixture(scope="module")
def result() -> SPCResult:
    chart = IndividualsChart("thickness_nm").fit(BASELINE)
    sig = chart.limits.sigma
    c = chart.limits.center
    # a 3-sigma excursion (rule 1) then a 2-of-3 beyond 2 sigma pair (rule 5)
    new = [c + 0.3 * sig, c + 3.5 * sig, c, c - 2.5 * sig, c + 0.2 * sig, c - 2.6 * sig]
    res = chart.score(BASELINE + new)
    assert {1, 5} <= set(res.rules_fired)
    return res


def test_svg_contains_limits_and_rule_labels(result: SPCResult) -> None:
    svg = control_chart(
        result, spec=SPEC, fmt="svg", unit="nm", first_new=25, labels=[f"S{i:03d}" for i in range(len(result.points))]
    ).decode()
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    texts = " ".join(t.strip() for t in re.findall(r">([^<>]+)</text>", svg))
    for label in ("R1", "R5", "UCL", "LCL", "USL 530", "LSL 470", "Individuals chart: thickness_nm", "batch"):
        assert label in texts, label
    assert "one point beyond 3 sigma" in texts
    # one violation marker annotation per firing
    assert texts.count("R1") == 1 + sum(v.rule == 1 for v in result.violations)


def test_png_is_a_valid_image_of_the_requested_size(result: SPCResult) -> None:
    from matplotlib.image import imread

    png = control_chart(result, spec=SPEC, fmt="png", dpi=80)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(io.BytesIO(png), format="png")
    assert img.shape[:2] == (360, 800)


def test_svg_output_is_deterministic(result: SPCResult) -> None:
    assert control_chart(result, fmt="svg") == control_chart(result, fmt="svg")


def test_bad_arguments_are_named(result: SPCResult) -> None:
    with pytest.raises(InvalidInput) as err:
        control_chart(result, fmt="gif")  # type: ignore[arg-type]
    assert err.value.field == "fmt"
    with pytest.raises(InvalidInput) as err:
        control_chart(result, labels=["a"])
    assert err.value.field == "labels"
