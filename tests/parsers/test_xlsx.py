"""XLSX inspection data: sheet choice, typed cells, formulas as data, and zip-bomb guards."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from parsers import Limits, parse, source_file
from parsers.errors import HostileInput, InvalidValue, LimitExceeded, MalformedInput, MissingField
from parsers.xlsx import parse_xlsx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inspection"


def load(rel: str, *, limits: Limits | None = None):
    data = (FIXTURES / rel).read_bytes()
    return parse_xlsx(data, source=source_file(data, format="xlsx"), limits=limits or Limits())


def test_measurement_and_process_sheets() -> None:
    batch = load("xlsx/measurements_and_process_sheets.xlsx")
    assert [(m.sample_id, m.value, m.provenance.row) for m in batch.measurements] == [
        ("1", 12.503, 2),
        ("2", 12.497, 3),
        ("3", -0.5, 5),
    ]
    first = batch.measurements[0]
    assert first.measured_at == datetime(2025, 3, 4, 8, 15)
    assert (first.uncertainty, first.coverage_factor, first.unit) == (0.004, 2.0, "mm")
    assert batch.measurements[2].measured_at == datetime(2025, 3, 4, 8, 17)
    assert (batch.lot_id, batch.lot_size) == ("LOT-7", 200)
    assert [(p.variable, p.tier, p.value, p.unit) for p in batch.process] == [
        ("spindle_speed", "equipment", 1200.0, "rpm"),
    ]
    assert batch.warnings == []


def test_formula_text_is_kept_verbatim() -> None:
    batch = load("xlsx/formula_cells.xlsx")
    assert [m.extra["operator"] for m in batch.measurements] == [
        '=HYPERLINK("http://evil.example","x")',
        "=1+1",
    ]
    assert batch.measurements[1].value == -2.5


def test_formula_in_value_column_is_not_evaluated() -> None:
    with pytest.raises(InvalidValue, match="'=C2\\*2' is not a number") as e:
        load("xlsx/formula_in_value_column.xlsx")
    assert (e.value.facts["row"], e.value.facts["sheet"]) == (3, "Sheet")
    assert e.value.location is not None and e.value.location.startswith("sheet 'Sheet'")


def test_missing_column_names_sheet() -> None:
    with pytest.raises(MissingField, match="'unit'") as e:
        load("xlsx/missing_unit_column.xlsx")
    assert e.value.facts["sheet"] == "Sheet"


def test_zip_bomb_refused_by_ratio_before_openpyxl() -> None:
    with pytest.raises(HostileInput, match="max_compression_ratio") as e:
        parse((FIXTURES / "hostile/zip_bomb_ratio.xlsx").read_bytes())
    assert e.value.facts["limit"] == "max_compression_ratio"
    assert e.value.facts["actual"] > 200


def test_uncompressed_size_limit() -> None:
    with pytest.raises(LimitExceeded) as e:
        load("hostile/zip_bomb_ratio.xlsx", limits=Limits(max_compression_ratio=1e6, max_uncompressed_bytes=10**6))
    assert (e.value.limit, e.value.allowed) == ("max_uncompressed_bytes", 10**6)
    assert e.value.actual > 64 * 1024 * 1024


def test_truncated_workbook_is_detected_as_xlsx_and_malformed() -> None:
    with pytest.raises(MalformedInput, match="truncated or corrupt"):
        parse((FIXTURES / "hostile/truncated_workbook.xlsx").read_bytes())


def test_xxe_inside_sheet_refused_and_nothing_leaks() -> None:
    with pytest.raises(HostileInput, match="DOCTYPE/ENTITY") as e:
        parse((FIXTURES / "hostile/xxe_in_sheet.xlsx").read_bytes())
    assert "root:" not in str(e.value)


def _xlsx_with_value_cell(value_text: bytes, column: str = "value") -> bytes:
    """A one-row sheet whose ``column`` cell holds ``value_text`` verbatim as its stored number."""
    import io
    import zipfile

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["sample_id", "characteristic", "value", "unit", "lot_size"])
    ws.append(["S1", "d", 123456789 if column == "value" else 1, "mm", 123456789 if column == "lot_size" else 5])
    buf = io.BytesIO()
    wb.save(buf)
    src, out = zipfile.ZipFile(io.BytesIO(buf.getvalue())), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                data = data.replace(b"<v>123456789</v>", b"<v>" + value_text + b"</v>")
            dst.writestr(item, data)
    return out.getvalue()


def test_an_integer_cell_beyond_any_float_is_a_bad_value_not_a_crash() -> None:
    # outside review: openpyxl reads a digit run as a Python int; float() of a 400-digit one overflowed (a 500)
    huge = b"1" + b"0" * 400
    with pytest.raises(InvalidValue, match="value is not finite") as e:
        parse(_xlsx_with_value_cell(huge), filename="lot.xlsx")
    assert e.value.facts["row"] == 2
    with pytest.raises(InvalidValue, match="is not a whole number"):
        parse(_xlsx_with_value_cell(huge, column="lot_size"), filename="lot.xlsx")
    big_but_fine = parse(_xlsx_with_value_cell(b"1" + b"0" * 300), filename="lot.xlsx")
    assert big_but_fine.inspection is not None and big_but_fine.inspection.measurements[0].value == 1e300
