"""The portal's SVG charts: what is drawn where, named for screen readers, the same numbers as a table."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from app.portal.charts import Chart, Series

NS = {"s": "http://www.w3.org/2000/svg"}


def _svg(chart: Chart) -> ET.Element:
    return ET.fromstring(str(chart.svg()))


def test_a_chart_is_named_and_described_for_screen_readers_and_escapes_text() -> None:
    chart = Chart("c1", "Cpk <trend>", "oldest first & newest last", ["L<1>"], [Series("Cpk", [1.5])])
    root = _svg(chart)  # parses: every text was escaped
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c1-title c1-desc"
    assert (
        root.find("s:title", NS).text == "Cpk <trend>" and root.find("s:desc", NS).text == "oldest first & newest last"
    )
    assert "L<1>" in [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_bars_are_as_tall_as_their_values() -> None:
    chart = Chart("c2", "t", "d", ["Q0", "Q1", "Q2"], [Series("score", [25.0, 50.0, None])], kind="bar")
    heights = [float(r.get("height")) for r in _svg(chart).iter("{http://www.w3.org/2000/svg}rect")][:2]
    assert abs(heights[1] / heights[0] - 2.0) < 0.01  # a bar axis starts at 0, so 50 is twice 25
    assert len([r for r in _svg(chart).iter("{http://www.w3.org/2000/svg}rect")]) == 2 + 1  # Q2 absent + legend


def test_a_missing_value_breaks_the_line_and_the_table_says_so() -> None:
    chart = Chart("c3", "t", "d", list("abcde"), [Series("x", [1.0, 2.0, None, 3.0, 4.0])], refs=[("min", 1.33)])
    lines = [p.get("points") for p in _svg(chart).iter("{http://www.w3.org/2000/svg}polyline")]
    assert [len(p.split()) for p in lines] == [2, 2]
    assert chart.rows()[2] == ("c", ["—"]) and chart.rows()[0] == ("a", ["1"])
    # the reference line is drawn at its value and labelled with it
    assert re.search(r"min 1.33</text>", str(chart.svg()))


def test_a_chart_without_data_draws_no_axes() -> None:
    chart = Chart("c4", "t", "d", ["Q0"], [Series("x", [None])])
    assert chart.empty and _svg(chart).find("s:g", NS) is None


def test_long_axis_labels_are_thinned_and_the_table_keeps_every_full_label() -> None:
    from app.portal.i18n import Lang

    moments = [1_796_083_200 + k * 3600 for k in range(8)]  # 2026-12-01 00:00 UTC, hourly
    for code, axis, table in (
        ("en", "01/12/2026, 00:00", "1 Dec 2026, 00:00:00 UTC"),
        ("zh", "2026/12/1 00:00", "2026年12月1日 00:00:00 UTC"),
    ):
        lang = Lang(code)
        chart = Chart(
            "c5",
            "t",
            "d",
            [lang.short_datetime(t) for t in moments],
            [Series("x", [float(k) for k in range(8)])],
            table_labels=[lang.datetime(t) for t in moments],
        )
        drawn = [t.text for t in _svg(chart).iter("{http://www.w3.org/2000/svg}text")]
        assert axis in drawn
        assert 1 < sum(1 for t in drawn if t and ":" in t and "/" in t) < 8  # some labels, not all 8 overlapping
        assert next(r[0] for r in chart.rows()) == table and len(chart.rows()) == 8


def test_a_line_over_time_places_its_points_in_proportion_to_their_moments() -> None:
    day = 86_400
    moments = [0, 60, 91 * day]  # two funding changes a minute apart, the third a quarter later
    chart = Chart("c6", "t", "d", ["a", "b", "c"], [Series("x", [1.0, 2.0, 3.0])], positions=moments)
    xs = [float(c.get("cx")) for c in _svg(chart).iter("{http://www.w3.org/2000/svg}circle")]
    assert xs[1] - xs[0] < 1 < xs[2] - xs[1]  # not evenly spaced: a minute is nothing next to a quarter
    drawn = [t.text for t in _svg(chart).iter("{http://www.w3.org/2000/svg}text")]
    assert "a" in drawn and "c" in drawn and "b" not in drawn  # "b" would sit on top of "a"
