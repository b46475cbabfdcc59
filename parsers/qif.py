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

Validation: a document declaring ``versionQIF="3.x"`` is validated against the shipped QIF 3.0.0 XSD
(:func:`validate_qif`; identity constraints replaced by an id-uniqueness check, ``parsers/schemas/README.md``
says why); other versions are parsed with a warning. Always: root ``QIFDocument``, numeric finite values, at
least one measured value.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from lxml import etree

from parsers._safe import Deadline, LocalSchemaResolver, XPathIndex, local_name, parse_xml, xpath_of
from parsers.errors import EmptyInput, InvalidValue, LimitExceeded, SchemaViolation, UnsupportedFormat
from parsers.limits import Limits
from parsers.model import InspectionBatch
from parsers.provenance import SourceFile

__all__ = ["parse_qif"]

_SUFFIX = "CharacteristicMeasurement"
# Compiled once. ``{*}`` matches a local name in any (or no) namespace, like the QIF mapping always has.
_WITH_ID = etree.XPath("descendant-or-self::*[@id]")
_ALL_IDS = etree.XPath("descendant-or-self::*/@id", smart_strings=False)
# where the mapping's references usually point: characteristic items/nominals/definitions, actual components
_USUAL_TARGETS = etree.XPath(
    "/*/*[local-name()='Characteristics']/*/*[@id]"
    " | /*/*[local-name()='Results']/*[local-name()='ActualComponentSets']/*/*[@id]"
)
_MEASUREMENT_RESULTS = "{*}MeasurementResults"


_SCHEMA_ROOT = (Path(__file__).parent / "schemas").resolve()
QIF_XSD = _SCHEMA_ROOT / "qif-3.0.0" / "QIFApplications" / "QIFDocument.xsd"
_XS = "{http://www.w3.org/2001/XMLSchema}"
_IDENTITY = (_XS + "key", _XS + "keyref", _XS + "unique")
_THREAD = threading.local()


def _without_identity_constraints(path: Path) -> bytes:
    """One shipped QIF XSD without its ``xs:key``/``xs:keyref``/``xs:unique`` (see :func:`validate_qif`)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    doc = etree.parse(str(path), parser)
    for el in list(doc.iter(*_IDENTITY)):
        parent = el.getparent()
        if parent is not None:
            parent.remove(el)
    return bytes(etree.tostring(doc))


def _qif_schema() -> etree.XMLSchema:
    """This thread's compiled QIF 3.0 XSD (libxml2, local files only, compiled once per thread)."""
    schema: etree.XMLSchema | None = getattr(_THREAD, "schema", None)
    if schema is None:
        # files of parsers/schemas only, each without its identity constraints
        resolver = LocalSchemaResolver(_SCHEMA_ROOT, _without_identity_constraints)
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        parser.resolvers.add(resolver)
        doc = etree.fromstring(_without_identity_constraints(QIF_XSD), parser, base_url=str(QIF_XSD))
        try:
            schema = _THREAD.schema = etree.XMLSchema(doc)
        except etree.XMLSchemaParseError as exc:  # a packaging bug, not a user error
            raise RuntimeError(f"shipped QIF 3.0 XSD does not compile: {exc}; refused {resolver.refused}") from exc
    return schema


def validate_qif(root: etree._Element, by_id: _IdIndex) -> None:
    """Validate a QIF 3.x document against the shipped QIF 3.0.0 XSD; raise :class:`SchemaViolation` if invalid.

    libxml2 checks structure and datatypes. The schema's ~1000 identity constraints (``xs:key``/``xs:keyref``
    per section) are left out of the compiled schema -- libxml2 evaluates them in time that grows with
    elements x constraints (30-120 ms for a 40-170 KB results file, against ~1 ms without) -- and replaced
    by the rule they mostly enforce: every ``id`` is unique in the document. A reference to a missing id is
    not refused here; the mapping reports what it could not follow.
    """
    schema = _qif_schema()
    if not schema.validate(root.getroottree()):
        err = schema.error_log[0]
        raise SchemaViolation(
            f"QIF does not conform to the QIF 3.0 schema: {err.message}",
            location=err.path,
            schema_version=root.get("versionQIF"),
            line=err.line,
        )
    if by_id.duplicates:
        raise SchemaViolation(
            f"QIF ids must be unique in the document; repeated: {sorted(by_id.duplicates)[:5]}",
            location="/QIFDocument",
            schema_version=root.get("versionQIF"),
        )


_LOCAL_NAMES: dict[str, str] = {}


def _local(tag: str) -> str:
    """Local name of a Clark-notation tag (memoised: a document uses a few dozen distinct tags)."""
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        name = tag.rpartition("}")[2]
        if len(_LOCAL_NAMES) < 4096:  # bounded: tags come from uploaded documents
            _LOCAL_NAMES[tag] = name
    return name


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    """First child of ``el`` with local name ``name`` (any namespace); None if ``el`` is None or has none."""
    if el is None:
        return None
    return next(el.iterchildren("{*}" + name), None)


class _IdIndex:
    """QIF id -> element, as a full index would map it (a repeated id maps to its last element).

    Indexing every element with an id costs a Python object per element; the ids the mapping follows
    nearly always point into a few sections. With document-unique ids (as QIF requires) those sections
    are indexed first; a miss, or any repeated id, falls back to the full index, so answers never change.
    """

    __slots__ = ("_full", "_known", "_partial", "_root", "duplicates")

    def __init__(self, root: etree._Element) -> None:
        self._root = root
        ids: list[str] = _ALL_IDS(root)
        self._known = set(ids)
        self.duplicates: set[str] = set()
        if len(self._known) != len(ids):
            seen: set[str] = set()
            for i in ids:
                if i in seen:
                    self.duplicates.add(i)
                seen.add(i)
        self._full: dict[str, etree._Element] | None = None
        self._partial: dict[str, etree._Element] = {}
        if len(self._known) == len(ids):
            self._partial = {el.get("id"): el for el in _USUAL_TARGETS(root)}

    def get(self, ident: str) -> etree._Element | None:
        """The element whose ``id`` is ``ident`` (None if there is none)."""
        if ident not in self._known:
            return None
        el = self._partial.get(ident)
        if el is not None:
            return el
        if self._full is None:
            # later duplicates win, as in document order
            self._full = {e.get("id"): e for e in _WITH_ID(self._root)}
        return self._full.get(ident)


def _children_by_name(el: etree._Element) -> dict[str, etree._Element]:
    """Local name -> first child with that name (any namespace), built in one pass over the children."""
    children = list(el)
    children.reverse()  # the first child of a name is assigned last, so it is the one kept
    return {_local(c.tag): c for c in children if isinstance(c.tag, str)}


def _status(status_el: etree._Element | None) -> str | None:
    """Text of the first ``CharacteristicStatusEnum`` child of ``Status``, else of ``OtherCharacteristicStatus``."""
    if status_el is None:
        return None
    enum = other = None
    for c in status_el:
        tag = c.tag
        if not isinstance(tag, str):
            continue
        name = tag.rpartition("}")[2]
        if name == "CharacteristicStatusEnum" and enum is None:
            enum = c
        elif name == "OtherCharacteristicStatus" and other is None:
            other = c
    return _text(enum) or _text(other)


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


def parse_qif(data: bytes, *, source: SourceFile, limits: Limits = Limits()) -> InspectionBatch:  # noqa: B008
    """Parse a QIF 3 results document into an :class:`InspectionBatch` (mapping in the module docstring).

    Raises :class:`HostileInput` (entities), :class:`MalformedInput` (not well-formed),
    :class:`UnsupportedFormat` (not a QIFDocument), :class:`EmptyInput` (no measured values),
    :class:`InvalidValue` (non-numeric ``Value``, with XPath), :class:`LimitExceeded`.
    """
    deadline = Deadline(limits, what="QIF")
    tree = parse_xml(data, limits=limits, what="QIF document", blank_text=False)
    root = tree.getroot()
    if local_name(root) != "QIFDocument":
        raise UnsupportedFormat(f"root element is {local_name(root)!r}, not QIFDocument", location="/")
    warnings: list[str] = []
    by_id = _IdIndex(root)
    deadline.check("id index")
    version = root.get("versionQIF") or ""
    if version.startswith("3."):
        validate_qif(root, by_id)
        deadline.check("schema validation")
    else:
        warnings.append(
            f"QIF declares versionQIF={version!r}: not schema-validated (the QIF 3.0.0 XSD is shipped)"
            if version
            else "QIF declares no versionQIF: not schema-validated (the QIF 3.0.0 XSD is shipped)"
        )
    paths = XPathIndex()

    def ref(el: etree._Element | None, name: str) -> etree._Element | None:
        return _ref_of(_child(el, name))

    def _ref_of(id_el: etree._Element | None) -> etree._Element | None:
        ident = _text(id_el)
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
    specs: dict[str, dict[str, Any]] = {}

    names: dict[tuple[str, str], str] = {}  # (CharacteristicItemId, type) -> characteristic name

    def characteristic(meas: etree._Element, item_ref: etree._Element | None, qif_type: str) -> str:
        ident = _text(item_ref)
        if ident is not None and (known := names.get((ident, qif_type))) is not None:
            return known
        item = by_id.get(ident) if ident is not None else None
        item_id = ident or meas.get("id", "?")
        name = _text(_child(item, "Name"))
        if name is None or name == "-NONE-":
            name = f"{qif_type}-{item_id}"
        if ident is not None:
            names[(ident, qif_type)] = name
        if name not in specs:
            # one pass over each referenced element's children instead of a search per child name
            item_k = _children_by_name(item) if item is not None else {}
            nominal_el = _ref_of(item_k.get("CharacteristicNominalId"))
            nominal_k = _children_by_name(nominal_el) if nominal_el is not None else {}
            definition = _ref_of(nominal_k.get("CharacteristicDefinitionId"))
            definition_k = _children_by_name(definition) if definition is not None else {}
            target = _float(nominal_k.get("TargetValue"))
            lower = upper = None
            tol = definition_k.get("Tolerance")
            if tol is not None:
                tol_k = _children_by_name(tol)
                mx, mn = _float(tol_k.get("MaxValue")), _float(tol_k.get("MinValue"))
                absolute = (_text(tol_k.get("DefinedAsLimit")) or "false").lower() == "true"
                base = 0.0 if absolute or target is None else target
                if absolute or target is not None:
                    upper = None if mx is None else base + mx
                    lower = None if mn is None else base + mn
            elif (tv := _float(definition_k.get("ToleranceValue"))) is not None:
                upper = tv
            # a plain dict, validated with the batch (as the measurements)
            specs[name] = {
                "name": name,
                "description": _text(item_k.get("Description")),
                "nominal": target,
                "lower_limit": lower,
                "upper_limit": upper,
                "unit": angular_unit if qif_type.startswith("Angle") else linear_unit,
                "provenance": {"file_sha256": sha, "kind": "xml", "xpath": paths(item)} if item is not None else None,
            }
        return name

    local_names = _LOCAL_NAMES
    results = list(root.iter(_MEASUREMENT_RESULTS))
    # plain dicts, validated together into the batch at the end (one call into pydantic-core for the whole
    # document instead of one per measurement: same validation, same models)
    measurements: list[dict[str, Any]] = []
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
        # Value paths are built here (same text as xpath_of) from one count of the block's children
        block_path = paths(block)
        children = list(block)
        totals: dict[str, int] = {}
        for meas in children:
            totals[meas.tag] = totals.get(meas.tag, 0) + 1
        running: dict[str, int] = {}
        for meas in children:
            mtag = meas.tag
            if not isinstance(mtag, str):
                deadline.tick()
                continue
            tag = _local(mtag)
            k = running[mtag] = running.get(mtag, 0) + 1
            meas_path = f"{block_path}/{tag}[{k}]" if totals[mtag] > 1 else f"{block_path}/{tag}"
            deadline.tick(meas_path)
            if not tag.endswith(_SUFFIX):
                continue
            # one pass over the measurement's few children: the first Value (and whether another child has
            # exactly its tag, for the [1] of its path), the first CharacteristicItemId and Status
            value_el = item_ref = status_el = None
            value_tag = None
            value_repeated = False
            for c in meas:
                ctag = c.tag
                if not isinstance(ctag, str):
                    continue
                name = local_names.get(ctag) or _local(ctag)
                if name == "Value":
                    if value_el is None:
                        value_el, value_tag = c, ctag
                    elif ctag == value_tag:
                        value_repeated = True
                elif name == "CharacteristicItemId":
                    if item_ref is None:
                        item_ref = c
                elif name == "Status" and status_el is None:
                    status_el = c
            value = _float(value_el)
            if value is None or value_el is None:
                skipped += 1
                continue
            qif_type = tag[: -len(_SUFFIX)] or tag
            # a characteristic seen before: its name without a call (most measurements)
            item_ident = _text(item_ref)
            known = names.get((item_ident, qif_type)) if item_ident is not None else None
            name = known if known is not None else characteristic(meas, item_ref, qif_type)
            n = seen.get((sample, name), 0) + 1
            seen[(sample, name)] = n
            char_name = name if n == 1 else f"{name}#{n}"
            unit = value_el.get("linearUnit") or value_el.get("angularUnit") or specs[name]["unit"] or linear_unit
            extra: dict[str, Any] = {"qif_type": qif_type}
            meas_id = meas.get("id")
            if meas_id is not None:
                extra["qif_id"] = meas_id
            status = _status(status_el)
            if status:
                extra["status"] = status
            value_step = "Value[1]" if value_repeated else "Value"
            measurements.append(
                {
                    "sample_id": sample,
                    "characteristic": char_name,
                    "value": value,
                    "unit": unit,
                    "measured_at": measured_at,
                    "provenance": {"file_sha256": sha, "kind": "xml", "xpath": f"{meas_path}/{value_step}"},
                    "extra": extra,
                }
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
    return InspectionBatch.model_validate(
        {
            "part_number": part_number,
            "part_revision": part_revision,
            "measurements": measurements,
            "characteristics": specs,
            "source": source,
            "warnings": warnings,
        }
    )
