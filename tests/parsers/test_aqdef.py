"""AQDEF/DFQ: K-field and value-block notations, characteristic specs, errors by line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from parsers import Limits, parse, source_file
from parsers.aqdef import parse_aqdef
from parsers.errors import InvalidValue, LimitExceeded, MalformedInput, MissingField

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inspection"


def load(rel: str, *, limits: Limits | None = None):
    data = (FIXTURES / rel).read_bytes()
    return parse_aqdef(data, source=source_file(data, format="aqdef"), limits=limits or Limits())


def test_kfield_values_with_part_ident_batch_and_specs() -> None:
    batch = load("aqdef/kfield_values.dfq")
    assert (batch.part_number, batch.part_revision, batch.lot_id) == ("PN-4711", "C", "LOT-7")
    assert [(m.sample_id, m.characteristic, m.value, m.unit) for m in batch.measurements] == [
        ("SN-001", "Bore diameter", 12.503, "mm"),
        ("SN-001", "Flatness", 0.012, "mm"),
        ("SN-002", "Bore diameter", 12.497, "mm"),
        ("SN-002", "Flatness", 0.009, "mm"),
    ]
    m = batch.measurements[2]
    assert m.measured_at == datetime(2025, 3, 4, 8, 16, 10)
    assert (m.provenance.row, m.provenance.column) == (25, "K0001/1")
    assert batch.measurements[0].extra["operator"] == "17"
    bore = batch.characteristics["Bore diameter"]
    assert (bore.nominal, bore.lower_limit, bore.upper_limit, bore.unit) == (12.5, 12.48, 12.52, "mm")
    assert batch.characteristics["Flatness"].lower_limit is None


def test_value_block_with_separators_and_unmeasured_cell() -> None:
    batch = load("aqdef/value_block.dfq")
    assert [(m.sample_id, m.characteristic, m.value) for m in batch.measurements] == [
        ("1", "Length", 100.02),
        ("1", "Width", 50.01),
        ("1", "Height", 20.5),
        ("2", "Length", 99.97),
        ("2", "Height", 20.4),
    ]
    assert {m.unit for m in batch.measurements} == {"mm"}  # K2142/0 applies to all
    first = batch.measurements[0]
    assert first.measured_at == datetime(2025, 3, 4, 9, 0)
    assert first.extra == {"attribute": "0", "batch": "B1", "operator": "7"}
    assert batch.lot_id == "B1"
    assert batch.characteristics["Length"].upper_limit == 100.1


def test_detected_by_content_through_parse() -> None:
    parsed = parse((FIXTURES / "aqdef/value_block.dfq").read_bytes(), filename="export.txt")
    assert parsed.format == "aqdef"


def test_gbk_names() -> None:
    batch = load("aqdef/gbk_characteristic_names.dfq")
    assert (batch.part_number, batch.measurements[0].characteristic, batch.measurements[0].unit) == (
        "零件-1",
        "外径",
        "毫米",
    )


def test_missing_unit() -> None:
    with pytest.raises(MissingField, match="K2142/1"):
        load("aqdef/missing_unit.dfq")


def test_non_numeric_value_names_line() -> None:
    with pytest.raises(InvalidValue, match="line 5: value 'abc'") as e:
        load("aqdef/non_numeric_value.dfq")
    assert e.value.facts["row"] == 5


def test_value_line_wider_than_declared() -> None:
    with pytest.raises(MalformedInput, match="characteristic 2, but only 1 are declared"):
        load("aqdef/too_many_characteristics_in_value_line.dfq")


def test_bad_date() -> None:
    with pytest.raises(InvalidValue, match="'yesterday'"):
        load("aqdef/bad_date.dfq")


def test_max_rows() -> None:
    with pytest.raises(LimitExceeded) as e:
        load("aqdef/kfield_values.dfq", limits=Limits(max_rows=3))
    assert e.value.limit == "max_rows"


def test_annotation_before_value_is_malformed() -> None:
    data = b"K0100 1\nK2142/1 mm\nK0004/1 04.03.2025/08:15:00\nK0001/1 1\n"
    with pytest.raises(MalformedInput, match="no K0001/1 came before"):
        parse_aqdef(data, source=source_file(data, format="aqdef"))


def test_cp1252_kfield_file_is_detected_without_encoding_and_warned() -> None:
    data = (FIXTURES / "aqdef/cp1252_umlauts_micro_sign.dfq").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the fixture really is not UTF-8
    parsed = parse(data, filename="export.dfq")  # no encoding passed
    batch = parsed.inspection
    assert batch is not None
    assert batch.part_number == "Gehäuse-7"
    assert [(m.characteristic, m.value, m.unit) for m in batch.measurements] == [
        ("Bohrung Ø 12", 12.003, "mm"),
        ("Oberflächenrauheit Ra", 0.8, "µm"),
    ]
    assert batch.measurements[0].extra["operator"] == "Jürgen Weiß"
    assert any("Windows-1252" in w for w in batch.warnings)


def test_cp1252_and_explicit_encoding_agree() -> None:
    data = (FIXTURES / "aqdef/cp1252_umlauts_micro_sign.dfq").read_bytes()
    src = source_file(data, format="aqdef")
    detected = parse_aqdef(data, source=src, limits=Limits())
    declared = parse_aqdef(data, source=src, limits=Limits(), encoding="cp1252")
    assert detected.measurements == declared.measurements
    assert declared.warnings == []


def test_gbk_plausible_file_still_decodes_as_gb18030_not_cp1252() -> None:
    batch = load("aqdef/gbk_characteristic_names.dfq")
    assert [m.characteristic for m in batch.measurements] == ["外径"]
    assert not any("1252" in w for w in batch.warnings)


def test_byte_undefined_in_cp1252_is_still_malformed_with_offset() -> None:
    with pytest.raises(MalformedInput) as exc:
        load("aqdef/undefined_cp1252_byte.dfq")
    data = (FIXTURES / "aqdef/undefined_cp1252_byte.dfq").read_bytes()
    assert exc.value.facts["byte_offset"] == data.index(b"\x81")
