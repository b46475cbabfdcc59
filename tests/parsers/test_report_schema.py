"""The published LabReport JSON Schema is current, `qcn parse` prints exactly that shape, and an empty or
unsure extraction is loud (stderr + exit code 3)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from app import cli as cli_module

ROOT = Path(__file__).resolve().parent.parent.parent
REPORTS = ROOT / "tests" / "fixtures" / "reports"
sys.path.insert(0, str(ROOT / "scripts"))


def test_schema_file_is_current() -> None:
    from export_labreport_schema import TARGET, render

    assert TARGET.read_text(encoding="utf-8") == render(), "run scripts/export_labreport_schema.py"


def test_qcn_parse_prints_the_published_shape() -> None:
    schema = json.loads((ROOT / "docs" / "labreport.schema.json").read_text(encoding="utf-8"))
    res = CliRunner().invoke(cli_module.cli, ["parse", str(REPORTS / "tensile_iso6892_report.pdf")])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    jsonschema.validate(doc, schema)
    assert doc["results"] and doc["review"]["required"] is False
    fields: list[dict] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "value" in node and "provenance" in node:
                fields.append(node)
            for key, sub in node.items():
                if key not in ("source", "signature"):
                    walk(sub)
        elif isinstance(node, list):
            for sub in node:
                walk(sub)

    walk(doc)
    assert fields and all(0 < f["confidence"] <= 1 for f in fields), "every extracted field carries a confidence"


def test_qcn_parse_is_loud_about_a_report_without_results(tmp_path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = tmp_path / "letter.pdf"
    c = canvas.Canvas(str(pdf), pagesize=A4)
    c.drawString(72, 780, "Test Report")
    c.drawString(72, 760, "Report No.: R-77")
    c.drawString(72, 740, "The sample was received in good condition. Results follow in a separate letter.")
    c.showPage()
    c.save()
    res = CliRunner().invoke(cli_module.cli, ["parse", str(pdf)])
    assert res.exit_code == 3
    assert "REVIEW NEEDED" in res.stderr and "no result rows" in res.stderr
    doc = json.loads(res.stdout)
    assert doc["review"]["required"] is True and doc["results"] == []
