"""Write parsed data back out as CSV that spreadsheet programs cannot execute.

The models keep every cell exactly as uploaded (``=1+1`` stays ``=1+1``); escaping happens only here, on
the way out, with :func:`parsers.csv_.escape_for_spreadsheet`: text starting with ``=``, ``+``, ``-``,
``@``, tab or CR gets a leading ``'`` unless it is a plain number (``-1.5`` stays ``-1.5``).

:func:`rows_to_csv` is the one CSV writer; :func:`measurement_rows` lays an :class:`InspectionBatch` out in
the long format :mod:`parsers.csv_` reads, so an export can be re-uploaded.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime

from parsers.csv_ import escape_for_spreadsheet
from parsers.model import InspectionBatch

__all__ = ["cell_text", "measurement_rows", "rows_to_csv"]

Cell = str | int | float | date | datetime | None


def cell_text(value: Cell) -> str:
    """Text of one cell before escaping: ``None`` -> empty, floats in shortest round-trip form, ISO dates.

    Raises ``ValueError`` for NaN/Infinity (they are not measurements and spreadsheets would misread them).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be exported: not a finite number")
        return repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def rows_to_csv(rows: Iterable[Sequence[Cell]]) -> bytes:
    """Serialise ``rows`` (header first, if any) as UTF-8 CSV with every formula-leading cell escaped.

    Comma-separated, ``"``-quoted where needed, CRLF line ends (RFC 4180). Numbers are written as numbers;
    text such as ``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``. Escaping applies to numbers' text too,
    but :func:`escape_for_spreadsheet` leaves plain numbers unchanged.
    """
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow([escape_for_spreadsheet(cell_text(c)) for c in row])
    return buf.getvalue().encode("utf-8")


def measurement_rows(batch: InspectionBatch) -> Iterator[list[Cell]]:
    """Header plus one row per measurement, in the long format :func:`parsers.csv_.parse_csv` reads.

    Columns: ``sample_id, characteristic, value, unit, uncertainty, coverage_factor, measured_at``, then
    ``part_number, part_revision, lot_id, lot_size`` when the batch has them, then every ``extra`` key in
    first-seen order (e.g. ``operator``, ``gauge_id``).
    """
    batch_cols = [
        (name, getattr(batch, name))
        for name in ("part_number", "part_revision", "lot_id", "lot_size")
        if getattr(batch, name) is not None
    ]
    extra_keys: list[str] = []
    for m in batch.measurements:
        extra_keys.extend(k for k in m.extra if k not in extra_keys)
    yield [
        "sample_id",
        "characteristic",
        "value",
        "unit",
        "uncertainty",
        "coverage_factor",
        "measured_at",
        *(name for name, _v in batch_cols),
        *extra_keys,
    ]
    for m in batch.measurements:
        yield [
            m.sample_id,
            m.characteristic,
            m.value,
            m.unit,
            m.uncertainty,
            m.coverage_factor,
            m.measured_at,
            *(v for _name, v in batch_cols),
            *(m.extra.get(k) for k in extra_keys),
        ]
