"""AQDEF / Q-DAS DFQ files (K-field format) -> :class:`InspectionBatch`.

Header K-fields read (``/i`` = characteristic index, ``/0`` = all characteristics):

- ``K0100`` number of characteristics; ``K1001`` part number; ``K1002`` part description;
  ``K1004`` part revision (change status)
- ``K2001`` characteristic number, ``K2002`` description (used as the characteristic name, else K2001),
  ``K2101`` nominal, ``K2110``/``K2111`` lower/upper specification limit, ``K2142`` unit (required)

Measured values, in either notation:

- K-field lines: ``K0001/i value`` opens a new value of characteristic *i*; following ``K0002`` attribute,
  ``K0004`` date/time, ``K0005`` events, ``K0006`` batch, ``K0007`` nest, ``K0008`` operator, ``K0010``
  machine, ``K0011`` process parameter, ``K0012`` gauge, ``K0014`` part ident with the same index annotate it.
- DFQ value block: one line per measured part; characteristics separated by ``\\x0f`` and the fields of one
  characteristic by ``\\x14`` in the order value, attribute, date/time, events, batch, nest, operator,
  machine, process parameter, gauge.

Sample id: ``K0014`` (part ident) when given, else the 1-based ordinal of the value (DFQ line / K0001
occurrence). Date/time ``dd.mm.yyyy/HH:MM:SS`` (or ISO 8601).

Encoding (see :func:`decode_aqdef`): UTF-8 first; then GB18030 when the bytes are GBK-plausible (every
high byte pairs with another high byte); else Windows-1252, which Q-DAS tools on Windows write. Both
fallbacks add a warning naming the encoding used; ``encoding=`` overrides detection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from parsers._safe import Deadline, check_size
from parsers.csv_ import decode_text
from parsers.errors import EmptyInput, InvalidValue, LimitExceeded, MalformedInput, MissingField
from parsers.limits import Limits
from parsers.model import CharacteristicSpec, InspectionBatch, Measurement
from parsers.provenance import Provenance, SourceFile

__all__ = ["CHAR_SEP", "FIELD_SEP", "VALUE_FIELDS", "decode_aqdef", "parse_aqdef"]

CHAR_SEP = "\x0f"
FIELD_SEP = "\x14"
# order of the fields of one characteristic in a DFQ value line
VALUE_FIELDS = ("K0001", "K0002", "K0004", "K0005", "K0006", "K0007", "K0008", "K0010", "K0011", "K0012")
_EXTRA_NAMES = {
    "K0002": "attribute",
    "K0005": "events",
    "K0006": "batch",
    "K0007": "nest",
    "K0008": "operator",
    "K0010": "machine",
    "K0011": "process_parameter",
    "K0012": "gauge_id",
    "K0014": "part_ident",
}
_KLINE = re.compile(r"^(K\d{4})(?:/(\d+))?(?:[ \t]+(.*))?$")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")


@dataclass
class _Value:
    char: int
    ordinal: int
    line: int
    column: str
    raw: str
    fields: dict[str, str] = field(default_factory=dict)


def _number(text: str) -> float:
    t = text.strip()
    if not _NUMBER.fullmatch(t):
        raise ValueError(t)
    return float(t.replace(",", "."))


def _datetime(text: str) -> datetime | None:
    t = text.strip()
    if not t:
        return None
    for fmt in ("%d.%m.%Y/%H:%M:%S", "%d.%m.%Y/%H:%M", "%d.%m.%y/%H:%M:%S", "%d.%m.%Y"):
        try:
            return datetime.strptime(t, fmt)
        except ValueError:
            continue
    return datetime.fromisoformat(t)


_CP1252_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e\x10-\x13\x15-\x1f\x7f]")


def decode_aqdef(data: bytes, encoding: str | None = None) -> tuple[str, list[str]]:
    """Decode an AQDEF file; return ``(text, warnings)``.

    UTF-8 (BOM stripped) first, then GB18030 when plausible (:func:`parsers.csv_.decode_text`), then
    Windows-1252. A file that is none of these -- a byte cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90,
    0x9D) or control characters other than the AQDEF separators -- raises :class:`MalformedInput` naming
    the first byte that is not UTF-8.
    """
    if encoding is not None:
        text, _used = decode_text(data, encoding)
        return text, []
    try:
        text, used = decode_text(data)
    except MalformedInput as not_utf8:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise not_utf8 from None
        if _CP1252_CONTROL.search(text):
            raise not_utf8 from None
        return text, [
            "file is not UTF-8 and not GBK-plausible; decoded as Windows-1252 (cp1252), the "
            "code page Q-DAS tools write -- pass encoding= if that is wrong"
        ]
    return text, (["file is not UTF-8; decoded as GB18030"] if used == "gb18030" else [])


def parse_aqdef(
    data: bytes,
    *,
    source: SourceFile,
    limits: Limits = Limits(),  # noqa: B008
    encoding: str | None = None,
) -> InspectionBatch:
    """Parse an AQDEF/DFQ file (module docstring) into an :class:`InspectionBatch`.

    Raises :class:`MalformedInput` (bad K-line, value line wider than the characteristic count),
    :class:`MissingField` (no unit for a measured characteristic), :class:`InvalidValue` (non-numeric value
    or limit, bad date, with line number), :class:`EmptyInput`, :class:`LimitExceeded`.
    """
    deadline = Deadline(limits, what="AQDEF")
    check_size(data, limits)
    text, warnings = decode_aqdef(data, encoding)
    header: dict[str, str] = {}
    chars: dict[int, dict[str, tuple[str, int]]] = {}
    all_chars: dict[str, tuple[str, int]] = {}
    values: list[_Value] = []
    latest: dict[int, _Value] = {}
    counts: dict[int, int] = {}
    dfq_lines = 0

    for lineno, raw_line in enumerate(text.splitlines(), start=1):
        deadline.tick(f"line {lineno}")
        line = raw_line.rstrip("\r\n")
        if not line.strip():
            continue
        is_kline = line.startswith("K") and CHAR_SEP not in line and FIELD_SEP not in line
        m = _KLINE.match(line) if is_kline else None
        if is_kline and m is None:
            raise MalformedInput(f"line {lineno} is not a K-field line: {line[:40]!r}", location=f"line {lineno}")
        if m is not None:
            key, idx_s, val = m.group(1), m.group(2), (m.group(3) or "").strip()
            idx = int(idx_s) if idx_s is not None else 1
            if key.startswith("K0"):
                if key == "K0100":
                    header[key] = val
                    continue
                if key == "K0001":
                    counts[idx] = counts.get(idx, 0) + 1
                    v = _Value(char=idx, ordinal=counts[idx], line=lineno, column=f"K0001/{idx}", raw=val)
                    values.append(v)
                    latest[idx] = v
                    if len(values) > limits.max_rows:
                        raise LimitExceeded(
                            f"more than max_rows={limits.max_rows} values",
                            limit="max_rows",
                            allowed=limits.max_rows,
                            actual=len(values),
                        )
                else:
                    targets = list(latest.values()) if idx == 0 else [latest[idx]] if idx in latest else []
                    if not targets:
                        raise MalformedInput(
                            f"line {lineno}: {key}/{idx} annotates a value, but no K0001/{idx} came before it",
                            location=f"line {lineno}",
                            row=lineno,
                        )
                    for t in targets:
                        t.fields[key] = val
            elif key.startswith("K1"):
                header[key] = val
            elif key.startswith("K2"):
                if idx == 0:
                    all_chars[key] = (val, lineno)
                else:
                    chars.setdefault(idx, {})[key] = (val, lineno)
            # other K-fields (K3xxx/K4xxx/K5xxx... catalogues, groups) carry nothing we map
            continue
        # DFQ value line
        dfq_lines += 1
        portions = line.split(CHAR_SEP)
        for ci, portion in enumerate(portions, start=1):
            parts = portion.split(FIELD_SEP)
            if len(parts) > len(VALUE_FIELDS):
                raise MalformedInput(
                    f"line {lineno}, characteristic {ci}: {len(parts)} fields, at most {len(VALUE_FIELDS)}",
                    location=f"line {lineno}",
                    row=lineno,
                )
            if not parts[0].strip():
                continue  # characteristic not measured on this part
            v = _Value(char=ci, ordinal=dfq_lines, line=lineno, column=f"char {ci} K0001", raw=parts[0].strip())
            v.fields = {k: p.strip() for k, p in zip(VALUE_FIELDS[1:], parts[1:], strict=False) if p.strip()}
            values.append(v)
            if len(values) > limits.max_rows:
                raise LimitExceeded(
                    f"more than max_rows={limits.max_rows} values",
                    limit="max_rows",
                    allowed=limits.max_rows,
                    actual=len(values),
                )

    declared = header.get("K0100")
    n_chars = max([0, *chars.keys()])
    if declared is not None:
        try:
            n_declared = int(declared)
        except ValueError:
            raise InvalidValue(f"K0100 {declared!r} is not a whole number", location="K0100") from None
        if n_chars > n_declared:
            raise InvalidValue(
                f"K0100 declares {n_declared} characteristics but K2xxx fields describe {n_chars}",
                location="K0100",
            )
        n_chars = n_declared
    if not values:
        raise EmptyInput("AQDEF file has no measured values (no K0001 lines and no value block)")

    sha = source.sha256
    specs: dict[int, CharacteristicSpec] = {}

    def spec_for(ci: int, line: int) -> CharacteristicSpec:
        if ci in specs:
            return specs[ci]
        if ci > max(n_chars, 1) and ci not in chars:
            raise MalformedInput(
                f"line {line}: value for characteristic {ci}, but only {n_chars} are declared",
                location=f"line {line}",
                row=line,
            )
        fields_ = {**all_chars, **chars.get(ci, {})}

        def num(key: str) -> float | None:
            if key not in fields_ or not fields_[key][0]:
                return None
            text_, ln = fields_[key]
            try:
                return _number(text_)
            except ValueError:
                raise InvalidValue(
                    f"line {ln}: {key}/{ci} {text_!r} is not a number", location=f"line {ln}", row=ln, field=key
                ) from None

        number_ = fields_.get("K2001", ("", 0))[0]
        desc = fields_.get("K2002", ("", 0))[0]
        unit = fields_.get("K2142", ("", 0))[0]
        name = desc or number_ or f"characteristic {ci}"
        anchor = fields_.get("K2001", fields_.get("K2002", ("", None)))[1]
        spec = CharacteristicSpec(
            name=name,
            description=desc or None,
            nominal=num("K2101"),
            lower_limit=num("K2110"),
            upper_limit=num("K2111"),
            unit=unit or None,
            provenance=Provenance(file_sha256=sha, kind="table", row=anchor, column=f"K2001/{ci}") if anchor else None,
        )
        specs[ci] = spec
        return spec

    measurements: list[Measurement] = []
    seen: dict[tuple[str, str], int] = {}
    batches: set[str] = set()
    for v in values:
        spec = spec_for(v.char, v.line)
        if spec.unit is None:
            raise MissingField(
                f"characteristic {v.char} ({spec.name!r}) has measured values but no unit (K2142/{v.char})",
                location=f"K2142/{v.char}",
                field="K2142",
            )
        try:
            value = _number(v.raw)
        except ValueError:
            raise InvalidValue(
                f"line {v.line}: value {v.raw!r} of characteristic {v.char} is not a number",
                location=f"line {v.line}",
                row=v.line,
                column=v.column,
            ) from None
        try:
            at = _datetime(v.fields.get("K0004", ""))
        except ValueError:
            raise InvalidValue(
                f"line {v.line}: date/time {v.fields['K0004']!r} is not dd.mm.yyyy/HH:MM:SS",
                location=f"line {v.line}",
                row=v.line,
                field="K0004",
            ) from None
        sample = v.fields.get("K0014") or str(v.ordinal)
        key = (sample, spec.name)
        if key in seen:
            raise InvalidValue(
                f"duplicate value of characteristic {spec.name!r} for sample {sample!r} "
                f"on lines {seen[key]} and {v.line}",
                location=f"line {v.line}",
                row=v.line,
            )
        seen[key] = v.line
        if "K0006" in v.fields:
            batches.add(v.fields["K0006"])
        extra = {_EXTRA_NAMES[k]: val for k, val in v.fields.items() if k in _EXTRA_NAMES}
        measurements.append(
            Measurement(
                sample_id=sample,
                characteristic=spec.name,
                value=value,
                unit=spec.unit,
                measured_at=at,
                provenance=Provenance(file_sha256=sha, kind="table", row=v.line, column=v.column),
                extra=extra,
            )
        )
    chars_out: dict[str, Any] = {s.name: s for s in specs.values()}
    deadline.check("end of file")
    return InspectionBatch(
        part_number=header.get("K1001") or None,
        part_revision=header.get("K1004") or None,
        lot_id=next(iter(batches)) if len(batches) == 1 else None,
        measurements=measurements,
        characteristics=chars_out,
        source=source,
        warnings=warnings
        + (
            [f"values carry {len(batches)} different batch numbers (K0006); lot_id left empty"]
            if len(batches) > 1
            else []
        ),
    )
