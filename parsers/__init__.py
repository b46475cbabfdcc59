"""qcn parsers: uploaded bytes -> one normalised model (pydantic).

``parse(data)`` checks the size, detects the format from content, and dispatches:

- inspection formats (csv, json, xlsx, aqdef, qif) -> :class:`InspectionBatch`
- report formats (pdf, dcc) -> ``LabReport`` (``parsers.report_model``)

Every failure is a :class:`parsers.errors.ParseError`.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Any

from parsers._safe import check_size
from parsers.detect import FORMATS, INSPECTION_FORMATS, REPORT_FORMATS, detect_format
from parsers.errors import ParseError, UnsupportedFormat
from parsers.limits import Limits
from parsers.model import CharacteristicSpec, InspectionBatch, Measurement, ParsedFile, ProcessValue
from parsers.provenance import Provenance, SourceFile

__all__ = [
    "FORMATS",
    "INSPECTION_FORMATS",
    "REPORT_FORMATS",
    "CharacteristicSpec",
    "InspectionBatch",
    "Limits",
    "Measurement",
    "ParseError",
    "ParsedFile",
    "ProcessValue",
    "Provenance",
    "SourceFile",
    "detect_format",
    "escape_for_spreadsheet",
    "parse",
    "parse_inspection",
    "source_file",
]

_MEDIA_TYPES = {
    "csv": "text/csv",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "aqdef": "text/plain",
    "qif": "application/xml",
    "dcc": "application/xml",
    "pdf": "application/pdf",
}
# format -> (module, function); imported lazily so a missing optional module only affects its format
_DISPATCH = {
    "csv": ("parsers.csv_", "parse_csv"),
    "json": ("parsers.json_", "parse_json"),
    "xlsx": ("parsers.xlsx", "parse_xlsx"),
    "aqdef": ("parsers.aqdef", "parse_aqdef"),
    "qif": ("parsers.qif", "parse_qif"),
    "pdf": ("parsers.pdf", "parse_pdf"),
    "dcc": ("parsers.dcc", "parse_dcc"),
}


def escape_for_spreadsheet(cell: str) -> str:
    """Prefix formula-like text with ``'`` before writing it to CSV/XLSX (see :mod:`parsers.csv_`)."""
    from parsers.csv_ import escape_for_spreadsheet as _escape

    return _escape(cell)


def source_file(data: bytes, *, format: str, filename: str | None = None) -> SourceFile:
    """Describe ``data`` as a :class:`SourceFile` (SHA-256, size, format, media type)."""
    return SourceFile(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        format=format,
        filename=filename,
        media_type=_MEDIA_TYPES.get(format),
    )


def _parser(fmt: str) -> Callable[..., Any]:
    module_name, func_name = _DISPATCH[fmt]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise UnsupportedFormat(f"format {fmt!r} is recognised but its parser is not installed") from exc
    func = getattr(module, func_name, None)
    if func is None:
        raise UnsupportedFormat(f"format {fmt!r} is recognised but {module_name}.{func_name} is missing")
    return func


def parse(
    data: bytes,
    *,
    filename: str | None = None,
    declared_format: str | None = None,
    limits: Limits = Limits(),  # noqa: B008
) -> ParsedFile:
    """Parse one uploaded file into a :class:`ParsedFile`.

    Order: ``limits.max_bytes`` first, then format detection from content (``declared_format``, if given,
    must agree with it), then the format's parser. Raises a :class:`ParseError` subclass on any problem.
    """
    check_size(data, limits)
    if declared_format is not None and declared_format not in FORMATS:
        raise UnsupportedFormat(
            f"declared format {declared_format!r} is not one of {', '.join(FORMATS)}",
            declared=declared_format,
        )
    fmt = detect_format(data, filename)
    if declared_format is not None and declared_format != fmt:
        raise UnsupportedFormat(
            f"declared format {declared_format!r} but the content is {fmt!r}",
            declared=declared_format,
            detected=fmt,
        )
    source = source_file(data, format=fmt, filename=filename)
    func = _parser(fmt)
    result = func(data, source=source, limits=limits)
    if fmt in REPORT_FORMATS:
        return ParsedFile(kind="report", format=fmt, source=source, report=result)
    return ParsedFile(kind="inspection", format=fmt, source=source, inspection=result)


def parse_inspection(
    data: bytes,
    *,
    filename: str | None = None,
    declared_format: str | None = None,
    limits: Limits = Limits(),  # noqa: B008
) -> InspectionBatch:
    """Like :func:`parse` but only for inspection formats; a PDF/DCC raises :class:`UnsupportedFormat`."""
    check_size(data, limits)
    fmt = declared_format or detect_format(data, filename)
    if fmt in REPORT_FORMATS:
        raise UnsupportedFormat(f"{fmt!r} is a lab report format, not inspection data", detected=fmt)
    parsed = parse(data, filename=filename, declared_format=declared_format, limits=limits)
    if parsed.inspection is None:  # pragma: no cover - guarded above
        raise UnsupportedFormat(f"{parsed.format!r} did not produce inspection data")
    return parsed.inspection
