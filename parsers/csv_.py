"""CSV inspection data (long format, one measurement per row) and process-data CSV; the table core is shared
with XLSX.

Encodings: UTF-8 (with or without BOM), then GB18030/GBK. Bytes that are neither raise
:class:`MalformedInput` naming the first undecodable byte offset: we never guess a single-byte code page
(a Latin-1 file read as GBK would be silent mojibake). Delimiter ``;``, ``,`` or tab, sniffed from the
header line; with ``;`` a decimal comma (``12,5``) is accepted.

Measurement columns (header synonyms are case/space-insensitive, see ``MEASUREMENT_COLUMNS``):
required ``sample_id, characteristic, value, unit``; optional ``uncertainty, coverage_factor, measured_at,
part_number, part_revision, lot_id, lot_size, operator, gauge_id``.
Process columns: ``variable, tier, value`` [, ``unit, sample_id``].

Cells starting with ``= + - @`` are data, kept verbatim and never evaluated; use
:func:`escape_for_spreadsheet` when writing any cell back out to CSV/XLSX.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from parsers._safe import Deadline, check_size
from parsers.errors import (
    EmptyInput,
    InvalidValue,
    LimitExceeded,
    MalformedInput,
    MissingField,
    UnexpectedField,
)
from parsers.limits import Limits
from parsers.model import TIERS, InspectionBatch, Measurement, ProcessValue, trusted
from parsers.provenance import Provenance, SourceFile

__all__ = [
    "MEASUREMENT_COLUMNS",
    "PROCESS_COLUMNS",
    "decode_text",
    "escape_for_spreadsheet",
    "parse_csv",
    "sniff_delimiter",
    "table_to_batch",
]

MEASUREMENT_REQUIRED = ("sample_id", "characteristic", "value", "unit")
MEASUREMENT_OPTIONAL = (
    "uncertainty",
    "coverage_factor",
    "measured_at",
    "part_number",
    "part_revision",
    "lot_id",
    "lot_size",
    "operator",
    "gauge_id",
)
PROCESS_REQUIRED = ("variable", "tier", "value")
PROCESS_OPTIONAL = ("unit", "sample_id")

# canonical name -> accepted header spellings (after normalisation: lower case, spaces/hyphens -> "_")
MEASUREMENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "sample_id": (
        "sample_id",
        "sample",
        "sampleid",
        "sample_no",
        "sample_number",
        "serial",
        "serial_number",
        "specimen",
        "part_serial",
        "样品",
        "样品编号",
        "样本",
        "样本编号",
        "probe",
        "probennummer",
        "proben_nr",
    ),
    "characteristic": (
        "characteristic",
        "char",
        "characteristic_name",
        "feature",
        "merkmal",
        "特性",
        "检验项目",
        "测量项目",
    ),
    "value": ("value", "measured_value", "measurement", "actual", "result", "messwert", "wert", "测量值", "实测值"),
    "unit": ("unit", "units", "unit_of_measure", "uom", "einheit", "单位"),
    "uncertainty": (
        "uncertainty",
        "measurement_uncertainty",
        "expanded_uncertainty",
        "u",
        "messunsicherheit",
        "不确定度",
    ),
    "coverage_factor": ("coverage_factor", "k", "erweiterungsfaktor", "包含因子"),
    "measured_at": (
        "measured_at",
        "timestamp",
        "datetime",
        "date_time",
        "measured",
        "messzeitpunkt",
        "zeitpunkt",
        "测量时间",
    ),
    "part_number": ("part_number", "part_no", "part", "teilenummer", "sachnummer", "零件号", "零件编号"),
    "part_revision": ("part_revision", "revision", "rev", "änderungsstand", "版本"),
    "lot_id": ("lot_id", "lot", "lot_number", "batch", "batch_id", "charge", "los", "批号", "批次"),
    "lot_size": ("lot_size", "batch_size", "lot_qty", "losgröße", "losgroesse", "批量"),
    "operator": ("operator", "inspector", "prüfer", "bediener", "操作员", "检验员"),
    "gauge_id": (
        "gauge_id",
        "gauge",
        "instrument",
        "instrument_id",
        "equipment_id",
        "prüfmittel",
        "messmittel",
        "量具",
        "量具编号",
    ),
}
PROCESS_COLUMNS: dict[str, tuple[str, ...]] = {
    "variable": ("variable", "variable_name", "process_variable", "变量", "参数"),
    "tier": ("tier", "category", "层级"),
    "value": ("value", "wert", "值", "数值"),
    "unit": ("unit", "units", "unit_of_measure", "uom", "einheit", "单位"),
    "sample_id": ("sample_id", "sample", "serial", "样品", "probe"),
}
_BATCH_FIELDS = ("part_number", "part_revision", "lot_id", "lot_size")
_EXTRA_FIELDS = ("operator", "gauge_id")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NUMBER_COMMA = re.compile(r"[+-]?(?:\d+(?:,\d*)?|,\d+)(?:[eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_DATETIME_FORMATS = ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d")


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lstrip("\ufeff").strip().lower())


def _lookup(columns: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {alias: canon for canon, aliases in columns.items() for alias in aliases}


_MEAS_LOOKUP = _lookup(MEASUREMENT_COLUMNS)
_PROC_LOOKUP = _lookup(PROCESS_COLUMNS)


def escape_for_spreadsheet(cell: str) -> str:
    """Make ``cell`` safe to write into a CSV/XLSX cell: formula-like text gets a leading ``'``.

    Cells starting with ``= + - @``, tab or CR would be evaluated by spreadsheet programs (CSV injection);
    they are prefixed with ``'``. Plain numbers such as ``-1.5`` or ``+3e-2`` are returned unchanged.
    """
    if cell.startswith(_FORMULA_START) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Decode uploaded text; return ``(text, encoding_used)``.

    Tries UTF-8 (BOM stripped), then GB18030. Raises :class:`MalformedInput` naming the byte offset of the
    first byte that is not UTF-8 when neither decoding is plausible.
    """
    if encoding is not None:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            start = getattr(exc, "start", None)
            raise MalformedInput(
                f"file cannot be decoded as declared encoding {encoding!r}: {exc}",
                location=f"byte {start}" if start is not None else None,
                byte_offset=start,
            ) from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        name = "utf-8-sig"
    else:
        name = "utf-8"
    try:
        return data.decode("utf-8"), name
    except UnicodeDecodeError as exc:
        utf8_error = exc
    # A UTF-8 BOM in front of GBK bytes is what some tools write when they prepend a BOM to a file they did
    # not re-encode: the BOM lies, the bytes are GBK. Decoded as such (the caller warns); refused only when
    # the bytes are not plausible GBK either, and the message then says what the BOM promised.
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    if text and _plausible_gb(text):
        return text, "gb18030"
    offset = utf8_error.start + (3 if name == "utf-8-sig" else 0)
    bom = "the file starts with a UTF-8 byte-order mark but " if name == "utf-8-sig" else ""
    raise MalformedInput(
        f"{bom}byte 0x{data[utf8_error.start]:02x} at offset {offset} is not valid UTF-8 and the file is not "
        "plausible GB18030/GBK either; re-save it as UTF-8",
        location=f"byte {offset}",
        byte_offset=offset,
    )


def _plausible_gb(text: str) -> bool:
    """GB18030 decodes almost anything; accept it only if no character took an ASCII trail byte.

    A Latin-1/CP1252 file ("Maß;..." ) decoded as GBK pairs a high byte with the following ASCII letter;
    real Chinese text in GB2312/GBK common ranges uses trail bytes >= 0x80.
    """
    for ch in text:
        if ord(ch) < 0x80:
            continue
        if ch == "\ufffd":
            return False
        enc = ch.encode("gb18030")
        if any(b < 0x80 for b in enc[1:]):
            return False
    return True


def sniff_delimiter(header_line: str) -> str:
    """Pick ``;``, tab or ``,`` by count in the header line (ties prefer ``;`` then tab)."""
    counts = {d: header_line.count(d) for d in (";", "\t", ",")}
    best = max(counts, key=lambda d: counts[d])  # dict order breaks ties: ; > tab > ,
    return best if counts[best] > 0 else ","


def _parse_number(cell: Any, *, decimal_comma: bool) -> float | None:
    """Number from a cell, None if empty; raises ValueError if not a plain finite number."""
    if cell is None:
        return None
    if isinstance(cell, bool):
        raise ValueError("boolean")
    if isinstance(cell, int | float):
        try:
            return float(cell)
        except OverflowError:  # an integer cell beyond any float (XLSX keeps digit runs as ints): not finite
            return math.inf
    if isinstance(cell, datetime):
        raise ValueError("date")
    text = str(cell).strip()
    if not text:
        return None
    if _NUMBER.fullmatch(text):
        return float(text)
    if decimal_comma and _NUMBER_COMMA.fullmatch(text):
        return float(text.replace(",", "."))
    raise ValueError(text)


def _parse_datetime(cell: Any) -> datetime | None:
    if cell is None:
        return None
    if isinstance(cell, datetime):
        return cell
    text = str(cell).strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(text)


def _text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime):
        return cell.isoformat()
    return str(cell).strip()


def _resolve_header(header: Sequence[Any]) -> tuple[str, list[str | None], list[str]]:
    """Map header cells to canonical names; returns (kind, canonical per column, original labels)."""
    labels = [_text(h).lstrip("\ufeff") for h in header]
    while labels and not labels[-1]:
        labels.pop()
    normed = [_norm(lbl) for lbl in labels]
    is_process = {"variable", "tier"} <= {_PROC_LOOKUP.get(n) for n in normed}
    lookup, required, optional = (
        (_PROC_LOOKUP, PROCESS_REQUIRED, PROCESS_OPTIONAL)
        if is_process
        else (_MEAS_LOOKUP, MEASUREMENT_REQUIRED, MEASUREMENT_OPTIONAL)
    )
    kind = "process" if is_process else "measurement"
    accepted = ", ".join(required + optional)
    canon: list[str | None] = []
    seen: dict[str, str] = {}
    for i, (lbl, n) in enumerate(zip(labels, normed, strict=True)):
        if not n:
            raise MalformedInput(f"column {i + 1} has an empty header", location="row 1", column=i + 1)
        c = lookup.get(n)
        if c is None:
            raise UnexpectedField(
                f"unknown column {lbl!r} in {kind} data; accepted columns: {accepted}",
                location="row 1",
                field=lbl,
                accepted=list(required + optional),
            )
        if c in seen:
            raise MalformedInput(f"columns {seen[c]!r} and {lbl!r} both mean {c!r}", location="row 1", field=c)
        seen[c] = lbl
        canon.append(c)
    for r in required:
        if r not in seen:
            raise MissingField(
                f"required column {r!r} is missing from {kind} data (header: {', '.join(labels) or 'empty'})",
                location="row 1",
                field=r,
            )
    return kind, canon, labels


class _Row:
    """Typed access to one data row's cells with errors naming row and column."""

    __slots__ = ("cells", "decimal_comma", "idx", "labels", "rownum")

    def __init__(
        self, cells: list[Any], rownum: int, idx: dict[str, int], labels: list[str], decimal_comma: bool
    ) -> None:
        self.cells = cells
        self.rownum = rownum
        self.idx = idx
        self.labels = labels
        self.decimal_comma = decimal_comma

    def cell(self, name: str) -> Any:
        i = self.idx.get(name)
        return None if i is None else self.cells[i]

    def bad(self, name: str, msg: str) -> InvalidValue:
        col = self.labels[self.idx[name]]
        return InvalidValue(
            f"row {self.rownum}, column {col!r}: {msg}",
            location=f"row {self.rownum}, column {col!r}",
            row=self.rownum,
            column=col,
        )

    def number(self, name: str, *, required: bool) -> float | None:
        try:
            v = _parse_number(self.cell(name), decimal_comma=self.decimal_comma)
        except ValueError:
            raise self.bad(name, f"{_text(self.cell(name))!r} is not a number") from None
        if v is None and required:
            raise self.bad(name, "value is empty")
        if v is not None and not math.isfinite(v):
            raise self.bad(name, "value is not finite")
        return v

    def required_text(self, name: str) -> str:
        t = _text(self.cell(name))
        if not t:
            raise self.bad(name, "value is empty")
        return t


class _Unsure(Exception):  # internal control flow: never leaves this module
    """The quick path cannot vouch for a row; the checked path parses it again and raises the error, if any."""


_INF = math.inf
_number_comma_full = _NUMBER_COMMA.fullmatch


def _quick_number(cell: Any, decimal_comma: bool) -> float | None:
    """:func:`_parse_number` plus the finite check for the common cell types; :class:`_Unsure` otherwise."""
    if type(cell) is str:
        text = cell.strip()
        if not text:
            return None
        if decimal_comma and "," in text:  # never matches _NUMBER
            if not _number_comma_full(text):
                raise _Unsure
            v = float(text.replace(",", "."))
        else:
            # float() accepts what _NUMBER matches and more: "_" digit grouping, inf/nan (not finite, refused
            # below), Unicode digits (left to _parse_number). Cheaper than the regular expression.
            try:
                v = float(text)
            except ValueError:
                raise _Unsure from None
            if "_" in text or not text.isascii():
                raise _Unsure
    elif type(cell) is float:
        v = cell
    elif type(cell) is int and -(2**1023) < cell < 2**1023:  # a larger one overflows float(): the slow path
        v = float(cell)
    elif cell is None:
        return None
    else:
        raise _Unsure
    if not -_INF < v < _INF:  # also false for NaN
        raise _Unsure
    return v


def _checked_measurement(r: _Row) -> tuple[str, str, float, str, float | None, float | None, datetime | None]:
    """The typed cells of a measurement row, raising :class:`InvalidValue` for the first bad cell."""
    sample_id = r.required_text("sample_id")
    characteristic = r.required_text("characteristic")
    value = r.number("value", required=True)
    assert value is not None
    unit = r.required_text("unit")
    uncertainty = r.number("uncertainty", required=False)
    if uncertainty is not None and uncertainty < 0:
        raise r.bad("uncertainty", f"uncertainty {uncertainty} is negative")
    k = r.number("coverage_factor", required=False)
    if k is not None and k <= 0:
        raise r.bad("coverage_factor", f"coverage factor {k} must be > 0")
    try:
        measured_at = _parse_datetime(r.cell("measured_at"))
    except ValueError:
        raise r.bad("measured_at", f"{_text(r.cell('measured_at'))!r} is not an ISO 8601 date/time") from None
    return sample_id, characteristic, value, unit, uncertainty, k, measured_at


def _batch_fields(r: _Row, names: Sequence[str], batch_vals: dict[str, tuple[Any, int]]) -> None:
    """Record the row's batch-level cells in ``batch_vals``; a value differing from an earlier row's raises."""
    for bf in names:
        if bf == "lot_size":
            try:
                lv = _parse_number(r.cell(bf), decimal_comma=False)
            except ValueError:
                raise r.bad(bf, f"{_text(r.cell(bf))!r} is not a whole number") from None
            if lv is not None and (not lv.is_integer() or lv < 0):
                raise r.bad(bf, f"{_text(r.cell(bf))!r} is not a whole number >= 0")
            bv: Any = None if lv is None else int(lv)
        else:
            bv = _text(r.cell(bf)) or None
        if bv is None:
            continue
        if bf in batch_vals and batch_vals[bf][0] != bv:
            first, first_row = batch_vals[bf]
            raise r.bad(bf, f"{bv!r} differs from {first!r} in row {first_row}; one file is one batch")
        batch_vals.setdefault(bf, (bv, r.rownum))


def _regular(cells: list[Any], rownum: int, *, ncols: int, key_col: int, pad_short_rows: bool) -> list[Any] | None:
    """A row's cells cut or padded to ``ncols``, or None for a blank row; raises for a ragged row."""
    if not cells:  # blank line
        return None
    if len(cells) != ncols:
        if len(cells) > ncols and all(_text(c) == "" for c in cells[ncols:]):
            cells = cells[:ncols]
        elif len(cells) < ncols and pad_short_rows:
            cells = cells + [None] * (ncols - len(cells))
        else:
            raise MalformedInput(
                f"row {rownum} has {len(cells)} cells but the header has {ncols}",
                location=f"row {rownum}",
                row=rownum,
            )
    k0 = cells[key_col]  # fast path: a filled key cell means the row is not blank
    if (k0 is None or (isinstance(k0, str) and not k0.strip())) and all(_text(c) == "" for c in cells):
        return None
    return cells


def _process_value(r: _Row, seen: dict[tuple[str, str | None], int]) -> tuple[str, str, float, str | None, str | None]:
    """A process row's variable, tier, value, unit and sample; raises for the first bad cell or a duplicate."""
    variable = r.required_text("variable")
    tier = r.required_text("tier").lower()
    if tier not in TIERS:
        raise r.bad("tier", f"tier {tier!r} is not one of {', '.join(TIERS)}")
    value = r.number("value", required=True)
    assert value is not None
    unit = _text(r.cell("unit")) or None
    sample = _text(r.cell("sample_id")) or None
    key = (variable, sample)
    if key in seen:
        raise InvalidValue(
            f"duplicate process value for variable {variable!r}"
            f"{'' if sample is None else f', sample {sample!r}'} "
            f"in rows {seen[key]} and {r.rownum}",
            location=f"row {r.rownum}",
            row=r.rownum,
            first_row=seen[key],
        )
    seen[key] = r.rownum
    return variable, tier, value, unit, sample


def table_to_batch(
    header: Sequence[Any],
    rows: Iterable[tuple[int, Sequence[Any]]],
    *,
    source: SourceFile,
    limits: Limits,
    decimal_comma: bool = False,
    pad_short_rows: bool = False,
    warnings: list[str] | None = None,
    deadline: Deadline | None = None,
) -> InspectionBatch:
    """Turn a header plus ``(row_number, cells)`` rows into an :class:`InspectionBatch`.

    Shared by CSV and XLSX. Row numbers are 1-based with the header on row 1 (as a spreadsheet shows
    them). ``deadline`` (default: started now) bounds the time with ``limits.max_seconds``, checked every
    1024 rows. Raises the ParseError subclasses described in the module docstring.
    """
    deadline = deadline or Deadline(limits, what="table")
    kind, canon, labels = _resolve_header(header)
    is_process = kind == "process"
    ncols = len(canon)
    idx = {c: i for i, c in enumerate(canon) if c is not None}
    key_col = idx["variable" if is_process else "sample_id"]
    i_sample, i_char, i_value, i_unit, i_unc, i_k, i_time = (
        idx.get(c, -1) for c in (*MEASUREMENT_REQUIRED, "uncertainty", "coverage_factor", "measured_at")
    )
    batch_cols = [bf for bf in _BATCH_FIELDS if bf in idx]
    extra_cols = [(f, idx[f]) for f in _EXTRA_FIELDS if f in idx]
    max_rows = limits.max_rows
    # Models are built unvalidated (parsers.model.trusted): a measurement row takes the quick path below only
    # when it passes the checks validation would make, every other row goes through _checked_measurement
    # (or _process_value), which raises. Each row's provenance is this one (its value cell) with "row" set.
    template = Provenance(file_sha256=source.sha256, kind="table", row=0, column=labels[idx["value"]])
    prov_values, prov_set = template.__dict__, template.model_fields_set
    meas_set, proc_set = set(Measurement.model_fields), set(ProcessValue.model_fields)
    batch_vals: dict[str, tuple[Any, int]] = {}
    measurements: list[Measurement] = []
    process: list[ProcessValue] = []
    seen: dict[tuple[str, str | None], int] = {}
    count = 0

    tick = deadline.tick_at
    for rownum, raw in rows:
        tick("row {}", rownum)
        cells = raw if type(raw) is list else list(raw)
        k0 = cells[key_col] if len(cells) == ncols else None
        if k0 is None or (isinstance(k0, str) and not k0.strip()):
            regular = _regular(cells, rownum, ncols=ncols, key_col=key_col, pad_short_rows=pad_short_rows)
            if regular is None:
                continue
            cells = regular
        count += 1
        if count > max_rows:
            raise LimitExceeded(
                f"more than max_rows={max_rows} data rows",
                limit="max_rows",
                allowed=max_rows,
                actual=count,
            )
        prov = prov_values.copy()
        prov["row"] = rownum
        provenance = trusted(Provenance, prov, prov_set)

        if is_process:
            variable, tier, pvalue, punit, sample = _process_value(
                _Row(cells, rownum, idx, labels, decimal_comma), seen
            )
            values: dict[str, Any] = {
                "variable": variable,
                "tier": tier,
                "value": pvalue,
                "unit": punit,
                "sample_id": sample,
                "provenance": provenance,
            }
            process.append(trusted(ProcessValue, values, proc_set))
            continue

        try:
            sample_id = cells[i_sample]
            sample_id = sample_id.strip() if type(sample_id) is str else _text(sample_id)
            characteristic = cells[i_char]
            characteristic = characteristic.strip() if type(characteristic) is str else _text(characteristic)
            value = _quick_number(cells[i_value], decimal_comma)
            unit = cells[i_unit]
            unit = unit.strip() if type(unit) is str else _text(unit)
            if not sample_id or not characteristic or not unit or value is None:
                raise _Unsure
            uncertainty = None if i_unc < 0 else _quick_number(cells[i_unc], decimal_comma)
            if uncertainty is not None and uncertainty < 0:
                raise _Unsure
            k = None if i_k < 0 else _quick_number(cells[i_k], decimal_comma)
            if k is not None and k <= 0:
                raise _Unsure
            try:
                measured_at = None if i_time < 0 else _parse_datetime(cells[i_time])
            except ValueError:
                raise _Unsure from None
        except _Unsure:
            sample_id, characteristic, value, unit, uncertainty, k, measured_at = _checked_measurement(
                _Row(cells, rownum, idx, labels, decimal_comma)
            )
        key = (sample_id, characteristic)
        if key in seen:
            raise InvalidValue(
                f"duplicate measurement of characteristic {characteristic!r} on sample {sample_id!r} "
                f"in rows {seen[key]} and {rownum}",
                location=f"row {rownum}",
                row=rownum,
                first_row=seen[key],
            )
        seen[key] = rownum
        if batch_cols:
            _batch_fields(_Row(cells, rownum, idx, labels, decimal_comma), batch_cols, batch_vals)
        values = {
            "sample_id": sample_id,
            "characteristic": characteristic,
            "value": value,
            "unit": unit,
            "uncertainty": uncertainty,
            "coverage_factor": k,
            "measured_at": measured_at,
            "provenance": provenance,
            "extra": {f: t for f, i in extra_cols if (t := _text(cells[i]))} if extra_cols else {},
        }
        measurements.append(trusted(Measurement, values, meas_set))

    if count == 0:
        raise EmptyInput(f"{kind} data has a header but no data rows", location="row 2")
    deadline.check("end of table")
    return InspectionBatch(
        part_number=batch_vals.get("part_number", (None,))[0],
        part_revision=batch_vals.get("part_revision", (None,))[0],
        lot_id=batch_vals.get("lot_id", (None,))[0],
        lot_size=batch_vals.get("lot_size", (None,))[0],
        measurements=measurements,
        process=process,
        source=source,
        warnings=list(warnings or []),
    )


def _csv_rows(reader: Any) -> Iterable[tuple[int, list[str]]]:
    prev = reader.line_num
    try:
        for row in reader:
            start = prev + 1
            prev = reader.line_num
            yield start, row
    except csv.Error as exc:
        raise MalformedInput(
            f"CSV syntax error near line {reader.line_num}: {exc}",
            location=f"row {reader.line_num}",
            row=reader.line_num,
        ) from exc


def parse_csv(
    data: bytes,
    *,
    source: SourceFile,
    limits: Limits = Limits(),  # noqa: B008 - immutable (frozen) default
    encoding: str | None = None,
) -> InspectionBatch:
    """Parse a long-format measurement CSV or a process-data CSV into an :class:`InspectionBatch`.

    ``encoding`` overrides detection. Raises :class:`MalformedInput` (encoding, quoting, ragged rows),
    :class:`MissingField`, :class:`UnexpectedField`, :class:`InvalidValue`, :class:`EmptyInput`,
    :class:`LimitExceeded` (``max_bytes``, ``max_rows``, ``max_seconds``).
    """
    deadline = Deadline(limits, what="CSV")
    check_size(data, limits)
    text, used = decode_text(data, encoding)
    warnings: list[str] = []
    if used == "gb18030":
        warnings.append("file is not UTF-8; decoded as GB18030")
    if "\x00" in text:
        pos = text.index("\x00")
        raise MalformedInput(
            "CSV contains NUL characters (binary file or UTF-16?)",
            location=f"character {pos}",
        )
    stripped = text.lstrip("\r\n")
    if not stripped.strip():
        raise EmptyInput("CSV file is empty")
    first_line = stripped.split("\n", 1)[0]
    delimiter = sniff_delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=True)
    rows = iter(_csv_rows(reader))
    header: list[str] | None = None
    for _rownum, row in rows:
        if row and any(c.strip() for c in row):
            header = row
            break
    if header is None:
        raise EmptyInput("CSV file has no header row")
    return table_to_batch(
        header,
        rows,
        source=source,
        limits=limits,
        decimal_comma=(delimiter == ";"),
        warnings=warnings,
        deadline=deadline,
    )
