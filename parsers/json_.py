"""JSON inspection data.

Shape (unknown keys are refused)::

    {"part_number": "P-100", "part_revision": "B", "lot_id": "L-7", "lot_size": 500,
     "measurements": [{"sample_id": "S1", "characteristic": "diameter", "value": 10.02, "unit": "mm",
                       "uncertainty": 0.004, "coverage_factor": 2, "measured_at": "2025-03-01T08:00:00Z",
                       "operator": "li", "gauge_id": "G-12", "extra": {"fixture": "F3"}}],
     "process": [{"variable": "rf_power", "tier": "process", "value": 301.2, "unit": "W",
                  "sample_id": null}]}

UTF-8 only (RFC 8259; a BOM is tolerated). Duplicate keys, NaN/Infinity and nesting deeper than
``Limits.max_json_depth`` are refused. Every value's provenance is its RFC 6901 JSON pointer.
"""

from __future__ import annotations

import json
import math
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
from parsers.model import TIERS, InspectionBatch, Measurement, ProcessValue
from parsers.provenance import Provenance, SourceFile

__all__ = ["parse_json"]

_TOP = ("part_number", "part_revision", "lot_id", "lot_size", "measurements", "process")
_MEAS_REQUIRED = ("sample_id", "characteristic", "value", "unit")
_MEAS_OPTIONAL = ("uncertainty", "coverage_factor", "measured_at", "operator", "gauge_id", "extra")
_PROC_REQUIRED = ("variable", "tier", "value")
_PROC_OPTIONAL = ("unit", "sample_id")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise MalformedInput(f"JSON contains {name}; only finite numbers are allowed", constant=name)


def _ptr(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _depth(doc: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in node if isinstance(v, dict | list))
    return deepest


def _load(data: bytes, limits: Limits) -> Any:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput(
            f"JSON is not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}",
            location=f"byte {exc.start}",
            byte_offset=exc.start,
        ) from exc
    if not text.strip():
        raise EmptyInput("JSON file is empty")
    try:
        doc = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except _DuplicateKey as exc:
        raise MalformedInput(f"JSON object has duplicate key {exc.key!r}", field=exc.key) from None
    except RecursionError:
        raise LimitExceeded(
            f"JSON nesting deeper than max_json_depth={limits.max_json_depth}",
            limit="max_json_depth",
            allowed=limits.max_json_depth,
        ) from None
    except json.JSONDecodeError as exc:
        raise MalformedInput(
            f"JSON syntax error: {exc.msg}",
            location=f"line {exc.lineno}, column {exc.colno}",
            line=exc.lineno,
            column=exc.colno,
        ) from exc
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits (Python's int conversion limit)
        raise MalformedInput(f"JSON value cannot be read as a number: {exc}") from None
    depth = _depth(doc)
    if depth > limits.max_json_depth:
        raise LimitExceeded(
            f"JSON nesting depth {depth} exceeds max_json_depth={limits.max_json_depth}",
            limit="max_json_depth",
            allowed=limits.max_json_depth,
            actual=depth,
        )
    return doc


def _check_keys(obj: Any, pointer: str, required: tuple[str, ...], optional: tuple[str, ...], what: str) -> None:
    if not isinstance(obj, dict):
        raise MalformedInput(f"{what} at {pointer or '/'} must be an object", location=pointer or "/")
    for k in obj:
        if k not in required and k not in optional:
            raise UnexpectedField(
                f"unknown key {k!r} in {what}; accepted keys: {', '.join(required + optional)}",
                location=_ptr_join(pointer, k),
                field=k,
                accepted=list(required + optional),
            )
    for r in required:
        if r not in obj:
            raise MissingField(f"{what} lacks required key {r!r}", location=pointer or "/", field=r)


def _ptr_join(pointer: str, key: str | int) -> str:
    return pointer + _ptr(key)


def _invalid(pointer: str, msg: str) -> InvalidValue:
    return InvalidValue(f"{pointer}: {msg}", location=pointer, pointer=pointer)


def _number(obj: dict[str, Any], key: str, pointer: str, *, required: bool) -> float | None:
    v = obj.get(key)
    p = _ptr_join(pointer, key)
    if v is None:
        if required:
            raise _invalid(p, "is null; a number is required")
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _invalid(p, f"{v!r} is not a number")
    try:
        f = float(v)
    except OverflowError:  # an integer literal beyond any float (the decoder keeps it exact)
        raise _invalid(p, f"a {len(str(v))}-digit integer is not a finite number") from None
    if not math.isfinite(f):
        raise _invalid(p, f"{v!r} is not a finite number")
    return f


def _string(obj: dict[str, Any], key: str, pointer: str, *, required: bool, allow_int: bool = False) -> str | None:
    v = obj.get(key)
    p = _ptr_join(pointer, key)
    if v is None:
        if required:
            raise _invalid(p, "is null; a string is required")
        return None
    if allow_int and isinstance(v, int) and not isinstance(v, bool):
        v = str(v)
    if not isinstance(v, str):
        raise _invalid(p, f"{v!r} is not a string")
    _unicode_text(v, p)
    v = v.strip()
    if required and not v:
        raise _invalid(p, "is empty")
    return v or None


def _unicode_text(v: str, pointer: str) -> None:
    """JSON escapes can spell a lone UTF-16 surrogate (``"\\ud800"``), which is no Unicode text: refuse it."""
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(pointer, "contains a lone UTF-16 surrogate escape (not valid Unicode text)") from None


def parse_json(data: bytes, *, source: SourceFile, limits: Limits = Limits()) -> InspectionBatch:  # noqa: B008
    """Parse the JSON inspection format (module docstring) into an :class:`InspectionBatch`.

    Raises :class:`MalformedInput` (syntax, duplicate keys, NaN/Infinity, wrong shapes),
    :class:`MissingField`, :class:`UnexpectedField`, :class:`InvalidValue` (with JSON pointer),
    :class:`EmptyInput`, :class:`LimitExceeded` (``max_bytes``, ``max_rows``, ``max_json_depth``,
    ``max_seconds``).
    """
    deadline = Deadline(limits, what="JSON")
    check_size(data, limits)
    doc = _load(data, limits)
    _check_keys(doc, "", (), _TOP, "top-level JSON object")
    sha = source.sha256
    meas_list = doc.get("measurements") or []
    proc_list = doc.get("process") or []
    for key, lst in (("measurements", meas_list), ("process", proc_list)):
        if not isinstance(lst, list):
            raise MalformedInput(f"/{key} must be an array", location=f"/{key}")
    total = len(meas_list) + len(proc_list)
    if total == 0:
        raise EmptyInput("JSON has no measurements and no process values", location="/measurements")
    if total > limits.max_rows:
        raise LimitExceeded(
            f"{total} entries exceed max_rows={limits.max_rows}",
            limit="max_rows",
            allowed=limits.max_rows,
            actual=total,
        )

    lot_size: int | None = None
    if doc.get("lot_size") is not None:
        ls = doc["lot_size"]
        if isinstance(ls, bool) or not isinstance(ls, int) or ls < 0:
            raise _invalid("/lot_size", f"{ls!r} is not a whole number >= 0")
        lot_size = ls

    measurements: list[Measurement] = []
    seen: dict[tuple[str, str], int] = {}
    for i, m in enumerate(meas_list):
        p = _ptr("measurements", i)
        deadline.tick(p)
        _check_keys(m, p, _MEAS_REQUIRED, _MEAS_OPTIONAL, "measurement")
        sample = _string(m, "sample_id", p, required=True, allow_int=True)
        char = _string(m, "characteristic", p, required=True)
        assert sample is not None and char is not None
        value = _number(m, "value", p, required=True)
        assert value is not None
        unit = _string(m, "unit", p, required=True)
        assert unit is not None
        unc = _number(m, "uncertainty", p, required=False)
        if unc is not None and unc < 0:
            raise _invalid(_ptr_join(p, "uncertainty"), f"{unc} is negative")
        k = _number(m, "coverage_factor", p, required=False)
        if k is not None and k <= 0:
            raise _invalid(_ptr_join(p, "coverage_factor"), f"{k} must be > 0")
        at_text = _string(m, "measured_at", p, required=False)
        measured_at = None
        if at_text is not None:
            try:
                measured_at = datetime.fromisoformat(at_text)
            except ValueError:
                raise _invalid(_ptr_join(p, "measured_at"), f"{at_text!r} is not ISO 8601") from None
        extra: dict[str, str] = {}
        for f in ("operator", "gauge_id"):
            t = _string(m, f, p, required=False, allow_int=True)
            if t:
                extra[f] = t
        if m.get("extra") is not None:
            ex = m["extra"]
            if not isinstance(ex, dict) or not all(isinstance(v, str) for v in ex.values()):
                raise _invalid(_ptr_join(p, "extra"), "must be an object of strings")
            for name, text in ex.items():
                _unicode_text(name + text, _ptr_join(p, "extra"))
            extra.update(ex)
        if (sample, char) in seen:
            raise InvalidValue(
                f"duplicate measurement of characteristic {char!r} on sample {sample!r} at "
                f"{_ptr('measurements', seen[(sample, char)])} and {p}",
                location=p,
                pointer=p,
            )
        seen[(sample, char)] = i
        measurements.append(
            Measurement(
                sample_id=sample,
                characteristic=char,
                value=value,
                unit=unit,
                uncertainty=unc,
                coverage_factor=k,
                measured_at=measured_at,
                provenance=Provenance(file_sha256=sha, kind="json", pointer=_ptr_join(p, "value")),
                extra=extra,
            )
        )

    process: list[ProcessValue] = []
    pseen: dict[tuple[str, str | None], int] = {}
    for i, pv in enumerate(proc_list):
        p = _ptr("process", i)
        deadline.tick(p)
        _check_keys(pv, p, _PROC_REQUIRED, _PROC_OPTIONAL, "process value")
        var = _string(pv, "variable", p, required=True)
        tier = _string(pv, "tier", p, required=True)
        assert var is not None and tier is not None
        if tier.lower() not in TIERS:
            raise _invalid(_ptr_join(p, "tier"), f"{tier!r} is not one of {', '.join(TIERS)}")
        value = _number(pv, "value", p, required=True)
        assert value is not None
        sample_id = _string(pv, "sample_id", p, required=False, allow_int=True)
        if (var, sample_id) in pseen:
            raise InvalidValue(
                f"duplicate process value {var!r} at {_ptr('process', pseen[(var, sample_id)])} and {p}",
                location=p,
                pointer=p,
            )
        pseen[(var, sample_id)] = i
        process.append(
            ProcessValue(
                variable=var,
                tier=tier.lower(),  # type: ignore[arg-type]
                value=value,
                unit=_string(pv, "unit", p, required=False),
                sample_id=sample_id,
                provenance=Provenance(file_sha256=sha, kind="json", pointer=_ptr_join(p, "value")),
            )
        )

    deadline.check("end of file")
    return InspectionBatch(
        part_number=_string(doc, "part_number", "", required=False, allow_int=True),
        part_revision=_string(doc, "part_revision", "", required=False, allow_int=True),
        lot_id=_string(doc, "lot_id", "", required=False, allow_int=True),
        lot_size=lot_size,
        measurements=measurements,
        process=process,
        source=source,
    )
