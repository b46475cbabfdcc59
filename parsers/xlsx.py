"""XLSX inspection data: same columns and checks as CSV (:mod:`parsers.csv_`), read with openpyxl read-only.

The zip is inspected *before* openpyxl opens it (:func:`parsers._safe.open_zip`: member count, declared
uncompressed size, compression ratio), and every XML part is refused if it carries a DOCTYPE/ENTITY
(OOXML parts never do). Formulas are never evaluated: a formula cell is read as its formula text, which a
numeric column rejects ("=A2*2 is not a number") and a text column keeps verbatim.

Sheet choice: a sheet named like ``measurements`` (else the first sheet) is the measurement table; a sheet
named like ``process`` is read as process data and attached to the same batch.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from typing import Any

from parsers._safe import Deadline, open_zip
from parsers.csv_ import table_to_batch
from parsers.errors import EmptyInput, HostileInput, MalformedInput, ParseError
from parsers.limits import Limits
from parsers.model import InspectionBatch
from parsers.provenance import SourceFile

__all__ = ["MEASUREMENT_SHEET_NAMES", "PROCESS_SHEET_NAMES", "parse_xlsx"]

MEASUREMENT_SHEET_NAMES = ("measurements", "measurement", "messwerte", "测量数据", "测量值")
PROCESS_SHEET_NAMES = ("process", "process_data", "prozessdaten", "过程数据")
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _refuse_dtds(zf: zipfile.ZipFile) -> None:
    for info in zf.infolist():
        if not info.filename.endswith((".xml", ".rels")):
            continue
        try:
            with zf.open(info) as fh:
                head = fh.read(4096)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise MalformedInput(f"XLSX member {info.filename!r} is corrupt: {exc}", location=info.filename) from exc
        if _DTD.search(head):
            raise HostileInput(
                f"XLSX member {info.filename!r} declares a DOCTYPE/ENTITY; refused", location=info.filename
            )


def _rows(ws: Any) -> Iterator[tuple[int, Sequence[Any]]]:
    yield from enumerate(ws.iter_rows(values_only=True), start=1)


def _sheet_batch(
    ws: Any, *, source: SourceFile, limits: Limits, warns: list[str], sheet: str, deadline: Deadline
) -> InspectionBatch:
    rows = _rows(ws)
    header: Sequence[Any] | None = None
    for n, row in rows:
        deadline.tick(f"sheet {sheet!r}, row {n}")
        if any(c is not None and str(c).strip() for c in row):
            header = row
            break
    if header is None:
        raise EmptyInput(f"sheet {sheet!r} is empty", location=f"sheet {sheet!r}")
    try:
        return table_to_batch(
            header, rows, source=source, limits=limits, pad_short_rows=True, warnings=warns, deadline=deadline
        )
    except ParseError as exc:
        exc.location = f"sheet {sheet!r}, {exc.location}" if exc.location else f"sheet {sheet!r}"
        exc.facts.setdefault("sheet", sheet)
        raise


def parse_xlsx(data: bytes, *, source: SourceFile, limits: Limits = Limits()) -> InspectionBatch:  # noqa: B008
    """Parse an XLSX workbook into an :class:`InspectionBatch` (see module docstring for sheet choice).

    Raises :class:`LimitExceeded`/:class:`HostileInput` for zip bombs (naming the limit),
    :class:`MalformedInput` for truncated/corrupt workbooks, and the CSV table errors with the sheet name
    prefixed to ``location``; :class:`LimitExceeded` naming ``max_seconds`` when reading takes too long.
    """
    deadline = Deadline(limits, what="XLSX")
    zf = open_zip(data, limits=limits, what="XLSX workbook")
    if "xl/workbook.xml" not in zf.namelist():
        raise MalformedInput("XLSX workbook lacks xl/workbook.xml")
    _refuse_dtds(zf)
    import openpyxl  # heavy; only when an XLSX actually arrives
    from defusedxml import DefusedXmlException
    from openpyxl.utils.exceptions import InvalidFileException

    warns: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
            try:
                names = list(wb.sheetnames)
                by_norm = {_norm(n): n for n in names}
                meas_name = next((by_norm[n] for n in MEASUREMENT_SHEET_NAMES if n in by_norm), None)
                proc_name = next((by_norm[n] for n in PROCESS_SHEET_NAMES if n in by_norm), None)
                if meas_name is None and proc_name is None:
                    meas_name = names[0]
                result: InspectionBatch | None = None
                for name in (meas_name, proc_name):
                    if name is None:
                        continue
                    ws = wb[name]
                    ws.reset_dimensions()  # a wrong <dimension> must not truncate rows
                    part = _sheet_batch(ws, source=source, limits=limits, warns=warns, sheet=name, deadline=deadline)
                    if result is None:
                        result = part
                    else:
                        result.process.extend(part.process)
                        result.measurements.extend(part.measurements)
            finally:
                wb.close()
        warns.extend(f"openpyxl: {w.message}" for w in caught)
    except ParseError:
        raise
    except DefusedXmlException as exc:
        raise HostileInput(f"XLSX contains forbidden XML constructs: {exc}") from exc
    except (
        InvalidFileException,
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        TypeError,
        OSError,
        EOFError,
        SyntaxError,  # xml.etree ParseError and lxml XMLSyntaxError
        IndexError,
    ) as exc:
        raise MalformedInput(f"XLSX workbook is corrupt or truncated: {type(exc).__name__}: {exc}") from exc
    assert result is not None
    result.warnings = warns
    return result
