"""QIF 3 results (``QIFDocument`` with ``Results/MeasurementResultsSet``) -> :class:`InspectionBatch`.

Mapping:

- every ``MeasurementResults/MeasuredCharacteristics/CharacteristicMeasurements/*CharacteristicMeasurement``
  with a ``Value`` becomes one :class:`Measurement`; its ``Status`` (PASS/FAIL/...) goes to
  ``extra["status"]``, its QIF type and id to ``extra["qif_type"]``/``extra["qif_id"]``;
- characteristic name: ``CharacteristicItem/Name`` (via ``CharacteristicItemId``; ``-NONE-`` or missing ->
  ``<Type>-<item id>``); nominal/limits from ``CharacteristicNominal/TargetValue`` and
  ``CharacteristicDefinition/Tolerance`` (relative unless ``DefinedAsLimit``) or ``ToleranceValue``;
- unit: the ``Value``'s own ``linearUnit``/``angularUnit`` attribute, else ``FileUnits/PrimaryUnits``
  (angular for ``Angle*`` characteristics, linear otherwise; ``mm``/``degree`` with a warning if absent);
- sample id: ``SerialNumber`` of the ``ActualComponent`` the results refer to, else the
  ``MeasurementResults`` id; repeated measurements of one characteristic on one sample get ``#2``, ``#3``...
- part number/revision from ``Product/PartSet/Part`` (``ModelNumber`` or ``Name`` or ``@label``, ``Version``).

Provenance is the XPath of the ``Value`` element (local names, see :func:`parsers._safe.xpath_of`).
XML is read with :func:`parsers._safe.parse_xml` (no entities, no network, depth-limited).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from lxml import etree

from parsers._safe import Deadline, local_name, parse_xml, xpath_of
from parsers.errors import EmptyInput, InvalidValue, LimitExceeded, UnsupportedFormat
from parsers.limits import Limits
from parsers.model import CharacteristicSpec, InspectionBatch, Measurement
from parsers.provenance import Provenance, SourceFile

__all__ = ["parse_qif"]

_SUFFIX = "CharacteristicMeasurement"


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    for c in el:
        if isinstance(c.tag, str) and local_name(c) == name:
            return c
    return None


def _path(el: etree._Element | None, *names: str) -> etree._Element | None:
    for n in names:
        el = _child(el, n)
    return el


def _text(el: etree._Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    t = el.text.strip()
    return t or None


def _float(el: etree._Element | None) -> float | None:
    t = _text(el)
    if t is None:
        return None
    try:
        v = float(t)
    except ValueError:
        raise InvalidValue(f"{xpath_of(el)}: {t!r} is not a number", location=xpath_of(el)) from None
    if not math.isfinite(v):
        raise InvalidValue(f"{xpath_of(el)}: {t!r} is not finite", location=xpath_of(el))
    return v


def _iter_local(root: etree._Element, name: str) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str) and local_name(e) == name]


def parse_qif(data: bytes, *, source: SourceFile, limits: Limits = Limits()) -> InspectionBatch:  # noqa: B008
    """Parse a QIF 3 results document into an :class:`InspectionBatch` (mapping in the module docstring).

    Raises :class:`HostileInput` (entities), :class:`MalformedInput` (not well-formed),
    :class:`UnsupportedFormat` (not a QIFDocument), :class:`EmptyInput` (no measured values),
    :class:`InvalidValue` (non-numeric ``Value``, with XPath), :class:`LimitExceeded`.
    """
    deadline = Deadline(limits, what="QIF")
    tree = parse_xml(data, limits=limits, what="QIF document")
    root = tree.getroot()
    if local_name(root) != "QIFDocument":
        raise UnsupportedFormat(f"root element is {local_name(root)!r}, not QIFDocument", location="/")
    warnings: list[str] = []
    by_id: dict[str, etree._Element] = {}
    for el in root.iter():
        deadline.tick()
        if isinstance(el.tag, str):
            ident = el.get("id")
            if ident is not None:
                by_id[ident] = el

    def ref(el: etree._Element | None, name: str) -> etree._Element | None:
        ident = _text(_child(el, name))
        return by_id.get(ident) if ident is not None else None

    units = _path(root, "FileUnits", "PrimaryUnits")
    linear_unit = _text(_path(units, "LinearUnit", "UnitName"))
    angular_unit = _text(_path(units, "AngularUnit", "UnitName"))
    if linear_unit is None:
        linear_unit = "mm"
        warnings.append("QIF has no FileUnits/PrimaryUnits/LinearUnit; assuming mm")
    if angular_unit is None:
        angular_unit = "degree"

    part = _path(root, "Product", "PartSet", "Part")
    part_number = None
    part_revision = None
    if part is not None:
        part_number = _text(_child(part, "ModelNumber")) or _text(_child(part, "Name")) or part.get("label")
        part_revision = _text(_child(part, "Version"))

    sha = source.sha256
    specs: dict[str, CharacteristicSpec] = {}

    def characteristic(meas: etree._Element, qif_type: str) -> str:
        item = ref(meas, "CharacteristicItemId")
        item_id = _text(_child(meas, "CharacteristicItemId")) or meas.get("id", "?")
        name = _text(_child(item, "Name"))
        if name is None or name == "-NONE-":
            name = f"{qif_type}-{item_id}"
        if name not in specs:
            nominal_el = ref(item, "CharacteristicNominalId")
            definition = ref(nominal_el, "CharacteristicDefinitionId")
            target = _float(_child(nominal_el, "TargetValue"))
            lower = upper = None
            tol = _child(definition, "Tolerance")
            if tol is not None:
                mx, mn = _float(_child(tol, "MaxValue")), _float(_child(tol, "MinValue"))
                absolute = (_text(_child(tol, "DefinedAsLimit")) or "false").lower() == "true"
                base = 0.0 if absolute or target is None else target
                if absolute or target is not None:
                    upper = None if mx is None else base + mx
                    lower = None if mn is None else base + mn
            elif (tv := _float(_child(definition, "ToleranceValue"))) is not None:
                upper = tv
            specs[name] = CharacteristicSpec(
                name=name,
                description=_text(_child(item, "Description")),
                nominal=target,
                lower_limit=lower,
                upper_limit=upper,
                unit=angular_unit if qif_type.startswith("Angle") else linear_unit,
                provenance=Provenance(file_sha256=sha, kind="xml", xpath=xpath_of(item)) if item is not None else None,
            )
        return name

    results = _iter_local(root, "MeasurementResults")
    measurements: list[Measurement] = []
    seen: dict[tuple[str, str], int] = {}
    skipped = 0
    for mr in results:
        comp = ref(_child(mr, "ActualComponentIds"), "Id")
        sample = _text(_child(comp, "SerialNumber")) or mr.get("id") or str(len(measurements) + 1)
        start = _text(_path(mr, "InspectionTraceability", "InspectionStart"))
        measured_at: datetime | None = None
        if start:
            try:
                measured_at = datetime.fromisoformat(start)
            except ValueError:
                warnings.append(f"MeasurementResults {mr.get('id')}: InspectionStart {start!r} is not ISO 8601")
        block = _path(mr, "MeasuredCharacteristics", "CharacteristicMeasurements")
        if block is None:
            continue
        for meas in block:
            deadline.tick(xpath_of(meas) if deadline.due else None)
            if not isinstance(meas.tag, str):
                continue
            tag = local_name(meas)
            if not tag.endswith(_SUFFIX):
                continue
            value_el = _child(meas, "Value")
            value = _float(value_el)
            if value is None or value_el is None:
                skipped += 1
                continue
            qif_type = tag[: -len(_SUFFIX)] or tag
            name = characteristic(meas, qif_type)
            n = seen.get((sample, name), 0) + 1
            seen[(sample, name)] = n
            char_name = name if n == 1 else f"{name}#{n}"
            unit = value_el.get("linearUnit") or value_el.get("angularUnit") or specs[name].unit or linear_unit
            extra: dict[str, Any] = {"qif_type": qif_type}
            if meas.get("id") is not None:
                extra["qif_id"] = meas.get("id")
            status = _text(_path(meas, "Status", "CharacteristicStatusEnum")) or _text(
                _path(meas, "Status", "OtherCharacteristicStatus")
            )
            if status:
                extra["status"] = status
            measurements.append(
                Measurement(
                    sample_id=sample,
                    characteristic=char_name,
                    value=value,
                    unit=unit,
                    measured_at=measured_at,
                    provenance=Provenance(file_sha256=sha, kind="xml", xpath=xpath_of(value_el)),
                    extra=extra,
                )
            )
            if len(measurements) > limits.max_rows:
                raise LimitExceeded(
                    f"more than max_rows={limits.max_rows} measurements",
                    limit="max_rows",
                    allowed=limits.max_rows,
                    actual=len(measurements),
                )
    if skipped:
        warnings.append(f"{skipped} characteristic measurement(s) without a numeric Value were skipped")
    if not measurements:
        where = "no MeasurementResults" if not results else "no characteristic measurement with a Value"
        raise EmptyInput(f"QIF document has {where}", location="/QIFDocument/Results")
    deadline.check("end of file")
    return InspectionBatch(
        part_number=part_number,
        part_revision=part_revision,
        measurements=measurements,
        characteristics=specs,
        source=source,
        warnings=warnings,
    )
