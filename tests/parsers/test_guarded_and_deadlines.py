"""``max_seconds`` in the tabular/XML parsers, and ``parse_guarded`` (subprocess, memory cap, timeout).

No mocks: the guarded tests start real child processes; the hanging parser is a real function that sleeps.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from parsers import parse
from parsers.errors import LimitExceeded, SchemaViolation
from parsers.guarded import GRACE_SECONDS, parse_guarded
from parsers.limits import Limits
from parsers.model import ParsedFile

FIX = Path(__file__).resolve().parent.parent / "fixtures"
INSPECTION = FIX / "inspection"
REPORTS = FIX / "reports"


def _csv_rows(n: int) -> bytes:
    lines = ["sample_id,characteristic,value,unit"]
    lines += [f"{i},bore_diameter,12.{i % 1000:03d},mm" for i in range(1, n + 1)]
    return ("\n".join(lines) + "\n").encode()


def _sleep_forever(data: bytes, **_kwargs: object) -> ParsedFile:
    """A 'parser' that never answers (module level, so the guarded child can import it)."""
    time.sleep(600)
    raise AssertionError("unreachable")


def test_csv_max_seconds_is_checked_every_1024_rows_and_names_the_row() -> None:
    with pytest.raises(LimitExceeded) as exc:
        parse(_csv_rows(3000), filename="long.csv", limits=Limits(max_seconds=0.0))
    assert exc.value.limit == "max_seconds"
    assert exc.value.allowed == 0.0
    assert exc.value.location == "row 1025"  # header is row 1; the clock is read at the 1024th data row


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
def test_every_inspection_format_enforces_max_seconds(rel: str) -> None:
    data = (INSPECTION / rel).read_bytes()
    parse(data, filename=Path(rel).name)  # parses within the default limit ...
    with pytest.raises(LimitExceeded) as exc:  # ... and not within zero seconds
        parse(data, filename=Path(rel).name, limits=Limits(max_seconds=0.0))
    assert exc.value.limit == "max_seconds"


def test_limits_default_memory_bound_is_one_gib() -> None:
    assert Limits().max_memory_bytes == 1024**3


@pytest.mark.parametrize(
    "rel",
    [
        "reports/dcc3/dcc-3.3.0-mass-amended.xml",
        "reports/coating_thickness_report.pdf",
        "inspection/csv/long_comma_utf8_bom.csv",
    ],
)
def test_guarded_parse_returns_the_same_parsed_file_as_in_process(rel: str) -> None:
    data = (FIX / rel).read_bytes()
    guarded = parse_guarded(data, filename=Path(rel).name, limits=Limits())
    assert guarded == parse(data, filename=Path(rel).name)
    assert json.loads(guarded.model_dump_json())["source"]["sha256"] == guarded.source.sha256


def test_guarded_parse_error_keeps_subclass_code_location_and_facts() -> None:
    data = (REPORTS / "dcc3" / "dcc-3.3.0-mass-amended.xml").read_bytes()
    broken = data.replace(b"<dcc:endPerformanceDate>2025-03-11</dcc:endPerformanceDate>", b"", 1)
    with pytest.raises(SchemaViolation) as guarded:
        parse_guarded(broken, filename="x.xml")
    with pytest.raises(SchemaViolation) as direct:
        parse(broken, filename="x.xml")
    assert guarded.value.to_dict() == direct.value.to_dict()
    assert guarded.value.code == "schema_violation"
    assert guarded.value.facts["schema_version"] == "3.3.0"


def test_guarded_limit_exceeded_keeps_limit_allowed_actual() -> None:
    data = (REPORTS / "hostile" / "page_count_1000000.pdf").read_bytes()
    with pytest.raises(LimitExceeded) as exc:
        parse_guarded(data, filename="p.pdf")
    assert (exc.value.limit, exc.value.allowed, exc.value.actual) == ("max_pages", 500, 1_000_000)


def test_memory_hungry_parse_is_refused_naming_max_memory_bytes() -> None:
    data = _csv_rows(20_000)  # ~0.5 MB of CSV, tens of MB of models
    with pytest.raises(LimitExceeded) as exc:
        parse_guarded(data, filename="big.csv", limits=Limits(max_memory_bytes=8 * 1024 * 1024))
    assert exc.value.limit == "max_memory_bytes"
    assert exc.value.allowed == 8 * 1024 * 1024
    # the same file within the default bound parses completely
    ok = parse_guarded(data, filename="big.csv")
    assert ok.inspection is not None and len(ok.inspection.measurements) == 20_000


def test_parser_that_never_returns_is_stopped_naming_max_seconds() -> None:
    start = time.monotonic()
    with pytest.raises(LimitExceeded) as exc:
        parse_guarded(b"a,b\n1,2\n", filename="x.csv", limits=Limits(max_seconds=0.5), target=_sleep_forever)
    elapsed = time.monotonic() - start
    assert exc.value.limit == "max_seconds"
    assert exc.value.allowed == 0.5
    assert elapsed < 0.5 + GRACE_SECONDS + 5.0
