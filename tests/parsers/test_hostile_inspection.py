"""Hostile input against the inspection parsers: each fixture is named after the attack it carries."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from parsers import Limits, parse
from parsers._safe import open_zip, parse_xml
from parsers.errors import HostileInput, LimitExceeded, MalformedInput, ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inspection"


def test_xxe_etc_passwd_refused_and_not_leaked() -> None:
    with pytest.raises(HostileInput, match="entities") as e:
        parse((FIXTURES / "hostile/xxe_etc_passwd.qif").read_bytes())
    assert "root:" not in str(e.value)


def test_xxe_in_utf16_bypasses_byte_scan_but_not_dtd_check() -> None:
    xml = (
        '<?xml version="1.0" encoding="UTF-16"?>\n'
        '<!DOCTYPE QIFDocument [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        "<QIFDocument><a>&xxe;</a></QIFDocument>"
    ).encode("utf-16")
    with pytest.raises(HostileInput, match="declares entities in its DTD"):
        parse_xml(xml, limits=Limits())


@pytest.mark.timeout(10)  # an expanding parser would hang or exhaust memory instead
def test_billion_laughs_refused_before_expansion() -> None:
    with pytest.raises(HostileInput, match="entities"):
        parse((FIXTURES / "hostile/billion_laughs.qif").read_bytes())


def test_deep_xml_nesting_is_limit() -> None:
    with pytest.raises(LimitExceeded) as e:
        parse((FIXTURES / "hostile/deep_nesting.qif").read_bytes())
    assert (e.value.limit, e.value.allowed) == ("max_xml_depth", 200)


def test_truncated_xml_names_line() -> None:
    data = (FIXTURES / "qif/QIF_Results_Sample.QIF").read_bytes()[:5000]
    with pytest.raises(MalformedInput, match="not well-formed") as e:
        parse(data)
    assert e.value.location is not None and e.value.location.startswith("line ")


@pytest.mark.parametrize(
    "rel",
    [
        "csv/long_comma_utf8_bom.csv",
        "json/batch_with_process.json",
        "xlsx/measurements_and_process_sheets.xlsx",
        "aqdef/kfield_values.dfq",
        "qif/QIF_Results_Sample.QIF",
    ],
)
def test_oversized_file_names_max_bytes_for_every_format(rel: str) -> None:
    data = (FIXTURES / rel).read_bytes()
    with pytest.raises(LimitExceeded, match="max_bytes") as e:
        parse(data, limits=Limits(max_bytes=len(data) - 1))
    assert (e.value.limit, e.value.actual) == ("max_bytes", len(data))


@pytest.mark.parametrize(
    "rel",
    [
        "csv/long_comma_utf8_bom.csv",
        "json/batch_with_process.json",
        "xlsx/measurements_and_process_sheets.xlsx",
        "aqdef/kfield_values.dfq",
        "qif/QIF_Results_Sample.QIF",
    ],
)
def test_every_truncation_is_a_parse_error_or_parses(rel: str) -> None:
    """Cut each good file at many points: only ParseError subclasses may escape, never a raw exception."""
    data = (FIXTURES / rel).read_bytes()
    for cut in range(1, len(data), max(1, len(data) // 40)):
        with contextlib.suppress(ParseError):
            parse(data[:cut])


def test_zip_member_path_traversal_refused() -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("../../etc/cron.d/x", "boom")
    with pytest.raises(HostileInput, match="unsafe path"):
        open_zip(buf.getvalue(), limits=Limits())
