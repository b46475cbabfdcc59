"""Random lab-report layouts for testing the layout-free PDF reader (not one template per layout).

``make_report(seed)`` draws every layout feature independently from the seed and returns the PDF bytes and
the truth it was rendered from (never read back from the parser):

* language of the labels: English, German/English, Chinese/English, French, Spanish;
* header arrangement: ``Label: value``, label above value, grid cells with ruling lines, several pairs on one
  line (``;`` / ``|``); letter-spaced
  (U+3000) Chinese titles; date forms ISO, German, US, Chinese, ``6 Nov 2021``;
* the lab's accreditation (CNAS, A2LA, UKAS, DAkkS, HOKLAS, SWEDAC) with distractors (a CMA number, a
  reference standard's accreditation in a traceability statement), an optional superseded report number;
* results table: shuffled column order, bordered or borderless, decimal comma or point, values such as
  ``N.D.``, ``<0.5``, ``Negative``, ``≤ 1000`` limits, a merged method cell printed once per group,
  section headings (test parts), a two-level ``Result`` over ``1#``/``2#`` header, continuation over pages
  with or without a repeated header, or a transposed table (test points in columns);
* a rotated sidebar text in the margin; portrait or landscape pages.

Usage: ``.venv/bin/python scripts/synth_reports.py OUT_DIR [--count N]`` writes ``synth_<seed>.pdf`` + json.
"""

from __future__ import annotations

import io
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

CJK = "STSong-Light"

LABELS: dict[str, dict[str, str]] = {
    "en": {"title": "TEST REPORT", "report_id": "Report No.", "customer": "Client", "sample": "Sample ID",
           "issue": "Date of issue", "receipt": "Date received", "supersedes": "Supersedes report",
           "quantity": "Test item", "method": "Test method", "unit": "Unit", "limit": "Limit",
           "value": "Result", "mdl": "MDL", "verdict": "Verdict", "point": "Test point",
           "measured": "Measured value", "unc": "Uncertainty"},
    "de": {"title": "PRÜFBERICHT / TEST REPORT", "report_id": "Berichtsnummer / Report No.",
           "customer": "Auftraggeber / Customer", "sample": "Probennummer / Sample ID",
           "issue": "Ausstellungsdatum / Date of issue", "receipt": "Eingangsdatum / Date received",
           "supersedes": "Ersetzt Bericht / Supersedes report", "quantity": "Prüfgröße", "method": "Prüfverfahren",
           "unit": "Einheit", "limit": "Grenzwert", "value": "Messwert", "mdl": "Bestimmungsgrenze",
           "verdict": "Bewertung", "point": "Prüfpunkt", "measured": "Messwert", "unc": "Messunsicherheit"},
    "zh": {"title": "检\u3000测\u3000报\u3000告", "report_id": "报告编号 Report No.", "customer": "委托单位 Client",
           "sample": "样品编号 Sample ID", "issue": "签发日期 Date of issue", "receipt": "收样日期 Date received",
           "supersedes": "替代报告 Supersedes", "quantity": "检测项目", "method": "检测方法", "unit": "单位",
           "limit": "技术要求", "value": "检测结果", "mdl": "检出限", "verdict": "单项判定", "point": "检测点",
           "measured": "实测值", "unc": "不确定度"},
    "fr": {"title": "RAPPORT D'ESSAI", "report_id": "Rapport n°", "customer": "Client", "sample": "N° échantillon",
           "issue": "Date d'émission", "receipt": "Date de réception", "supersedes": "Remplace le rapport",
           "quantity": "Paramètre", "method": "Méthode", "unit": "Unité", "limit": "Limite", "value": "Résultat",
           "mdl": "Limite de détection", "verdict": "Conformité", "point": "Point", "measured": "Valeur mesurée",
           "unc": "Incertitude"},
    "es": {"title": "INFORME DE ENSAYO", "report_id": "Número de informe", "customer": "Cliente",
           "sample": "Número de muestra", "issue": "Fecha de emisión", "receipt": "Fecha de recepción",
           "supersedes": "Reemplaza al informe", "quantity": "Parámetro", "method": "Método", "unit": "Unidad",
           "limit": "Límite", "value": "Resultado", "mdl": "Límite de detección", "verdict": "Conformidad",
           "point": "Punto", "measured": "Valor medido", "unc": "Incertidumbre"},
}  # fmt: skip

ANALYTES = [
    ("Lead (Pb)", "mg/kg"), ("Cadmium (Cd)", "mg/kg"), ("Mercury (Hg)", "mg/kg"), ("Chromium VI", "mg/kg"),
    ("PBB", "mg/kg"), ("PBDE", "mg/kg"), ("DEHP", "%"), ("Tensile strength", "MPa"), ("Yield strength", "MPa"),
    ("Elongation", "%"), ("Hardness", "HV10"), ("Coating thickness", "µm"), ("Salt spray", "h"),
    ("Moisture", "%"), ("Ash content", "%"), ("pH value", "-"), ("Density", "g/cm3"), ("Flash point", "°C"),
    ("Zinc (Zn)", "mg/kg"), ("Nickel release", "µg/cm2/week"), ("Formaldehyde", "mg/kg"), ("Benzene", "ppm"),
]  # fmt: skip
METHODS = ["IEC 62321-5:2013", "IEC 62321-7-2:2017", "ISO 6892-1:2019", "EN 1811:2011", "GB/T 228.1-2021"]
BODIES = [("CNAS", "L{n}"), ("A2LA", "{n}.01"), ("UKAS", "{n}"), ("DAkkS", "D-PL-{n5}-01-00"), ("HOKLAS", "{m}"),
          ("SWEDAC", "{n}")]  # fmt: skip


def _register_vera() -> None:
    """Bitstream Vera (shipped with reportlab): a TrueType font with ≤, µ, ° and accented letters."""
    import os

    import reportlab
    from reportlab.pdfbase.ttfonts import TTFont

    if "Vera" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("Vera", os.path.join(os.path.dirname(reportlab.__file__), "fonts", "Vera.ttf")))


@dataclass
class Truth:
    header: dict[str, str] = field(default_factory=dict)
    results: list[dict[str, str]] = field(default_factory=list)
    features: dict[str, Any] = field(default_factory=dict)


def _date(rng: random.Random, y: int, m: int, d: int, cjk: bool) -> tuple[str, str]:
    import calendar

    form = rng.choice(["iso", "de", "us", "zh", "dMy"] if cjk else ["iso", "de", "us", "dMy"])
    printed = {
        "iso": f"{y:04d}-{m:02d}-{d:02d}",
        "de": f"{d:02d}.{m:02d}.{y:04d}",
        "us": f"{m:02d}/{d:02d}/{y:04d}",
        "zh": f"{y}年{m}月{d}日",
        "dMy": f"{d} {calendar.month_abbr[m]} {y}",
    }[form]
    return printed, f"{y:04d}-{m:02d}-{d:02d}"


def _value(rng: random.Random, comma: bool, dual: bool = False) -> tuple[str, str]:
    """(printed, expected as the parser reports it: decimal comma turned into a point)."""
    kind = rng.random()
    if kind < 0.15:
        return "N.D.", "N.D."
    if kind < 0.25:
        v = f"<{rng.choice(['0.5', '2', '0.05'])}"
    elif kind < 0.3:
        return "Negative", "Negative"
    elif kind < 0.33:
        return "NR", "NR"
    elif kind < 0.37 and dual:
        # one result in two units: reported as the first figure
        v = f"{rng.uniform(1, 900):.1f}"
        printed = f"{v} mg/g ({float(v) / 10:.2f} %)"
        return (printed.replace(".", ",") if comma else printed), v
    else:
        v = f"{rng.uniform(0.01, 900):.{rng.choice([1, 2, 3])}f}"
    return (v.replace(".", ",") if comma else v), v


def make_report(seed: int) -> tuple[bytes, Truth]:
    """One randomised report (PDF bytes, truth)."""
    rng = random.Random(seed)
    lang = rng.choice(list(LABELS))
    lab = LABELS[lang]
    cjk = lang == "zh"
    font = CJK if cjk else "Vera"
    if cjk:
        pdfmetrics.registerFont(UnicodeCIDFont(CJK))
    else:
        _register_vera()
    transposed = rng.random() < 0.15
    grouped = not transposed and lang in ("en", "de") and rng.random() < 0.15
    land = grouped or (not transposed and rng.random() < 0.2)
    size = landscape(A4) if land else A4
    t = Truth()
    f = t.features
    f.update(lang=lang, landscape=land, transposed=transposed, grouped=grouped)
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=size)
    height = size[1]
    body = 10

    def sidebar() -> None:
        if f.get("sidebar"):
            c.saveState()
            c.translate(20, 120)
            c.rotate(90)
            c.setFont(font, 7)
            c.drawString(0, 0, "Form QR-17 rev.4  Report No. FAKE-000  Customer: Nobody  printed copy")
            c.restoreState()

    f["sidebar"] = rng.random() < 0.5
    y = height - 60
    c.setFont(font, 14)
    c.drawString(60, y, lab["title"])
    y -= 34
    rid = f"{rng.choice(['TR', 'QT', 'LAB', 'R'])}-{rng.randint(2019, 2025)}-{rng.randint(100, 99999):05d}"
    customer = rng.choice(["Nordic Castings AB", "Shenzhen Bright Electronics Co., Ltd.", "Acme Fasteners Inc.",
                           "Müller Präzision GmbH", "Ateliers Durand SAS", "Talleres García S.L."])  # fmt: skip
    if cjk:  # the CJK font has no accented Latin letters
        customer = customer.replace("ü", "ue").replace("ä", "ae").replace("í", "i")
    sample = f"S{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
    issue_p, issue = _date(rng, rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28), cjk)
    rec_p, rec = _date(rng, rng.randint(2019, 2025), rng.randint(1, 12), rng.randint(1, 28), cjk)
    pairs = [("report_id", rid, rid), ("customer", customer, customer), ("sample", sample, sample),
             ("issue", issue_p, issue), ("receipt", rec_p, rec)]  # fmt: skip
    if rng.random() < 0.25:
        old = rid[:-1] + str((int(rid[-1]) + 1) % 10)
        pairs.append(("supersedes", old, old))
        t.header["amends_report_id"] = old
    keymap = {"report_id": "report_id", "customer": "customer.name", "sample": "items[0].id",
              "issue": "dates.issue", "receipt": "dates.receipt"}  # fmt: skip
    for k, _p, want in pairs:
        if k in keymap:
            t.header[keymap[k]] = want
    arrangement = rng.choice(["colon", "above", "grid", "pairs"])
    f["header"] = arrangement
    c.setFont(font, body)
    if arrangement == "pairs":
        # several "Label: value" pairs on one line, separated by ";" or "|"
        sep = rng.choice(["; ", " | "])
        per_line = rng.choice([2, 3])
        for i in range(0, len(pairs), per_line):
            chunk = pairs[i : i + per_line]
            c.drawString(60, y, sep.join(f"{lab[k]}: {printed}" for k, printed, _w in chunk))
            y -= 16
    for i, (k, printed, _w) in enumerate(pairs if arrangement != "pairs" else []):
        label = lab[k]
        if arrangement == "colon":
            c.drawString(60, y, f"{label}: {printed}")
            y -= 16
        elif arrangement == "above":
            x = 60 + (i % 2) * 260
            c.setFont(font, 8)
            c.drawString(x, y, label)
            c.setFont(font, body)
            c.drawString(x, y - 12, printed)
            if i % 2 == 1 or i == len(pairs) - 1:
                y -= 34
        else:
            c.rect(55, y - 5, 200, 16)
            c.rect(255, y - 5, 260, 16)
            c.drawString(60, y, label)
            c.drawString(262, y, printed)
            y -= 16
    body_name, fmt = rng.choice(BODIES)
    acc_id = fmt.format(n=rng.randint(1000, 9999), m=rng.randint(100, 999), n5=rng.randint(10000, 99999))
    t.header["accreditation.body"] = body_name
    t.header["accreditation.id"] = acc_id
    y -= 8
    c.setFont(font, 8)
    if rng.random() < 0.5:
        c.drawString(60, y, f"CMA No. {rng.randint(100000, 999999)}")
        y -= 11
    c.drawString(60, y, f"Accredited by {body_name}, accreditation No. {acc_id} (ISO/IEC 17025).")
    y -= 11
    if rng.random() < 0.6:
        c.drawString(60, y, "Traceability: reference standards calibrated by an accredited lab, DAkkS D-K-15183-01-00.")
        y -= 11
    y -= 14
    comma = rng.random() < 0.4
    f["decimal_comma"] = comma
    if grouped:
        _grouped(c, rng, t, font, y, comma)
        sidebar()
        c.showPage()
        c.save()
        return buf.getvalue(), t
    if transposed:
        _transposed(c, rng, t, lab, font, y, comma)
        sidebar()
        c.showPage()
        c.save()
        return buf.getvalue(), t
    cols = ["quantity", "method", "unit", "limit", "value", "mdl", "verdict"]
    optional = [k for k in cols if k not in ("quantity", "value")]
    rng.shuffle(optional)
    keep = optional[: rng.randint(1, len(optional))]
    order = ["quantity", *keep, "value"]
    rng.shuffle(order)
    if order[0] != "quantity" and rng.random() < 0.7:
        order.remove("quantity")
        order.insert(0, "quantity")
    two_level = "value" in order and rng.random() < 0.25
    f.update(columns=order, two_level=two_level)
    bordered = rng.random() < 0.5
    repeat_header = rng.random() < 0.5
    f.update(bordered=bordered, repeat_header=repeat_header)
    n_rows = rng.randint(4, 34)
    sections = rng.random() < 0.4
    merged = "method" in order and rng.random() < 0.5
    f.update(rows=n_rows, sections=sections, merged_method=merged)
    widths = {"quantity": 150, "method": 110, "unit": 55, "limit": 65, "value": 70, "mdl": 75, "verdict": 60}
    if two_level:
        widths["value"] = 110
    dual = not two_level and rng.random() < 0.3  # this table may print results in two units: "735.8 mg/g (73.58 %)"
    if dual:
        widths["value"] = max(widths["value"], 125)
    f["dual_values"] = dual
    for k in order:  # a column is at least as wide as its header plus a gap
        widths[k] = max(widths[k], pdfmetrics.stringWidth(lab[k], font, 9) + 14)
    x0 = 60
    xs: dict[str, float] = {}
    x = x0
    for k in order:
        xs[k] = x
        x += widths[k]
    right = x

    def header(yh: float) -> float:
        c.setFont(font, 9)
        for k in order:
            if k == "value" and two_level:
                c.drawString(xs[k], yh, lab["value"])
                c.drawString(xs[k], yh - 12, "1#")
                c.drawString(xs[k] + 55, yh - 12, "2#")
            else:
                c.drawString(xs[k], yh, lab[k])
        if bordered:
            c.line(x0 - 4, yh + 12, right, yh + 12)
            c.line(x0 - 4, yh - (17 if two_level else 5), right, yh - (17 if two_level else 5))
        return yh - (30 if two_level else 18)

    y = header(y)
    c.setFont(font, 9)
    bottom = 70
    method = rng.choice(METHODS)
    part = None
    for i in range(n_rows):
        if sections and i % 5 == 0:
            part = f"Part {i // 5 + 1}: {rng.choice(['housing', 'cable', 'screw', 'coating', 'label'])}"
            if y < bottom + 30:
                sidebar()
                c.showPage()
                y = height - 60
                if repeat_header:
                    y = header(y)
                c.setFont(font, 9)
            c.drawString(x0, y, part)
            y -= 14
        if y < bottom:
            sidebar()
            c.showPage()
            c.setFont(font, 8)
            c.drawString(60, height - 40, f"{rid}  page continued")
            y = height - 70
            if repeat_header:
                y = header(y)
            c.setFont(font, 9)
        name, unit = ANALYTES[i % len(ANALYTES)]
        if i >= len(ANALYTES):
            name = f"{name} #{i // len(ANALYTES) + 1}"
        printed, want = _value(rng, comma, dual)
        for k in order:
            if k == "quantity":
                c.drawString(xs[k], y, name)
            elif k == "method":
                if merged and i % 3 != 0:
                    continue
                method = rng.choice(METHODS) if merged else method
                c.drawString(xs[k], y, method)
            elif k == "unit":
                c.drawString(xs[k], y, unit)
            elif k == "limit":
                c.drawString(xs[k], y, rng.choice(["≤ 1000", "100", "0,5-1,5" if comma else "0.5-1.5", "Negative"]))
            elif k == "value":
                c.drawString(xs[k], y, printed)
                if two_level:
                    p2, w2 = _value(rng, comma, dual)
                    c.drawString(xs[k] + 55, y, p2)
            elif k == "mdl":
                c.drawString(xs[k], y, "0,5" if comma else "0.5")
            elif k == "verdict":
                c.drawString(xs[k], y, rng.choice(["Pass", "P", "合格" if cjk else "Pass"]))
        row = {"quantity": name, "value": want}
        if two_level:
            row["sample"] = "1#"
            t.results.append(row)
            t.results.append({"quantity": name, "value": w2, "sample": "2#"})
        else:
            t.results.append(row)
        if bordered:
            c.line(x0 - 4, y - 4, right, y - 4)
        y -= 15
    sidebar()
    c.showPage()
    c.save()
    return buf.getvalue(), t


def _transposed(c: Any, rng: random.Random, t: Truth, lab: dict[str, str], font: str, y: float, comma: bool) -> None:
    if rng.random() < 0.5:
        _names_across(c, rng, t, lab, font, y, comma)
        return
    points = [str(p) for p in sorted(rng.sample([1, 2, 5, 10, 20, 50, 100, 200], rng.randint(3, 6)))]
    c.setFont(font, 9)
    xs = [60 + 130 + 70 * i for i in range(len(points))]
    c.drawString(60, y, lab["point"])
    for x, p in zip(xs, points, strict=True):
        c.drawString(x, y, p)
    y -= 16
    c.drawString(60, y, lab["measured"])
    measured = []
    for x, p in zip(xs, points, strict=True):
        v = f"{float(p) * rng.uniform(0.98, 1.02):.3f}"
        c.drawString(x, y, v.replace(".", ",") if comma else v)
        measured.append(v)
    y -= 16
    c.drawString(60, y, lab["unc"])
    for x in xs:
        u = f"{rng.uniform(0.001, 0.05):.3f}"
        c.drawString(x, y, u.replace(".", ",") if comma else u)
    for p, v in zip(points, measured, strict=True):
        t.results.append({"quantity": f"{lab['point']} {p}", "value": v})


def _names_across(c: Any, rng: random.Random, t: Truth, lab: dict[str, str], font: str, y: float, comma: bool) -> None:
    """Analytes across the top, one row per unit and one of detection limits below (no column words)."""
    t.features["transposed"] = "names_across"
    names = rng.sample(
        ["Pb", "Cd", "Hg", "Cr(VI)", "PBB", "PBDE", "DEHP", "BBP", "DBP", "DIBP", "Ni"], rng.randint(4, 8)
    )
    unit = rng.choice(["mg/kg", "%", "ppm", "mg/g"])
    c.setFont(font, 9)
    xs = [60 + 60 + 52 * i for i in range(len(names))]
    for x, n in zip(xs, names, strict=True):
        c.drawString(x, y, n)
    y -= 14
    c.drawString(60, y, unit)
    for x, n in zip(xs, names, strict=True):
        printed, expected = _value(rng, comma)
        c.drawString(x, y, printed)
        t.results.append({"quantity": n, "value": expected})
    y -= 14
    c.drawString(60, y, rng.choice(["LOD", "MDL", lab["mdl"]]) if lab["mdl"] in ("MDL", "检出限") else "LOD")
    for x in xs:
        v = rng.choice(["0.5", "2", "5", "0.05"])
        c.drawString(x, y, v.replace(".", ",") if comma else v)


def _grouped(c: Any, rng: random.Random, t: Truth, font: str, y: float, comma: bool) -> None:
    """Wide inspection table: one row per sample, each parameter a group of LSL / USL / Measured columns."""
    params = rng.sample(["Thickness (µm)", "Width (mm)", "Weight (g)", "Density (g/cm3)", "Porosity (%)"], 3)
    sub = ["LSL", "USL", "Measured"]
    x0 = 60
    c.setFont(font, 8)
    for g, p in enumerate(params):
        gx = x0 + 80 + g * 200
        c.drawString(gx + 40, y, p)
        c.line(gx, y - 3, gx + 180, y - 3)
        for k, name in enumerate(sub):
            c.drawString(gx + k * 60, y - 14, name)
    c.drawString(x0, y - 14, "Sample")
    y -= 32
    for r in range(rng.randint(4, 12)):
        sid = f"L{r + 1:02d}"
        c.drawString(x0, y, sid)
        for g, p in enumerate(params):
            gx = x0 + 80 + g * 200
            lo, hi = rng.uniform(1, 50), rng.uniform(60, 120)
            v = f"{rng.uniform(lo, hi):.2f}"
            for k, txt in enumerate([f"{lo:.1f}", f"{hi:.1f}", v]):
                c.drawString(gx + k * 60, y, txt.replace(".", ",") if comma else txt)
            t.results.append({"quantity": p, "value": v, "sample": sid})
        y -= 14


def main() -> None:
    """Write ``--count`` reports (seeds 0..N-1) with their truth JSON into OUT_DIR."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=20)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in range(args.count):
        pdf, truth = make_report(seed)
        (args.out / f"synth_{seed}.pdf").write_bytes(pdf)
        (args.out / f"synth_{seed}.json").write_text(
            json.dumps(
                {"header": truth.header, "results": truth.results, "features": truth.features},
                ensure_ascii=False,
                indent=1,
            )
        )
    print(f"wrote {args.count} reports to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
