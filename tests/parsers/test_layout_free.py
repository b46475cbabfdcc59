"""Layout-free reading of PDFs no profile knows: randomised synthetic layouts, and one test per feature a
user would check (accreditation vs distractors, date forms, bilingual labels, sections over page breaks,
merged method cells, two-level headers, transposed tables, rotated sidebars, decimal commas)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from parsers.lexicon import classify_header, normalise_date, value_shape
from parsers.limits import Limits
from parsers.pdf import parse_pdf
from parsers.pdf_accuracy import source_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "scripts"))
from synth_reports import make_report


def _parse(pdf: bytes):
    return parse_pdf(pdf, source=source_of(pdf, "pdf"), limits=Limits())


def _rows(rep) -> list[tuple[str, str, str | None]]:
    return [(r.quantity.value, r.value.value, r.sample_id.value if r.sample_id else None) for r in rep.results]


@pytest.mark.parametrize("seed", range(12))
def test_random_layout_is_read(seed: int) -> None:
    pdf, truth = make_report(seed)
    rep = _parse(pdf)
    got = _rows(rep)
    found = sum(
        1
        for row in truth.results
        if any(q == row["quantity"] and v == row["value"] and (row.get("sample") in (None, s)) for q, v, s in got)
    )
    assert found >= 0.9 * len(truth.results), (truth.features, found, len(truth.results))
    flat = rep.flat_values()
    if rep.accreditation is not None:
        flat["accreditation.body"] = rep.accreditation.body.value
        flat["accreditation.id"] = rep.accreditation.id.value
    wrong = {k: (v, flat.get(k)) for k, v in truth.header.items() if flat.get(k) != v}
    assert not wrong, (truth.features, wrong)
    assert not rep.review.required


def _find_seed(**want: object) -> tuple[bytes, object]:
    for seed in range(400):
        pdf, truth = make_report(seed)
        if all(truth.features.get(k) == v for k, v in want.items()):
            return pdf, truth
    raise AssertionError(f"no seed with {want}")


def test_accreditation_is_the_labs_own_not_the_traceability_or_cma_number() -> None:
    pdf, truth = _find_seed(lang="zh")
    rep = _parse(pdf)
    assert rep.accreditation is not None
    assert rep.accreditation.id.value == truth.header["accreditation.id"]
    assert rep.accreditation.id.value != "D-K-15183-01-00"  # the reference standard's lab, on the same page


def test_continued_table_keeps_its_section_across_the_page_break() -> None:
    pdf, truth = _find_seed(sections=True, repeat_header=False, transposed=False, two_level=False)
    rep = _parse(pdf)
    assert len(rep.results) >= len(truth.results)
    pages = {r.value.provenance.page for r in rep.results}
    parts = [r.test_part.value for r in rep.results if r.test_part is not None]
    assert parts and parts[0].startswith("Part 1")
    if len(pages) > 1:  # rows after the break still belong to a part
        later = [r for r in rep.results if r.value.provenance.page == max(pages)]
        assert all(r.test_part is not None for r in later)


def test_two_level_header_gives_one_row_per_sample() -> None:
    pdf, _truth = _find_seed(two_level=True)
    rep = _parse(pdf)
    samples = {r.sample_id.value for r in rep.results if r.sample_id is not None}
    assert samples == {"1#", "2#"}


def test_transposed_table_reads_test_points_in_columns() -> None:
    pdf, truth = _find_seed(transposed=True)
    rep = _parse(pdf)
    got = {(q, v) for q, v, _ in _rows(rep)}
    assert {(r["quantity"], r["value"]) for r in truth.results} <= got
    assert all(r.uncertainty is not None for r in rep.results)


def test_wide_table_with_grouped_columns_gives_parameter_sample_and_limits() -> None:
    pdf, truth = _find_seed(grouped=True)
    rep = _parse(pdf)
    got = {(q, v, s) for q, v, s in _rows(rep)}
    assert {(r["quantity"], r["value"], r["sample"]) for r in truth.results} <= got
    assert all(r.lower_limit is not None and r.upper_limit is not None for r in rep.results)
    assert all(float(r.lower_limit.value) < float(r.upper_limit.value) for r in rep.results)


def test_merged_method_cell_applies_to_the_rows_below() -> None:
    pdf, _truth = _find_seed(merged_method=True, transposed=False)
    rep = _parse(pdf)
    assert rep.results and all(r.method is not None for r in rep.results)


def test_rotated_sidebar_does_not_displace_header_fields() -> None:
    pdf, truth = _find_seed(sidebar=True, header="colon")
    rep = _parse(pdf)
    assert rep.report_id is not None and rep.report_id.value == truth.header["report_id"]
    assert rep.customer.name is not None and rep.customer.name.value != "Nobody"


def test_decimal_comma_is_normalised() -> None:
    pdf, _truth = _find_seed(decimal_comma=True, transposed=False)
    rep = _parse(pdf)
    assert not any("," in r.value.value for r in rep.results if r.value.value[:1].isdigit())


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024年3月5日", "2024-03-05"),
        ("30 Sep 21", "2021-09-30"),
        ("05.03.2024", "2024-03-05"),
        ("2024-03-05", "2024-03-05"),
        ("03/05/2024", "2024-03-05"),
        ("25/03/2024", "2024-03-25"),
        ("5 Mar 2024", "2024-03-05"),
        ("March 5, 2024", "2024-03-05"),
        ("5. März 2024", "2024-03-05"),
        ("Datum: 05.03.2024 / Date", "2024-03-05"),
    ],
)
def test_date_forms(text: str, iso: str) -> None:
    assert normalise_date(text) == iso


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("检测项目", "quantity"),
        ("Prüfgröße", "quantity"),
        ("Paramètre", "quantity"),
        ("Parámetro", "quantity"),
        ("試験項目", "quantity"),
        ("检测结果 Result", "value"),
        ("Messwert / Measured value", "value"),
        ("Résultat", "value"),
        ("測定値", "value"),
        ("技术要求", "limit"),
        ("Spec Max", "upper"),
        ("LSL", "lower"),
        ("MDL", "mdl"),
        ("LOD (MG/G)", "mdl"),
        ("U (k=2)", "uncertainty"),
        ("单项判定", "verdict"),
        ("Bewertung", "verdict"),
        ("mg/g", "value"),
        ("Prüfverfahren", "method"),
        ("Einheit", "unit"),
    ],
)
def test_header_lexicon(header: str, key: str) -> None:
    assert classify_header(header)[0] == key


@pytest.mark.parametrize(
    ("text", "shape"),
    [("12,5", "number"), ("-0.25", "number"), ("N.D.", "token"), ("<0.5", "bound"), ("≤ 1000", "bound"),
     ("Negative", "token"), ("0.5-1.5", "range"), ("未检出", "token"), ("Lead", None), ("NR", "token"),
     ("938.3 mg/g (93.83 %)", "number")],
)  # fmt: skip
def test_value_shapes(text: str, shape: str | None) -> None:
    assert value_shape(text) == shape


def test_names_across_the_top_with_a_unit_row_below_are_read_as_results() -> None:
    pdf, truth = _find_seed(transposed="names_across")
    rep = _parse(pdf)
    got = {(q, v) for q, v, _ in _rows(rep)}
    assert {(r["quantity"], r["value"]) for r in truth.results} <= got
    # the detection-limit row is attached to each analyte, not read as results of its own
    assert all(r.mdl is not None for r in rep.results)
    assert len(rep.results) == len(truth.results)


def _drawn(lines: list[tuple[float, float, str]], cjk: bool = False) -> bytes:
    """A one-page PDF with each ``(x, y_from_top, text)`` drawn as given."""
    import io

    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    if cjk:
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c.setFont("STSong-Light" if cjk else "Helvetica", 9)
    for x, y, text in lines:
        c.drawString(x, A4[1] - y, text)
    c.showPage()
    c.save()
    return buf.getvalue()


def test_wrapped_names_words_results_and_not_applicable_rows_in_a_chinese_table() -> None:
    head = [
        (60, 100, "检验项目"),
        (220, 100, "单位"),
        (300, 100, "技术要求"),
        (380, 100, "检验结果"),
        (460, 100, "单项判定"),
    ]
    rows = [
        (60, 124, "干擦（50次）"),
        (300, 124, "≥4"),
        (380, 124, "4-5"),
        (460, 124, "符合"),
        # the name wraps around its values: half above, half below
        (60, 142, "碱性汗液（20"),
        (225, 148, "级"),
        (300, 148, "≥3"),
        (380, 148, "4-5"),
        (460, 148, "符合"),
        (70, 154, "次）"),
        # rows of the table with nothing to report keep the table open
        (60, 172, "干擦（500次）"),
        (300, 172, "≥4"),
        (385, 172, "/"),
        (465, 172, "/"),
        (60, 190, "湿擦（250次）"),
        (300, 190, "≥3"),
        (385, 190, "/"),
        (465, 190, "/"),
        (60, 208, "撕裂强度（纵向）"),
        (300, 208, "≥3"),
        (385, 208, "/"),
        (465, 208, "/"),
        (60, 226, "色牢度（横向）"),
        (300, 226, "≥3"),
        (385, 226, "/"),
        (465, 226, "/"),
        (60, 244, "耐折牢度（常温）"),
        (300, 244, "≥3"),
        (385, 244, "/"),
        (465, 244, "/"),
        (60, 262, "气味（干态）"),
        (300, 262, "≥3"),
        (385, 262, "/"),
        (465, 262, "/"),
        # a result in words, judged by the verdict beside it
        (60, 280, "耐磨性（500r）"),
        (300, 280, "无明显损伤"),
        (380, 280, "无异常"),
        (460, 280, "符合"),
    ]
    rep = _parse(_drawn(head + rows, cjk=True))
    got = {(q, v) for q, v, _ in _rows(rep)}
    assert got == {("干擦（50次）", "4-5"), ("碱性汗液（20次）", "4-5"), ("耐磨性（500r）", "无异常")}


def test_label_value_pairs_that_touch_section_markers_and_sample_identifiers() -> None:
    pdf = _drawn(
        [
            (60, 80, "Sample:DA20330006-001"),
            (60, 100, "Batch:"),
            (250, 100, "Received: 05/31/2022"),
            (60, 130, "[B] Client Info"),
            (60, 145, "ARL Healthcare"),
            (60, 170, "Analyte"),
            (200, 170, "Result"),
            (300, 170, "Unit"),
            (60, 185, "Lead"),
            (200, 185, "0.12"),
            (300, 185, "mg/kg"),
        ]
    )
    rep = _parse(pdf)
    flat = rep.flat_values()
    assert flat.get("items[0].id") == "DA20330006-001"
    assert flat.get("dates.receipt") == "2022-05-31"
    assert flat.get("customer.name") == "ARL Healthcare"


def test_weight_percent_header_is_a_result_column_in_percent() -> None:
    assert classify_header("WEIGHT %") == ("value", "%")
    assert classify_header("% by weight") == ("value", "%")


def test_several_pairs_in_one_cell_a_grid_label_with_its_value_below_and_dual_unit_values() -> None:
    pdf = _drawn(
        [
            (60, 60, "Client:"),
            (160, 60, "Final Report"),
            (215, 60, "XYZ-S22-10010 Rev.01.00"),
            (60, 72, "Commonwealth Alternative"),
            (60, 84, "Care"),
            (60, 96, "30 Mozzone Blvd"),
            (60, 120, "Sample Received: 12/14/2021; Report Created: 12/20/2021; Expires: 12/20/2022"),
            (60, 140, "COLLECTED, RECEIVED"),
            (60, 152, "05/26/2021 11:22, 05/27/2021 03:42"),
            (60, 180, "Analyte"),
            (200, 180, "Result"),
            (320, 180, "LOD"),
            (60, 195, "THCa"),
            (200, 195, "938.3 mg/g (93.83 %)"),
            (320, 195, "0.2000"),
            (60, 210, "CBDV"),
            (200, 210, "NR"),
            (320, 210, "0.2000"),
            (60, 230, "SAMPLE ID: 340796 | LICENSE: C8-0000012-LIC"),
        ]
    )
    rep = _parse(pdf)
    flat = rep.flat_values()
    assert flat.get("customer.name") == "Commonwealth Alternative Care"  # not "Final Report"
    assert flat.get("report_id") == "XYZ-S22-10010 Rev.01.00"
    assert flat.get("dates.issue") == "2021-12-20"
    assert flat.get("dates.sampling") == "2021-05-26"
    assert flat.get("items[0].id") == "340796"
    # "Sample Received" on the pair line and "RECEIVED" in the grid agree
    assert flat.get("dates.receipt") in ("2021-12-14", "2021-05-27")
    rows = {r.quantity.value: (r.value.value, r.unit.value if r.unit else None) for r in rep.results}
    assert rows["THCa"] == ("938.3", "mg/g")
    assert rows["CBDV"][0] == "NR"


def test_grid_label_keeps_the_value_beside_it_when_the_next_row_is_a_grid_row_too() -> None:
    pdf = _drawn(
        [
            (60, 60, "Client:"),
            (200, 60, "ACME Testing Customer"),
            (60, 72, "Contact person"),
            (200, 72, "John Smith"),
        ]
    )
    assert _parse(pdf).flat_values().get("customer.name") == "ACME Testing Customer"


def test_a_label_cut_by_wide_word_spacing_is_joined_back() -> None:
    pdf = _drawn([(60, 60, "SAMPLE"), (110, 60, "ID: 340796"), (300, 60, "Weight: 3.5 g")])
    assert _parse(pdf).flat_values().get("items[0].id") == "340796"


def test_a_report_title_followed_by_a_date_gives_no_report_number() -> None:
    pdf = _drawn([(60, 60, "Final Report"), (250, 60, "2021-05-01"), (60, 80, "Sample ID: S-0042")])
    flat = _parse(pdf).flat_values()
    assert flat.get("items[0].id") == "S-0042"
    assert flat.get("report_id") is None
