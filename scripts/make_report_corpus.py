"""Generate the synthetic lab-report PDF corpus + ground truth under ``tests/fixtures/reports/``.

Deterministic (reportlab ``invariant`` mode, fixed data): running it twice gives identical bytes, so the
outputs are committed and tests never need reportlab. Each ``<name>.pdf`` gets ``<name>.json``::

    {"layout": "...", "expect_error": null | "NeedsOCR", "fields": {"report_id": "...", "results[0].value": ...}}

``fields`` uses the flat paths of :meth:`parsers.report_model.LabReport.flat_values`.

Usage: ``.venv/bin/python scripts/make_report_corpus.py [--out DIR]``
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportlab import rl_config

rl_config.invariant = 1  # no timestamps / random ids in the output: byte-identical reruns

from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.lib.utils import ImageReader  # noqa: E402
from reportlab.pdfbase import pdfmetrics  # noqa: E402
from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "reports"
CJK = "STSong-Light"


@dataclass
class Table:
    columns: list[tuple[str, str | None, float]]  # (header text, result key or None, x)
    rows: list[list[str]]
    repeat_header: bool = True
    rows_first_page: int = 40
    rows_per_page: int = 40
    coverage_factor: str | None = None  # implied by the header ("U (k=2)")
    external_marker: str | None = None


@dataclass
class Report:
    name: str
    layout: str
    font: str = "Helvetica"
    title: list[str] = field(default_factory=list)
    fields: list[tuple[str, str, str | None]] = field(default_factory=list)  # (label, value, gt path)
    value_x: float | None = 210.0  # None: "label value" drawn as one string
    table: Table | None = None
    trailer: list[tuple[str, str, str | None]] = field(default_factory=list)
    footer: str = "Page {page}"
    extra_gt: dict[str, str] = field(default_factory=dict)


def _ground_truth(rep: Report) -> dict[str, str]:
    gt: dict[str, str] = {}
    lists: dict[str, int] = {}
    for _label, value, path in [*rep.fields, *rep.trailer]:
        if path is None:
            continue
        if path.endswith("[]") or "[]." in path:
            base = path.split("[]")[0]
            i = lists.get(base, 0)
            lists[base] = i + 1
            gt[path.replace("[]", f"[{i}]")] = value
        elif path == "dates.performance":
            start, _, end = value.partition(" to ")
            gt["dates.performance_start"] = _iso(start)
            gt["dates.performance_end"] = _iso(end or start)
        elif path.startswith("dates."):
            gt[path] = _iso(value)
        else:
            gt[path] = value
    if rep.table:
        for r, row in enumerate(rep.table.rows):
            for (_hdr, key, _x), cell in zip(rep.table.columns, row, strict=True):
                if key is None:
                    continue
                if key == "quantity" and rep.table.external_marker and cell.endswith(rep.table.external_marker):
                    cell = cell[: -len(rep.table.external_marker)].rstrip()
                if key in {"value", "uncertainty"} and "," in cell and cell.replace(",", "").isdigit():
                    cell = cell.replace(",", ".")
                gt[f"results[{r}].{key}"] = cell
            if rep.table.coverage_factor and any(k == "uncertainty" for _h, k, _x in rep.table.columns):
                gt[f"results[{r}].coverage_factor"] = rep.table.coverage_factor
    gt.update(rep.extra_gt)
    return gt


def _iso(text: str) -> str:
    text = text.strip()
    if "." in text:
        d, m, y = text.split(".")
        return f"{int(y):04d}-{int(m):02d}-{int(d):02d}"
    if "年" in text:
        y, rest = text.split("年")
        m, rest = rest.split("月")
        return f"{int(y):04d}-{int(m):02d}-{int(rest.rstrip('日')):02d}"
    return text.replace("/", "-")


def render(rep: Report) -> bytes:
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    c.setTitle(rep.name)
    width, height = A4
    page = 1
    y = height - 60

    def font(size: float = 10) -> None:
        c.setFont(rep.font, size)

    def footer() -> None:
        font(8)
        c.drawString(50, 30, rep.footer.format(page=page))

    def new_page() -> None:
        nonlocal page, y
        footer()
        c.showPage()
        page += 1
        y = height - 60

    for i, line in enumerate(rep.title):
        font(16 if i == 0 else 11)
        c.drawString(50, y, line)
        y -= 22 if i == 0 else 16
    y -= 8

    def draw_pairs(pairs: list[tuple[str, str, str | None]]) -> None:
        nonlocal y
        font(10)
        for label, value, _path in pairs:
            if y < 80:
                new_page()
                font(10)
            if rep.value_x is None:
                c.drawString(50, y, f"{label} {value}")
            else:
                c.drawString(50, y, label)
                c.drawString(rep.value_x, y, value)
            y -= 16

    draw_pairs(rep.fields)
    if rep.table:
        t = rep.table
        y -= 10

        def header() -> None:
            nonlocal y
            font(9)
            for hdr, _key, x in t.columns:
                c.drawString(x, y, hdr)
            y -= 6
            c.line(50, y, width - 50, y)
            y -= 12

        header()
        font(9)
        on_page = 0
        limit = t.rows_first_page
        for row in t.rows:
            if on_page >= limit:
                new_page()
                on_page = 0
                limit = t.rows_per_page
                if t.repeat_header:
                    header()
                font(9)
            for (_hdr, _key, x), cell in zip(t.columns, row, strict=True):
                c.drawString(x, y, cell)
            y -= 14
            on_page += 1
        y -= 10
    draw_pairs(rep.trailer)
    footer()
    c.save()
    return buf.getvalue()


def scanned_pdf() -> bytes:
    """An image-only page (a 'scan'): no text layer at all."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (850, 1100), 255)
    draw = ImageDraw.Draw(img)
    for i, text in enumerate(["TEST REPORT", "Report No.: SCAN-0001", "Customer: Example GmbH", "Result: 12.5 mm"]):
        draw.text((80, 80 + 40 * i), text, fill=0)
    for i in range(20):
        draw.line((80, 300 + 30 * i, 770, 300 + 30 * i), fill=120)
    png = io.BytesIO()
    img.save(png, format="PNG")
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.drawImage(ImageReader(io.BytesIO(png.getvalue())), 0, 0, width=A4[0], height=A4[1])
    c.showPage()
    c.save()
    return buf.getvalue()


def reports() -> list[Report]:
    """The corpus: one entry per layout."""
    out: list[Report] = []

    # 1. CNAS-style bilingual Chinese/English test report
    out.append(
        Report(
            name="cnas_bilingual_test_report",
            layout="cnas_bilingual",
            font=CJK,
            title=["检测报告 Test Report", "华测精密检测中心 Huace Precision Testing Center (CNAS L1234)"],
            value_x=230,
            fields=[
                ("报告编号 Report No.:", "HT-2024-0815", "report_id"),
                ("委托单位 Client:", "Shenzhen Bright Components Co., Ltd.", "customer.name"),
                ("委托单位地址 Client address:", "No. 8 Keji Road, Nanshan, Shenzhen", "customer.address"),
                ("样品名称 Sample name:", "Aluminium housing 6061-T6", "items[0].description"),
                ("样品编号 Sample No.:", "S-240815-01", "items[0].id"),
                ("样品状态 Sample condition:", "Intact, no visible damage", "items[0].condition"),
                ("收样日期 Date of receipt:", "2024年08月15日", "dates.receipt"),
                ("检测日期 Test date:", "2024-08-16 to 2024-08-19", "dates.performance"),
                ("检测依据 Test method:", "GB/T 228.1-2021", "methods[].standard"),
                ("检测地点 Test location:", "Laboratory, Building 3", "location"),
            ],
            table=Table(
                columns=[
                    ("检测项目 Test item", "quantity", 50),
                    ("单位 Unit", "unit", 200),
                    ("限值 Limit", None, 270),
                    ("检测结果 Result", "value", 350),
                    ("判定 Verdict", "verdict", 460),
                ],
                rows=[
                    ["抗拉强度 Rm", "MPa", ">= 260", "312", "合格 Pass"],
                    ["屈服强度 Rp0.2", "MPa", ">= 240", "276", "合格 Pass"],
                    ["断后伸长率 A", "%", ">= 8", "11.5", "合格 Pass"],
                    ["硬度 HBW", "HBW", ">= 95", "101", "合格 Pass"],
                ],
            ),
            trailer=[
                ("检测结论 Conclusion:", "The sample meets GB/T 3191 requirements", "conformity_statement"),
                ("判定规则 Decision rule:", "Simple acceptance, ILAC-G8:09/2019", "decision_rule"),
                ("签发日期 Date of issue:", "2024年08月20日", "dates.issue"),
                ("批准人 Approved by:", "Wang Li (Technical Manager)", "authorised_by[].name"),
            ],
            footer="第 {page} 页 Page {page}",
        )
    )
    out[-1].extra_gt = {"authorised_by[0].name": "Wang Li", "authorised_by[0].role": "Technical Manager"}

    # 2. multi-page RoHS / material test report, results table spans pages, header repeated
    substances = [
        "Lead (Pb)",
        "Cadmium (Cd)",
        "Mercury (Hg)",
        "Chromium VI (Cr6+)",
        "PBB",
        "PBDE",
        "DEHP",
        "BBP",
        "DBP",
        "DIBP",
    ]
    parts = [f"P{i:02d}" for i in range(1, 7)]
    rows = []
    for pi, part in enumerate(parts):
        for si, sub in enumerate(substances):
            val = "ND" if (pi + si) % 3 else f"{(pi + 1) * (si + 2) * 1.7:.1f}"
            rows.append([part, sub, "mg/kg", "1000" if si != 1 else "100", val, "Pass"])
    out.append(
        Report(
            name="rohs_multipage_material_report",
            layout="rohs_generic",
            title=["Test Report", "Rhein Materials Testing GmbH - RoHS compliance screening"],
            fields=[
                ("Report No.:", "RMT-24-11873", "report_id"),
                ("Customer:", "Lumatec Lighting AG", "customer.name"),
                ("Laboratory:", "Rhein Materials Testing GmbH", "lab.name"),
                ("Laboratory address:", "Industriestr. 12, 50667 Koeln, DE", "lab.address"),
                ("Sample description:", "LED driver board assembly", "items[0].description"),
                ("Sample ID:", "LT-DRV-220", "items[0].id"),
                ("Date of receipt:", "02.09.2024", "dates.receipt"),
                ("Test period:", "03.09.2024 to 06.09.2024", "dates.performance"),
                ("Test method:", "IEC 62321-3-1:2013", "methods[].standard"),
                ("Test method:", "IEC 62321-8:2017", "methods[].standard"),
                ("Sampling plan:", "Disassembly to homogeneous materials per IEC 62321-2", "sampling_plan"),
            ],
            table=Table(
                columns=[
                    ("Sample", "sample_id", 50),
                    ("Analyte", "quantity", 100),
                    ("Unit", "unit", 250),
                    ("Limit", None, 300),
                    ("Result", "value", 370),
                    ("Verdict", "verdict", 450),
                ],
                rows=rows,
                repeat_header=True,
                rows_first_page=22,
                rows_per_page=45,
            ),
            trailer=[
                (
                    "Statement of conformity:",
                    "All tested materials comply with Directive 2011/65/EU",
                    "conformity_statement",
                ),
                (
                    "Decision rule:",
                    "Result compared with limit, measurement uncertainty not considered",
                    "decision_rule",
                ),
                ("Date of issue:", "09.09.2024", "dates.issue"),
                ("Approved by:", "Dr. Jonas Weber (Head of Laboratory)", "authorised_by[].name"),
            ],
            footer="Page {page}",
        )
    )
    out[-1].extra_gt = {"authorised_by[0].name": "Dr. Jonas Weber", "authorised_by[0].role": "Head of Laboratory"}

    # 3. tensile test report (ISO 6892-1), own profile with unusual labels
    out.append(
        Report(
            name="tensile_iso6892_report",
            layout="meridian_mechanical",
            title=["MERIDIAN MECHANICAL TESTING LTD", "Tensile Test Report"],
            value_x=180,
            fields=[
                ("Our ref.:", "MMT/T/2024/0412", "report_id"),
                ("Ordered by:", "Castleford Forgings plc", "customer.name"),
                ("Specimen:", "Round bar B10, S355J2", "items[0].description"),
                ("Specimen ref.:", "CF-8812-A", "items[0].id"),
                ("Received:", "2024/04/08", "dates.receipt"),
                ("Tested on:", "2024/04/10", "dates.performance"),
                ("Test standard:", "ISO 6892-1:2019 method A224", "methods[].standard"),
                ("Test laboratory:", "Meridian Mechanical Testing Ltd, Sheffield", "lab.name"),
            ],
            table=Table(
                columns=[
                    ("Property", "quantity", 50),
                    ("Requirement", None, 200),
                    ("Measured", "value", 300),
                    ("Unit", "unit", 370),
                    ("U (k=2)", "uncertainty", 420),
                    ("Verdict", "verdict", 490),
                ],
                rows=[
                    ["ReH", ">= 355", "398", "MPa", "6", "Pass"],
                    ["Rm", "470-630", "544", "MPa", "7", "Pass"],
                    ["A5", ">= 22", "27.5", "%", "0.8", "Pass"],
                    ["Z", "-", "61", "%", "2", "Info"],
                ],
                coverage_factor="2",
            ),
            trailer=[
                ("Deviation:", "Specimen 2 re-tested after extensometer slip", "deviations[]"),
                ("Issued:", "2024/04/11", "dates.issue"),
                ("Signed:", "R. Hartley (Quality Manager)", "authorised_by[].name"),
            ],
            footer="MMT-QF-07 rev 3   Page {page}",
        )
    )
    out[-1].extra_gt = {"authorised_by[0].name": "R. Hartley", "authorised_by[0].role": "Quality Manager"}

    # 4. dimensional inspection report, table continues on the next page WITHOUT a repeated header
    feats = []
    for i in range(1, 49):
        nominal = 10 + i * 0.5
        actual = nominal + ((i * 7) % 11 - 5) * 0.004
        feats.append(
            [
                f"F{i:03d}",
                f"Diameter D{i}",
                f"{nominal:.3f}",
                f"{actual:.3f}",
                "mm",
                "OK" if abs(actual - nominal) <= 0.02 else "NOK",
            ]
        )
    out.append(
        Report(
            name="dimensional_inspection_report",
            layout="precision_metrology",
            title=["Precision Metrology Services", "Dimensional Inspection Report"],
            value_x=None,
            fields=[
                ("Inspection report no.:", "PMS-DI-77031", "report_id"),
                ("Client:", "Vortex Pumps GmbH", "customer.name"),
                ("Part:", "Impeller housing VX-40, drawing 40-110 rev C", "items[0].description"),
                ("Serial no.:", "VX40-0193", "items[0].id"),
                ("Measured on:", "2024-05-21", "dates.performance"),
                ("Measuring equipment:", "CMM Zeiss Contura, probe 3 mm", None),
                ("Method:", "VDA 5 / ISO 10360-2 verified CMM", "methods[].standard"),
            ],
            table=Table(
                columns=[
                    ("Feature", "sample_id", 50),
                    ("Characteristic", "quantity", 110),
                    ("Nominal", None, 250),
                    ("Actual", "value", 320),
                    ("Unit", "unit", 390),
                    ("Result", "verdict", 450),
                ],
                rows=feats,
                repeat_header=False,
                rows_first_page=30,
                rows_per_page=45,
            ),
            trailer=[
                ("Conformity:", "2 features out of tolerance, part rejected", "conformity_statement"),
                ("Report date:", "2024-05-22", "dates.issue"),
                ("Inspector:", "M. Kovac (CMM Operator)", "authorised_by[].name"),
            ],
            footer="PMS - confidential - page {page}",
        )
    )
    out[-1].extra_gt = {"authorised_by[0].name": "M. Kovac", "authorised_by[0].role": "CMM Operator"}

    # 5. coating thickness report, generic fallback, "U (k=2)" header
    out.append(
        Report(
            name="coating_thickness_report",
            layout="coating_generic",
            title=["Test Report", "Surface Lab Nord - coating thickness"],
            value_x=190,
            fields=[
                ("Test Report No.:", "SLN-CT-5521", "report_id"),
                ("Customer:", "Baltic Steelworks AS", "customer.name"),
                ("Sample description:", "Hot-dip galvanised bracket", "items[0].description"),
                ("Sample ID:", "BSW-GB-17", "items[0].id"),
                ("Condition of item:", "As received, cleaned", "items[0].condition"),
                ("Date of test:", "14.03.2024", "dates.performance"),
                ("Test method:", "ISO 2178:2016", "methods[].standard"),
                ("Location of testing:", "Customer site, Tallinn", "location"),
            ],
            table=Table(
                columns=[
                    ("Characteristic", "quantity", 50),
                    ("Value", "value", 220),
                    ("Unit", "unit", 290),
                    ("U (k=2)", "uncertainty", 350),
                    ("Verdict", "verdict", 440),
                ],
                rows=[
                    ["Zinc layer, point 1", "86.4", "um", "2.1", "Pass"],
                    ["Zinc layer, point 2", "91.0", "um", "2.1", "Pass"],
                    ["Zinc layer, point 3", "79.8", "um", "2.1", "Pass"],
                    ["Zinc layer, mean", "85.7", "um", "1.5", "Pass"],
                ],
                coverage_factor="2",
            ),
            trailer=[
                ("Decision rule:", "Guarded acceptance, w = U", "decision_rule"),
                ("Date of issue:", "15.03.2024", "dates.issue"),
                ("Authorised by:", "Liis Tamm (Laboratory Manager)", "authorised_by[].name"),
            ],
        )
    )
    out[-1].extra_gt = {"authorised_by[0].name": "Liis Tamm", "authorised_by[0].role": "Laboratory Manager"}

    # 6. calibration certificate of another lab (German/English, decimal commas)
    out.append(
        Report(
            name="nordcal_calibration_certificate",
            layout="nordcal",
            title=["NordCal Kalibrierdienst GmbH", "Kalibrierschein / Calibration certificate"],
            value_x=250,
            fields=[
                ("Zertifikat-Nr. / Certificate No.:", "NC-24-D-0099", "report_id"),
                ("Auftraggeber / Customer:", "Hanse Instruments KG", "customer.name"),
                ("Gegenstand / Object:", "Digital caliper 0-150 mm", "items[0].description"),
                ("Seriennummer / Serial number:", "HI-CAL-4471", "items[0].id"),
                ("Kalibrierdatum / Date of calibration:", "11.06.2024", "dates.performance"),
                ("Verfahren / Procedure:", "DKD-R 4-3 Blatt 9.1", "methods[].standard"),
                ("Kalibrierort / Place of calibration:", "Permanent laboratory", "location"),
            ],
            table=Table(
                columns=[
                    ("Messpunkt / Point", "quantity", 50),
                    ("Messwert / Value", "value", 200),
                    ("Einheit / Unit", "unit", 300),
                    ("Unsicherheit / Uncertainty", "uncertainty", 370),
                    ("k", "coverage_factor", 500),
                ],
                rows=[
                    ["Outside 10 mm", "10,002", "mm", "0,012", "2"],
                    ["Outside 50 mm", "50,004", "mm", "0,013", "2"],
                    ["Outside 100 mm", "99,997", "mm", "0,015", "2"],
                    ["Outside 150 mm", "150,006", "mm", "0,018", "2"],
                ],
            ),
            trailer=[
                ("Ausstellungsdatum / Date of issue:", "12.06.2024", "dates.issue"),
                ("Leiter / Head of laboratory:", "Dipl.-Ing. Sven Ohlsen", "authorised_by[].name"),
            ],
            footer="Seite {page} / Page {page}",
        )
    )

    # 7. amended report (amends an earlier id), single-string "label value" lines
    out.append(
        Report(
            name="amended_salt_spray_report",
            layout="amended_generic",
            title=["Test Report", "Amendment 1 - Corrosion Test Lab Ostrava"],
            value_x=None,
            fields=[
                ("Report No.:", "CTL-2024-0311-A1", "report_id"),
                ("Amends report:", "CTL-2024-0311", "amends_report_id"),
                ("Customer:", "Moravia Fasteners s.r.o.", "customer.name"),
                ("Sample description:", "Zinc-flake coated bolts M10", "items[0].description"),
                ("Test method:", "ISO 9227:2022 NSS", "methods[].standard"),
                ("Test period:", "2024-02-01 to 2024-03-14", "dates.performance"),
                ("Deviation:", "Chamber stop of 2 h on day 12, test extended accordingly", "deviations[]"),
            ],
            table=Table(
                columns=[
                    ("Sample", "sample_id", 50),
                    ("Characteristic", "quantity", 120),
                    ("Result", "value", 320),
                    ("Unit", "unit", 390),
                    ("Verdict", "verdict", 450),
                ],
                rows=[
                    ["B1", "Time to red rust", "1008", "h", "Pass"],
                    ["B2", "Time to red rust", "984", "h", "Pass"],
                    ["B3", "Time to red rust", "720", "h", "Fail"],
                ],
            ),
            trailer=[
                ("Statement of conformity:", "Sample B3 does not meet 960 h requirement", "conformity_statement"),
                ("Date of issue:", "2024-03-20", "dates.issue"),
                ("Approved by:", "Ing. Petra Novak (Deputy Head)", "authorised_by[].name"),
            ],
        )
    )
    out[-1].extra_gt = {"authorised_by[0].name": "Ing. Petra Novak", "authorised_by[0].role": "Deputy Head"}

    # 8. report with results from an external provider (marked with *), own profile
    out.append(
        Report(
            name="external_provider_chem_report",
            layout="alpine_chem",
            title=["ALPINE CHEMLAB AG", "Analysis Report"],
            value_x=200,
            fields=[
                ("Analysis report:", "ACL-88120", "report_id"),
                ("Principal:", "Tirol Polymer GmbH", "customer.name"),
                ("Material:", "PA66 GF30 granulate, lot 2291", "items[0].description"),
                ("Lot:", "2291", "items[0].id"),
                ("Sampling date:", "2024-07-01", "dates.sampling"),
                ("Analysis date:", "2024-07-03 to 2024-07-05", "dates.performance"),
            ],
            table=Table(
                columns=[
                    ("Parameter", "quantity", 50),
                    ("Result", "value", 230),
                    ("Unit", "unit", 300),
                    ("Method", None, 370),
                ],
                rows=[
                    ["Glass fibre content", "30.4", "%", "ISO 3451-1"],
                    ["Moisture", "0.12", "%", "ISO 15512"],
                    ["Halogen content*", "< 50", "mg/kg", "EN 14582"],
                    ["Melting point*", "262", "C", "ISO 11357-3"],
                ],
                external_marker="*",
            ),
            trailer=[
                (
                    "External provider:",
                    "* Analysed by PolyLab Innsbruck (accredited, ISO/IEC 17025)",
                    "external_providers[]",
                ),
                ("Release date:", "2024-07-08", "dates.issue"),
                ("Released by:", "Dr. Eva Gruber (Head of Analytics)", "authorised_by[].name"),
            ],
        )
    )
    out[-1].extra_gt = {"authorised_by[0].name": "Dr. Eva Gruber", "authorised_by[0].role": "Head of Analytics"}
    return out


def main() -> None:
    """Write every corpus PDF and its ground truth."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    pdfmetrics.registerFont(UnicodeCIDFont(CJK))
    for rep in reports():
        (out / f"{rep.name}.pdf").write_bytes(render(rep))
        gt: dict[str, Any] = {"layout": rep.layout, "expect_error": None, "fields": _ground_truth(rep)}
        (out / f"{rep.name}.json").write_text(
            json.dumps(gt, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
    (out / "scanned_image_only.pdf").write_bytes(scanned_pdf())
    (out / "scanned_image_only.json").write_text(
        json.dumps({"layout": "scanned", "expect_error": "NeedsOCR", "fields": {}}, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(reports()) + 1} reports to {out}")


if __name__ == "__main__":
    main()
