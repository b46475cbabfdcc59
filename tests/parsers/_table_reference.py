"""The table parser as it was before its fast path: every model validated by pydantic, one ``_Row`` per row.

Kept verbatim (from ``parsers/csv_.py`` before the fast path) as the oracle test_table_fast_path.py holds
:func:`parsers.csv_.table_to_batch` to: same batch, same dump, same records, same error for any input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from parsers._safe import Deadline
from parsers.csv_ import _BATCH_FIELDS, _EXTRA_FIELDS, _parse_datetime, _parse_number, _resolve_header, _Row, _text
from parsers.errors import EmptyInput, InvalidValue, LimitExceeded, MalformedInput
from parsers.limits import Limits
from parsers.model import TIERS, InspectionBatch, Measurement, ProcessValue
from parsers.provenance import Provenance, SourceFile

__all__ = ["reference_records", "reference_table_to_batch"]


def reference_records(batch: InspectionBatch) -> list[dict[str, Any]]:
    """``InspectionBatch.records()`` as it was: attribute reads, one dict per measurement."""
    return [
        {
            "sample": m.sample_id,
            "characteristic": m.characteristic,
            "value": m.value,
            "unit": m.unit,
            "uncertainty": m.uncertainty,
            "coverage_factor": m.coverage_factor,
            "measured_at": m.measured_at.isoformat() if m.measured_at is not None else None,
        }
        for m in batch.measurements
    ]


def reference_table_to_batch(
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
    ncols = len(canon)
    idx = {c: i for i, c in enumerate(canon) if c is not None}
    key_col = idx["variable" if kind == "process" else "sample_id"]
    sha = source.sha256
    batch_vals: dict[str, tuple[Any, int]] = {}
    measurements: list[Measurement] = []
    process: list[ProcessValue] = []
    seen_keys: dict[tuple[str, str | None], int] = {}
    count = 0

    for rownum, raw in rows:
        deadline.tick(f"row {rownum}")
        cells = list(raw)
        if not cells:  # blank line
            continue
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
            continue
        count += 1
        if count > limits.max_rows:
            raise LimitExceeded(
                f"more than max_rows={limits.max_rows} data rows",
                limit="max_rows",
                allowed=limits.max_rows,
                actual=count,
            )

        r = _Row(cells, rownum, idx, labels, decimal_comma)
        cell, bad, number, required_text = r.cell, r.bad, r.number, r.required_text

        def prov(name: str, rownum: int = rownum) -> Provenance:
            return Provenance(file_sha256=sha, kind="table", row=rownum, column=labels[idx[name]])

        if kind == "process":
            variable = required_text("variable")
            tier = required_text("tier").lower()
            if tier not in TIERS:
                raise bad("tier", f"tier {tier!r} is not one of {', '.join(TIERS)}")
            pvalue = number("value", required=True)
            assert pvalue is not None
            unit = _text(cell("unit")) or None
            sample = _text(cell("sample_id")) or None
            key = (variable, sample)
            if key in seen_keys:
                raise InvalidValue(
                    f"duplicate process value for variable {variable!r}"
                    f"{'' if sample is None else f', sample {sample!r}'} "
                    f"in rows {seen_keys[key]} and {rownum}",
                    location=f"row {rownum}",
                    row=rownum,
                    first_row=seen_keys[key],
                )
            seen_keys[key] = rownum
            process.append(
                ProcessValue(
                    variable=variable,
                    tier=tier,  # type: ignore[arg-type]  # checked against the tiers above
                    value=pvalue,
                    unit=unit,
                    sample_id=sample,
                    provenance=prov("value"),
                )
            )
            continue

        sample_id = required_text("sample_id")
        characteristic = required_text("characteristic")
        value = number("value", required=True)
        assert value is not None
        unit = required_text("unit")
        uncertainty = number("uncertainty", required=False)
        if uncertainty is not None and uncertainty < 0:
            raise bad("uncertainty", f"uncertainty {uncertainty} is negative")
        k = number("coverage_factor", required=False)
        if k is not None and k <= 0:
            raise bad("coverage_factor", f"coverage factor {k} must be > 0")
        try:
            measured_at = _parse_datetime(cell("measured_at"))
        except ValueError:
            raise bad("measured_at", f"{_text(cell('measured_at'))!r} is not an ISO 8601 date/time") from None
        mkey = (sample_id, characteristic)
        if mkey in seen_keys:
            raise InvalidValue(
                f"duplicate measurement of characteristic {characteristic!r} on sample {sample_id!r} "
                f"in rows {seen_keys[mkey]} and {rownum}",
                location=f"row {rownum}",
                row=rownum,
                first_row=seen_keys[mkey],
            )
        seen_keys[mkey] = rownum
        for bf in _BATCH_FIELDS:
            if bf not in idx:
                continue
            if bf == "lot_size":
                try:
                    lv = _parse_number(cell(bf), decimal_comma=False)
                except ValueError:
                    raise bad(bf, f"{_text(cell(bf))!r} is not a whole number") from None
                if lv is not None and (not lv.is_integer() or lv < 0):
                    raise bad(bf, f"{_text(cell(bf))!r} is not a whole number >= 0")
                bv: Any = None if lv is None else int(lv)
            else:
                bv = _text(cell(bf)) or None
            if bv is None:
                continue
            if bf in batch_vals and batch_vals[bf][0] != bv:
                first, first_row = batch_vals[bf]
                raise bad(bf, f"{bv!r} differs from {first!r} in row {first_row}; one file is one batch")
            batch_vals.setdefault(bf, (bv, rownum))
        extra = {f: t for f in _EXTRA_FIELDS if f in idx and (t := _text(cell(f)))}
        measurements.append(
            Measurement(
                sample_id=sample_id,
                characteristic=characteristic,
                value=value,
                unit=unit,
                uncertainty=uncertainty,
                coverage_factor=k,
                measured_at=measured_at,
                provenance=prov("value"),
                extra=extra,
            )
        )

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
