"""Format detection from content, and the parse()/parse_inspection() entry points."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import parsers
from parsers import Limits, detect_format, parse, parse_inspection
from parsers.errors import LimitExceeded, UnsupportedFormat

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inspection"
QIF_SAMPLE = FIXTURES / "qif" / "mitutoyo_results_serialized_pass_fail_sample.QIF"

DCC_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- certificate -->\n'
    b'<dcc:digitalCalibrationCertificate xmlns:dcc="https://ptb.de/dcc" schemaVersion="3.2.0">'
    b"</dcc:digitalCalibrationCertificate>"
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"%PDF-1.7\n...", "pdf"),
        (DCC_HEAD, "dcc"),
        (b'<QIFDocument xmlns="http://qifstandards.org/xsd/qif3" versionQIF="3.0.0"/>', "qif"),
        (b"K0100 1\nK1001 PN-1\nK2001/1 1\n", "aqdef"),
        (b'  {"measurements": []}', "json"),
        (b"sample_id;characteristic;value;unit\nS1;d;1;mm\n", "csv"),
        ("\ufeffsample_id,characteristic,value,unit\n".encode(), "csv"),
    ],
)
def test_detect_by_content(data: bytes, expected: str) -> None:
    assert detect_format(data) == expected


def test_content_beats_filename() -> None:
    assert detect_format(b"%PDF-1.4 x", "measurements.csv") == "pdf"
    assert detect_format(b'{"a": 1}', "report.pdf") == "json"


def test_filename_breaks_a_tie() -> None:
    # one column, no delimiter: not recognisable as CSV from content alone
    assert detect_format(b"sample_id\n", "data.csv") == "csv"
    with pytest.raises(UnsupportedFormat, match="unrecognised content"):
        detect_format(b"sample_id\n")


def test_unknown_xml_root_is_named() -> None:
    with pytest.raises(UnsupportedFormat, match="root element 'svg'") as e:
        detect_format(b'<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    assert e.value.facts["namespace"] == "http://www.w3.org/2000/svg"


def test_zip_without_workbook_is_named() -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", "<w/>")
    with pytest.raises(UnsupportedFormat, match=r"without xl/workbook\.xml"):
        detect_format(buf.getvalue())


def test_legacy_xls_and_empty_refused() -> None:
    with pytest.raises(UnsupportedFormat, match=r"legacy \.xls"):
        detect_format(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(UnsupportedFormat, match="empty"):
        detect_format(b"")


def test_parse_returns_parsed_file_with_source() -> None:
    data = (FIXTURES / "csv/long_semicolon_decimal_comma.csv").read_bytes()
    parsed = parse(data, filename="m.csv")
    assert (parsed.kind, parsed.format) == ("inspection", "csv")
    assert parsed.source.sha256 == hashlib.sha256(data).hexdigest()
    assert (parsed.source.size, parsed.source.filename, parsed.source.media_type) == (
        len(data),
        "m.csv",
        "text/csv",
    )
    assert parsed.inspection is not None and len(parsed.inspection.measurements) == 4
    assert parsed.report is None


def test_parse_checks_max_bytes_before_anything() -> None:
    with pytest.raises(LimitExceeded, match="max_bytes") as e:
        parse(b"\x00garbage that is not any format", limits=Limits(max_bytes=8))
    assert (e.value.limit, e.value.allowed, e.value.actual) == ("max_bytes", 8, 31)


def test_declared_format_must_match_content() -> None:
    data = b'{"measurements": [{"sample_id": "S1", "characteristic": "d", "value": 1, "unit": "mm"}]}'
    with pytest.raises(UnsupportedFormat, match="declared format 'csv' but the content is 'json'"):
        parse(data, declared_format="csv")
    with pytest.raises(UnsupportedFormat, match="not one of"):
        parse(data, declared_format="docx")
    assert parse(data, declared_format="json").format == "json"


def test_parse_inspection_refuses_report_formats() -> None:
    with pytest.raises(UnsupportedFormat, match="lab report format"):
        parse_inspection(b"%PDF-1.7\n")
    data = (FIXTURES / "json/batch_with_process.json").read_bytes()
    assert parse_inspection(data).lot_id == "LOT-2025-031"


def test_public_surface() -> None:
    for name in parsers.__all__:
        assert hasattr(parsers, name), name
    expected = {"parse", "parse_inspection", "detect_format", "InspectionBatch", "ParsedFile"}
    assert expected <= set(parsers.__all__)
