"""The table parser's fast path (unvalidated models, quick cell checks) gives what validated parsing gave.

:func:`parsers.csv_.table_to_batch` builds its models with :func:`parsers.model.trusted` and checks plain cells
on a quick path; ``_table_reference.reference_table_to_batch`` is the parser as it was, validating every model.
For every input both must agree: equal batches with the same JSON dump, repr and ``model_fields_set``, the same
records, or the same error (class, message, location, facts). CSV files go through ``parse_csv`` with either
table function; XLSX-like typed cells (floats, ints, booleans, datetimes, None) go to the table functions.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from chain.canonical import canonical_json
from parsers import Limits, source_file
from parsers import csv_ as csv_module
from parsers.csv_ import parse_csv, table_to_batch
from parsers.errors import ParseError
from parsers.model import InspectionBatch, Measurement, ProcessValue
from parsers.provenance import Provenance
from scripts.demo_data import load_csv
from tests.parsers._table_reference import reference_records, reference_table_to_batch

SOURCE = source_file(b"table", format="csv", filename="t.csv")


def _outcome(call: Callable[[], InspectionBatch], records: Callable[[InspectionBatch], Any]) -> tuple[Any, ...]:
    """Everything a caller can observe of one parse: the batch as dumped, printed and recorded, or the error."""
    try:
        batch = call()
    except ParseError as exc:
        return ("error", type(exc).__name__, exc.message, exc.location, exc.facts)
    return (
        "ok",
        batch.model_dump_json(),
        repr(batch),
        [(m.model_fields_set, m.provenance.model_fields_set) for m in batch.measurements],
        [(p.model_fields_set, p.provenance.model_fields_set) for p in batch.process],
        records(batch),
        canonical_json(records(batch)),
    )


def _same_as_reference(fast: Callable[[], InspectionBatch], reference: Callable[[], InspectionBatch]) -> Any:
    got = _outcome(fast, InspectionBatch.records)
    want = _outcome(reference, reference_records)
    assert got == want
    if got[0] == "ok":
        assert fast() == reference()
    return got


def _csv_both(data: bytes, monkeypatch: pytest.MonkeyPatch) -> Any:
    src = source_file(data, format="csv", filename="t.csv")

    def reference() -> InspectionBatch:
        with monkeypatch.context() as m:
            m.setattr(csv_module, "table_to_batch", reference_table_to_batch)
            return parse_csv(data, source=src)

    return _same_as_reference(lambda: parse_csv(data, source=src), reference)


CSV_CASES = {
    "plain": "sample_id,characteristic,value,unit\nS1,len,12.5,mm\nS2,len,-3,mm\n",
    "number_spellings": "sample_id,characteristic,value,unit,uncertainty,coverage_factor\n"
    "S1,a, +.5e-3 ,mm,-0,2\nS2,a,1.,mm,.5,1e0\nS3,a,0,mm,0.0,0.5\nS4,a,1E+2,mm,,\n",
    "decimal_comma": "sample_id;characteristic;value;unit;uncertainty;coverage_factor\n"
    "S1;a;12,5;mm;0,004;2\nS2;a;,5;mm;1,5e-3;2,0\nS3;a;7.25;mm;;\n",
    "dates_and_extras": "sample_id,characteristic,value,unit,measured_at,operator,gauge_id,lot_id,lot_size\n"
    "S1,a,1,mm,2025-03-04T08:15:00+08:00,zhang,HV-02,L1,500\n"
    "S2,a,2,mm,04.03.2025 08:15,,HV-02,L1,500.0\n"
    "S3,a,3,mm,2025/03/04,li,,,\n"
    "S4,a,4,mm,04.03.2025,,,L1,\n",
    "synonyms_bom_blank_lines": "\ufeffSample, Merkmal ,Messwert,Einheit,U,k\n"
    "\nS1,a,1,mm,0.1,2\n,,,,,\nS2,a,2,mm,0.1,2,,\n",
    "unicode_digits_and_grouping": "sample_id,characteristic,value,unit\nS1,a,١٢,mm\n",
    "process": "variable,tier,value,unit,sample_id\nT,Process,180,degC,\nH,environment,45.5,%,S1\n",
    "empty_value": "sample_id,characteristic,value,unit\nS1,a,,mm\n",
    "empty_unit": "sample_id,characteristic,value,unit\nS1,a,1,\n",
    "empty_sample": "sample_id,characteristic,value,unit\n ,a,1,mm\n",
    "not_a_number": "sample_id,characteristic,value,unit\nS1,a,12.5 mm,mm\n",
    "digit_grouping": "sample_id,characteristic,value,unit\nS1,a,1_000,mm\n",
    "nan": "sample_id,characteristic,value,unit\nS1,a,nan,mm\n",
    "infinity": "sample_id,characteristic,value,unit\nS1,a,Infinity,mm\n",
    "overflow": "sample_id,characteristic,value,unit\nS1,a,1e999,mm\n",
    "formula": "sample_id,characteristic,value,unit\nS1,a,=1+2,mm\n",
    "comma_without_semicolons": 'sample_id,characteristic,value,unit\nS1,a,"12,5",mm\n',
    "bad_comma_number": "sample_id;characteristic;value;unit\nS1;a;1,2,3;mm\n",
    "negative_uncertainty": "sample_id,characteristic,value,unit,uncertainty\nS1,a,1,mm,-0.1\n",
    "zero_coverage_factor": "sample_id,characteristic,value,unit,coverage_factor\nS1,a,1,mm,0\n",
    "bad_date": "sample_id,characteristic,value,unit,measured_at\nS1,a,1,mm,yesterday\n",
    "duplicate": "sample_id,characteristic,value,unit\nS1,a,1,mm\n S1 ,a ,2,mm\n",
    "lot_conflict": "sample_id,characteristic,value,unit,lot_id\nS1,a,1,mm,L1\nS2,a,1,mm,L2\n",
    "lot_size_fraction": "sample_id,characteristic,value,unit,lot_size\nS1,a,1,mm,2.5\n",
    "ragged": "sample_id,characteristic,value,unit\nS1,a,1\n",
    "header_only": "sample_id,characteristic,value,unit\n\n",
    "process_bad_tier": "variable,tier,value\nT,weather,1\n",
    "process_duplicate": "variable,tier,value,sample_id\nT,process,1,S1\nT,process,2,S1\n",
    "bad_value_before_quote_error": 'sample_id,characteristic,value,unit\nS1,a,x,mm\nS2,a,1,"mm\n',
}


@pytest.mark.parametrize("name", sorted(CSV_CASES))
def test_csv_case_same_as_validated_parser(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _csv_both(CSV_CASES[name].encode(), monkeypatch)


def test_bench_upload_same_as_validated_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = _csv_both(load_csv(1000, seed=7), monkeypatch)
    assert outcome[0] == "ok"
    assert len(outcome[5]) == 1000


def test_good_and_bad_cells_report_the_first_error_in_row_order(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = load_csv(40, seed=1).decode().splitlines()
    lines[31] = lines[31].replace(",um,", ",,")  # empty unit on row 32 ...
    lines[13] = lines[13].replace(",0.2", ",-0.2")  # ... after a negative uncertainty on row 14
    outcome = _csv_both(("\n".join(lines) + "\n").encode(), monkeypatch)
    assert outcome[:4] == (
        "error",
        "InvalidValue",
        "row 14, column 'uncertainty': uncertainty -0.2 is negative",
        "row 14, column 'uncertainty'",
    )


def test_fast_models_copy_pickle_and_keep_their_fields_set_apart() -> None:
    batch = parse_csv(CSV_CASES["dates_and_extras"].encode(), source=SOURCE)
    first, second = batch.measurements[:2]
    changed = first.model_copy(update={"unit": "in"})
    assert changed.unit == "in" and first.unit == "mm"
    assert first.model_fields_set == second.model_fields_set == set(type(first).model_fields)
    assert copy.deepcopy(batch) == batch
    assert pickle.loads(pickle.dumps(batch)) == batch
    assert InspectionBatch.model_validate(batch.model_dump()) == batch
    assert InspectionBatch.model_validate_json(batch.model_dump_json()) == batch


# --- typed cells (as XLSX gives them) and random tables --------------------------------------------------------

_OPTIONAL = ("uncertainty", "coverage_factor", "measured_at", "part_number", "lot_id", "lot_size", "operator")
_NUMBER_TEXT = (
    "12.5", " 12.5 ", "-0", "+.5e-3", "1.", ".5", "0", "2", "-3", "1e-3", "1e999", "nan", "inf", "-Infinity",
    "1_000", "١٢", "12,5", "1,5e3", ",5", "1,2,3", "abc", "", "  ", "=1+2", "0x10", "1.2.3", "+", "e5",
)  # fmt: skip
_TYPED = (12.5, 3, 0, -1.0, 0.0, float("nan"), float("inf"), True, False, None, datetime(2025, 3, 4, 8, 15))
_TEXT = ("S1", "S2", " S1 ", "", " ", "mm", "µm", "=cmd", "样品", "L1", "L2")
_DATES = (
    "2025-03-04T08:15:00", "2025-03-04T08:15:00+08:00", "04.03.2025 08:15", "04.03.2025", "2025/03/04",
    "2025/03/04 08:15:00", "yesterday", "", "2025-13-01",
)  # fmt: skip
_POOLS: dict[str, tuple[Any, ...]] = {
    "sample_id": _TEXT,
    "characteristic": ("a", "b", " a", "", "特性"),
    "value": _NUMBER_TEXT,
    "unit": _TEXT,
    "uncertainty": _NUMBER_TEXT,
    "coverage_factor": _NUMBER_TEXT,
    "measured_at": _DATES,
    "part_number": _TEXT,
    "lot_id": _TEXT,
    "lot_size": ("500", "500.0", "2.5", "-1", "", "x"),
    "operator": _TEXT,
}


@st.composite
def _tables(draw: st.DrawFn, *, typed: bool) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    columns = ["sample_id", "characteristic", "value", "unit"]
    columns += draw(st.lists(st.sampled_from(_OPTIONAL), unique=True, max_size=4))
    columns = draw(st.permutations(columns))
    wild = _TYPED + _NUMBER_TEXT[:6] if typed else _NUMBER_TEXT + _TEXT

    def cell(col: str) -> st.SearchStrategy[Any]:
        usual = st.sampled_from(_POOLS[col])
        return st.one_of(usual, usual, usual, st.sampled_from(wild)) if draw(st.booleans()) else usual

    rows = []
    for n in range(draw(st.integers(min_value=0, max_value=6))):
        cells = [draw(cell(c)) for c in columns]
        shape = draw(st.sampled_from(("same", "same", "same", "short", "long_blank", "long", "blank")))
        if shape == "short":
            cells = cells[: draw(st.integers(min_value=0, max_value=len(cells) - 1))]
        elif shape == "long_blank":
            cells = [*cells, "", None if typed else " "]
        elif shape == "long":
            cells = [*cells, "x"]
        elif shape == "blank":
            cells = ["" if not typed else None] * len(columns)
        rows.append((n + 2, cells))
    return columns, rows


def _both_tables(header: Sequence[Any], rows: list[tuple[int, list[Any]]], **kwargs: Any) -> Any:
    def run(func: Callable[..., InspectionBatch]) -> Callable[[], InspectionBatch]:
        return lambda: func(header, [(n, list(c)) for n, c in rows], source=SOURCE, limits=Limits(), **kwargs)

    return _same_as_reference(run(table_to_batch), run(reference_table_to_batch))


@settings(max_examples=300, deadline=None)
@given(table=_tables(typed=False), decimal_comma=st.booleans())
def test_random_text_tables_same_as_validated_parser(
    table: tuple[list[str], list[tuple[int, list[Any]]]], decimal_comma: bool
) -> None:
    _both_tables(*table, decimal_comma=decimal_comma)


@settings(max_examples=200, deadline=None)
@given(table=_tables(typed=True))
def test_random_typed_tables_same_as_validated_parser(table: tuple[list[str], list[tuple[int, list[Any]]]]) -> None:
    _both_tables(*table, pad_short_rows=True)


def test_typed_cells_same_as_validated_parser() -> None:
    header = ["sample_id", "characteristic", "value", "unit", "uncertainty", "measured_at", "lot_size", "operator"]
    rows = [
        (2, [101.0, "a", 12, "mm", 0.5, datetime(2025, 3, 4, 8, 15), 500.0, 7.0]),
        (3, ["S2", "a", 12.25, "mm", None, date(2025, 3, 4), 500, None]),
        (4, ["S3", "a", "12.5", "mm", 0, "2025-03-04", None, "x"]),
        (5, ["S4", "a", 1.5, "mm"]),  # short: padded
    ]
    outcome = _both_tables(header, rows, pad_short_rows=True)
    assert outcome[0] == "ok"
    for bad in (True, float("nan"), float("-inf"), datetime(2025, 1, 1), None):
        _both_tables(header, [(2, ["S1", "a", bad, "mm", 0.5, None, None, None])], pad_short_rows=True)


@pytest.mark.parametrize("model", [Measurement, ProcessValue, Provenance])
def test_models_built_unvalidated_are_frozen(model: type[BaseModel]) -> None:
    # parsers.model.trusted shares one fields set between the instances of a table: safe only while frozen
    assert model.model_config.get("frozen") is True
