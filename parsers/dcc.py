"""PTB Digital Calibration Certificate (DCC) XML -> :class:`parsers.report_model.LabReport`.

The XML is read once with the hardened reader of :mod:`parsers._safe` (no entities, no network,
depth-limited), then that same tree is validated by libxml2 (``lxml.etree.XMLSchema``) against the DCC XSD
shipped in ``parsers/schemas/`` (never fetched; imports resolve to local files only): the schema is chosen
by the root's ``schemaVersion`` attribute. Each schema is compiled once per thread (a few ms);
``xsi:schemaLocation`` hints in the document are ignored. libxml2 does not check that an ``xs:IDREF``
names an existing ``xs:ID``; :func:`validate_dcc` adds that check, so the accept/reject verdict is the
one of a full XSD 1.0 validator (xmlschema, which this module used before, agrees on the test corpus).

Schema versions (see ``parsers/schemas/README.md``): 2.4.0 (D-SI 2.0.0), 3.0.0 (D-SI 2.0.0), 3.1.0, 3.1.1,
3.1.2, 3.2.0, 3.2.1 (D-SI 2.1.0; 3.2.x with W3C xmldsig), 3.3.0 (D-SI 2.2.1 + xmldsig), all PTB's published XSDs;

* any other version: **not validated** -- the report is still mapped, ``schema_check.status`` is
  ``"not_validated"`` and a warning names the version, so the caller (gateway policy) decides whether an
  unvalidated certificate is acceptable. A document that *is* validated and fails raises
  :class:`SchemaViolation` with the prefixed XPath (``location``) and source ``line`` of the first error.

Results: every numeric value of the quantities under ``dcc:results`` (not influence conditions, used methods,
measurement metadata), in any D-SI form -- ``si:real``, ``si:constant``, ``si:complex``, ``si:realList`` /
``si:complexList`` (with list-level unit and uncertainty), ``si:realListXMLList`` / ``si:complexListXMLList``
(one result per token, one-element unit/uncertainty lists applying to all), ``si:list`` nested to any depth,
``si:hybrid`` (first representation only: the others are the same values in other units) -- with expanded
uncertainty, coverage factor and probability (D-SI 1.x-2.1 ``expandedUnc``, D-SI 2.2 ``expandedMU``; a coverage
interval gives its standard uncertainty and probability). A ``.p7m`` (CMS signedData) is unwrapped first.

Every mapped value carries an XPath :class:`Provenance` (a list token: the list element's XPath + ``#n``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from parsers._safe import LocalSchemaResolver, XPathIndex, parse_xml, xpath_of
from parsers.errors import LimitExceeded, SchemaViolation, UnsupportedFormat
from parsers.limits import Limits
from parsers.provenance import SourceFile
from parsers.report_model import LabReport

__all__ = ["DCC_NS", "SI_NS", "VALIDATED_VERSIONS", "parse_dcc", "validate_dcc"]

DCC_NS = "https://ptb.de/dcc"
SI_NS = "https://ptb.de/si"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
_NS = {"dcc": DCC_NS, "si": SI_NS}
_SCHEMA_DIR = Path(__file__).parent / "schemas"
_SCHEMA_ROOT = _SCHEMA_DIR.resolve()
_THREAD = threading.local()
_ELEMENT_CONTENT = etree.ErrorTypes.SCHEMAV_ELEMENT_CONTENT
VALIDATED_VERSIONS: dict[str, Path] = {
    v: _SCHEMA_DIR / f"dcc-{v}" / "dcc.xsd"
    for v in ("2.4.0", "3.0.0", "3.1.0", "3.1.1", "3.1.2", "3.2.0", "3.2.1", "3.3.0")
}
_NO_DSIG_VERSIONS = frozenset(("2.4.0", "3.0.0", "3.1.0", "3.1.1", "3.1.2"))
_DS_SIGNATURE = f"{{{DSIG_NS}}}Signature"
# The mapping builds each value, result and the whole report as the plain dicts pydantic validates into
# LabReport's models, and validates the report once at the end: one call into pydantic-core per document
# instead of a model constructor (and its Python-level __init__) per value: same validation, same models.
_Obj = dict[str, Any]
_PREFERRED_LANGS = ("en", None, "de")
# Sections of a dcc:result whose quantities are conditions/metadata, not results.
_NON_RESULT_SECTIONS = ("influenceConditions", "usedMethods", "measurementMetaData", "usedSoftware")
# Compiled once; libxml2 evaluates them without Python per element.
_RESULTS = etree.XPath("dcc:measurementResults/dcc:measurementResult/dcc:results/dcc:result", namespaces=_NS)
# quantities of a dcc:result outside its condition/metadata sections (the result's own ancestors are
# measurementResult(s) and the root, never one of those sections)
_RESULT_QUANTITIES = etree.XPath(
    ".//dcc:quantity[not(ancestor::*[" + " or ".join(f"local-name()='{n}'" for n in _NON_RESULT_SECTIONS) + "])]",
    namespaces=_NS,
)
# xs:ID values (dcc @id, xmldsig @Id) and xs:IDREF(S) holders (dcc @refId, DCC 2.4.0's dcc:refId)
_ID_VALUES = etree.XPath("//dcc:*/@id | //ds:*/@Id", namespaces={**_NS, "ds": DSIG_NS}, smart_strings=False)
_IDREF_VALUES = etree.XPath("//dcc:*/@refId | //dcc:refId/text()", namespaces=_NS, smart_strings=False)
_IDREF_HOLDERS = etree.XPath("//dcc:*/@refId | //dcc:refId", namespaces=_NS)
_D = f"{{{DCC_NS}}}"
_D_NAME = f"{_D}name"
_D_CONTENT = f"{_D}content"
_SI_PREFIX = f"{{{SI_NS}}}"


def _si(name: str) -> str:
    return f"{_SI_PREFIX}{name}"


_S_REAL, _S_HYBRID, _S_LIST, _S_CONSTANT, _S_COMPLEX = map(_si, ("real", "hybrid", "list", "constant", "complex"))
_S_REAL_LIST, _S_COMPLEX_LIST = _si("realList"), _si("complexList")
_S_REAL_LIST_XML, _S_COMPLEX_LIST_XML = _si("realListXMLList"), _si("complexListXMLList")
_SI_VALUE_FORMS = frozenset(
    (_S_REAL, _S_HYBRID, _S_LIST, _S_CONSTANT, _S_COMPLEX, _S_REAL_LIST, _S_COMPLEX_LIST, _S_REAL_LIST_XML)
) | {_S_COMPLEX_LIST_XML}
_S_VALUE, _S_UNIT, _S_EXPANDED_UNC = _si("value"), _si("unit"), _si("expandedUnc")
_S_UNCERTAINTY, _S_COVERAGE_FACTOR, _S_COVERAGE_PROBABILITY = map(
    _si, ("uncertainty", "coverageFactor", "coverageProbability")
)
_S_COVERAGE_INTERVAL, _S_STANDARD_UNC = _si("coverageInterval"), _si("standardUnc")
_S_MU_UNIVARIATE, _S_EXPANDED_MU, _S_STANDARD_MU = map(
    _si, ("measurementUncertaintyUnivariate", "expandedMU", "standardMU")
)
_S_VALUE_EXPANDED_MU, _S_VALUE_STANDARD_MU = _si("valueExpandedMU"), _si("valueStandardMU")
_S_LIST_UNIT, _S_LIST_UNC, _S_LIST_BIVARIATE_UNC = map(_si, ("listUnit", "listUnivariateUnc", "listBivariateUnc"))
_S_LIST_MU = _si("listMeasurementUncertaintyUnivariate")
_S_VALUE_REAL, _S_VALUE_IMAG, _S_VALUE_MAGNITUDE, _S_VALUE_PHASE, _S_UNIT_PHASE = map(
    _si, ("valueReal", "valueImag", "valueMagnitude", "valuePhase", "unitPhase")
)
_S_ELLIPSOIDAL, _S_RECTANGULAR = _si("ellipsoidalRegion"), _si("rectangularRegion")
_S_VALUE_XML, _S_UNIT_XML = _si("valueXMLList"), _si("unitXMLList")
_S_VALUE_REAL_XML, _S_VALUE_IMAG_XML = _si("valueRealXMLList"), _si("valueImagXMLList")
_S_VALUE_MAGNITUDE_XML, _S_VALUE_PHASE_XML = _si("valueMagnitudeXMLList"), _si("valuePhaseXMLList")
_S_EXPANDED_UNC_XML, _S_UNCERTAINTY_XML = _si("expandedUncXMLList"), _si("uncertaintyXMLList")
_S_COVERAGE_FACTOR_XML, _S_COVERAGE_PROBABILITY_XML = _si("coverageFactorXMLList"), _si("coverageProbabilityXMLList")
_S_COVERAGE_INTERVAL_XML, _S_STANDARD_UNC_XML = _si("coverageIntervalXMLList"), _si("standardUncXMLList")
_S_MU_UNIVARIATE_XML, _S_EXPANDED_MU_XML = _si("measurementUncertaintyUnivariateXMLList"), _si("expandedMUXMLList")
_S_VALUE_EXPANDED_MU_XML = _si("valueExpandedMUXMLList")


class _LocalSchemaResolver(LocalSchemaResolver):
    """Lets libxml2 read XSDs from ``parsers/schemas/`` only; any other URL (http, file elsewhere) is refused."""

    def __init__(self) -> None:
        super().__init__(_SCHEMA_ROOT)


def _compile(version: str) -> etree.XMLSchema:
    resolver = _LocalSchemaResolver()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    parser.resolvers.add(resolver)
    try:
        return etree.XMLSchema(etree.parse(str(VALIDATED_VERSIONS[version].resolve()), parser))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:  # a packaging bug, not a user error
        refused = f"; refused non-local schema URLs {resolver.refused}" if resolver.refused else ""
        raise RuntimeError(f"shipped XSD of DCC {version} does not compile: {exc}{refused}") from exc


def _schema(version: str) -> etree.XMLSchema:
    """This thread's compiled XSD of ``version`` (libxml2, local files only, compiled once per thread).

    lxml keeps the last ``error_log`` on the schema object, so each thread validates with its own.
    """
    cache: dict[str, etree.XMLSchema] | None = getattr(_THREAD, "schemas", None)
    if cache is None:
        cache = _THREAD.schemas = {}
    schema = cache.get(version)
    if schema is None:
        schema = cache[version] = _compile(version)
    return schema


def validate_dcc(root: etree._Element, version: str) -> None:
    """Validate ``root`` against the shipped XSD of ``version``; raise :class:`SchemaViolation` if invalid.

    The first violation is reported with ``location`` = the prefixed XPath of the element at fault
    (for an unexpected child: its parent, whose content model is violated) and ``line`` = that element's
    source line; ``reason`` is libxml2's message.
    """
    schema = _schema(version)
    target = root.getroottree() if root.getparent() is None else root
    if schema.validate(target):
        _check_idrefs(root, version)
        return
    err = schema.error_log[0]
    el = _error_element(root, err)
    reason = err.message
    if el is not None and err.type == _ELEMENT_CONTENT and "This element is not expected" in reason:
        parent = el.getparent()
        if parent is not None:
            reason = f"unexpected child {_prefixed(el)!r}: {reason}"
            el = parent
    raise SchemaViolation(
        f"DCC does not conform to the DCC {version} schema: {reason}",
        location=_prefixed_path(el) if el is not None else err.path,
        schema_version=version,
        line=el.sourceline if el is not None else err.line,
    )


def _check_idrefs(root: etree._Element, version: str) -> None:
    """Every ``xs:IDREF(S)`` (``@refId``, 2.4.0's ``dcc:refId``) must name an ``xs:ID`` of the document.

    libxml2 checks ID uniqueness but not IDREF targets; xmlschema (and the XSD spec) do. Reported like
    xmlschema did: at the root element, after every other check passed.
    """
    refs: list[str] = _IDREF_VALUES(root)
    if not refs:
        return
    ids = set(_ID_VALUES(root))
    if all(value in ids for ref in refs for value in ref.split()):
        return
    for ref in _IDREF_HOLDERS(root):  # slow path, only for a broken reference: find and name it
        holder = ref if isinstance(ref, etree._Element) else ref.getparent()
        text = (ref.text or "") if isinstance(ref, etree._Element) else str(ref)
        for value in text.split():
            if value not in ids:
                where = _prefixed_path(holder)
                raise SchemaViolation(
                    f"DCC does not conform to the DCC {version} schema: IDREF {value!r} (refId of {where}, line "
                    f"{holder.sourceline}) names no id in the document",
                    location=_prefixed_path(root),
                    schema_version=version,
                    line=root.sourceline,
                    idref=value,
                    idref_location=where,
                )


def _error_element(root: etree._Element, err: Any) -> etree._Element | None:
    """The element a libxml2 validation error is about: same source line and same libxml2 node path."""
    tree = root.getroottree()
    candidates = [e for e in root.iter() if e.sourceline == err.line and isinstance(e.tag, str)]
    for el in candidates:
        if tree.getpath(el) == err.path:
            return el
    return candidates[0] if candidates else None


def _prefixed(el: etree._Element) -> str:
    name = etree.QName(el).localname
    return f"{el.prefix}:{name}" if el.prefix else name


def _prefixed_path(el: etree._Element) -> str:
    """``/dcc:a/dcc:b[2]/si:c``: the document's prefixes, ``[n]`` among same-named siblings if ambiguous."""
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        parent = node.getparent()
        step = _prefixed(node)
        if parent is not None:
            tag = node.tag
            before = sum(1 for _ in node.itersiblings(tag, preceding=True))
            if before or next(node.itersiblings(tag), None) is not None:
                step = f"{step}[{before + 1}]"
        parts.append(step)
        node = parent
    return "/" + "/".join(reversed(parts))


def _text(el: etree._Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    txt = " ".join(el.text.split())
    return txt or None


class _Mapper:
    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.paths = XPathIndex()

    def prov(self, el: etree._Element) -> _Obj:
        return {"file_sha256": self.source.sha256, "kind": "xml", "xpath": self.paths(el)}

    def field(self, el: etree._Element | None) -> _Obj | None:
        txt = _text(el)
        return {"value": txt, "provenance": self.prov(el)} if txt is not None and el is not None else None

    def text_block(self, el: etree._Element | None) -> _Obj | None:
        """A dcc:textType: pick the English content, else language-less, else German, else the first."""
        if el is None:
            return None
        contents = list(el.iterchildren(_D_CONTENT))
        if not contents:
            return None
        by_lang = {c.get("lang"): c for c in contents}
        for lang in _PREFERRED_LANGS:
            if lang in by_lang and _text(by_lang[lang]):
                return self.field(by_lang[lang])
        return self.field(contents[0])

    def location(self, loc: etree._Element | None) -> _Obj | None:
        if loc is None:
            return None
        parts: dict[str, str] = {}
        for child in loc:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            if name == "further":
                continue
            txt = _text(child)
            if txt:
                parts[name] = txt
        street = " ".join(p for p in (parts.get("street"), parts.get("streetNo")) if p)
        city = " ".join(p for p in (parts.get("postCode"), parts.get("city")) if p)
        lines = [
            s for s in (street, parts.get("postOfficeBox"), city, parts.get("state"), parts.get("countryCode")) if s
        ]
        if not lines:
            return None
        return {"value": ", ".join(lines), "provenance": self.prov(loc)}

    def contact(self, contact: etree._Element | None) -> _Obj:
        if contact is None:
            return {}
        return {
            "name": self.text_block(_find(contact, "name")),
            "address": self.location(_find(contact, "location")),
        }


def _validate_without_enveloped_signatures(root: etree._Element, version: str) -> None:
    """:func:`validate_dcc` on ``root`` as its schema sees it (before DCC 3.2.0 the XSD has no ``ds:Signature``).

    Certificates of those versions are still signed (XAdES, enveloped, as a last child of the root);
    the enveloped-signature transform removes the signature before digesting, and so does the validation
    here: the root's ``ds:Signature`` children are taken out for the validation and put back at their
    places afterwards (no copy of the document). 3.2.0+ declare it, and are validated as they are.
    """
    if version not in _NO_DSIG_VERSIONS:
        validate_dcc(root, version)
        return
    sigs = [(root.index(sig), sig) for sig in root.iterchildren(_DS_SIGNATURE)]
    for _index, sig in sigs:
        root.remove(sig)  # an element leaves with its tail text, and comes back with it
    try:
        validate_dcc(root, version)
    finally:
        for index, sig in sigs:
            root.insert(index, sig)


def _check_time(start: float, limits: Limits) -> None:
    elapsed = time.monotonic() - start
    if elapsed > limits.max_seconds:
        raise LimitExceeded(
            f"DCC parsing took {elapsed:.1f} s, longer than max_seconds={limits.max_seconds}",
            limit="max_seconds",
            allowed=limits.max_seconds,
            actual=round(elapsed, 2),
        )


def parse_dcc(data: bytes, *, source: SourceFile, limits: Limits) -> LabReport:
    """Parse and validate a PTB DCC; return the normalised report with XPath provenance.

    Raises :class:`HostileInput` (entities), :class:`MalformedInput` (not well-formed),
    :class:`UnsupportedFormat` (not a DCC root), :class:`SchemaViolation` (invalid against the shipped
    XSD of its version), :class:`LimitExceeded` (size, depth, time).
    """
    start = time.monotonic()
    from parsers.signatures import is_cms, unwrap_cms

    if is_cms(data):  # a .p7m: the DCC is the CMS signedData's encapsulated content
        data = unwrap_cms(data)
    tree = parse_xml(data, limits=limits, what="DCC XML", blank_text=False)
    root = tree.getroot()
    qname = etree.QName(root)
    if qname.namespace != DCC_NS or qname.localname != "digitalCalibrationCertificate":
        raise UnsupportedFormat(
            f"not a PTB DCC: root element is {{{qname.namespace}}}{qname.localname}, expected "
            f"{{{DCC_NS}}}digitalCalibrationCertificate",
            location=xpath_of(root),
        )
    version = root.get("schemaVersion")
    warnings: list[str] = []
    if version in VALIDATED_VERSIONS:
        _validate_without_enveloped_signatures(root, version)
        check = {"schema_name": "dcc", "version": version, "status": "valid"}
    else:
        check = {"schema_name": "dcc", "version": version, "status": "not_validated"}
        warnings.append(
            f"DCC schemaVersion {version!r} has no shipped XSD (validated: "
            f"{', '.join(sorted(VALIDATED_VERSIONS))}); the certificate was NOT schema-validated"
        )
    _check_time(start, limits)
    report = _map(root, source=source, check=check, warnings=warnings)
    _check_time(start, limits)
    return report


def _map(root: etree._Element, *, source: SourceFile, check: _Obj, warnings: list[str]) -> LabReport:
    m = _Mapper(source)
    adm = _find(root, "administrativeData")
    core = _find(adm, "coreData") if adm is not None else None

    def core_field(name: str) -> _Obj | None:
        return m.field(_find(core, name)) if core is not None else None

    lab_contact = _find(adm, "calibrationLaboratory", "contact") if adm is not None else None
    customer = _find(adm, "customer") if adm is not None else None

    items: list[_Obj] = []
    for item in _iterfind(root, "administrativeData", "items", "item"):
        ident = _find(item, "identifications", "identification", "value")
        items.append(
            {
                "id": m.field(ident),
                "description": m.text_block(_find(item, "name")),
            }
        )

    persons: list[_Obj] = []
    for rp in _iterfind(root, "administrativeData", "respPersons", "respPerson"):
        name = m.text_block(_find(rp, "person", "name"))
        if name is None:
            continue
        role = m.text_block(_find(rp, "description"))
        if role is None and _text(_find(rp, "mainSigner")) == "true":
            role = {"value": "main signer", "provenance": m.prov(_find(rp, "mainSigner"))}
        persons.append({"name": name, "role": role})

    methods: list[_Obj] = []
    for um in root.iterfind(".//dcc:usedMethods/dcc:usedMethod", _NS):
        methods.append({"name": m.text_block(_find(um, "name")), "standard": m.field(_find(um, "norm"))})

    amends: _Obj | None = None
    if core is not None:
        amends = m.field(_find(core, "reportAmendedSubstituted", "replacedUniqueIdentifier"))
        if amends is None:
            amends = m.field(_find(core, "previousReport", "referenceID"))

    return LabReport.model_validate(
        {
            "source": source,
            "format": "dcc",
            "title": {"value": "Digital Calibration Certificate", "provenance": m.prov(root)},
            "report_id": core_field("uniqueIdentifier"),
            "lab": m.contact(lab_contact),
            "location": core_field("performanceLocation"),
            "customer": m.contact(customer),
            "methods": methods,
            "items": items,
            "dates": {
                "receipt": core_field("receiptDate"),
                "performance_start": core_field("beginPerformanceDate"),
                "performance_end": core_field("endPerformanceDate"),
                "issue": core_field("issueDate"),
            },
            "results": _results(root, m),
            "authorised_by": persons,
            "amends_report_id": amends,
            "schema_check": check,
            "warnings": warnings,
        }
    )


def _child(el: etree._Element, tag: str) -> etree._Element | None:
    """First child of ``el`` with the Clark-notation ``tag`` (C iteration, no ElementPath parsing)."""
    return next(el.iterchildren(tag), None)


def _find(el: etree._Element | None, *steps: str) -> etree._Element | None:
    """``el.find("dcc:a/dcc:b", namespaces)`` as ``_find(el, "a", "b")``, without ElementPath.

    The first match in document order, as ElementPath's ``find`` (a later ``a`` is searched when the first
    has no ``b``); ElementPath re-keys its path cache with the namespace map on every call (~4 us), this
    is one C-level child iteration per step.
    """
    if el is None:
        return None
    if len(steps) == 1:
        return next(el.iterchildren(_D + steps[0]), None)
    for child in el.iterchildren(_D + steps[0]):
        found = _find(child, *steps[1:])
        if found is not None:
            return found
    return None


def _iterfind(el: etree._Element, *steps: str) -> Iterator[etree._Element]:
    """``el.iterfind("dcc:a/dcc:b", _NS)`` (child steps in the DCC namespace): same elements, same order."""
    if len(steps) == 1:
        yield from el.iterchildren(_D + steps[0])
        return
    for child in el.iterchildren(_D + steps[0]):
        yield from _iterfind(child, *steps[1:])


def _results(root: etree._Element, m: _Mapper) -> list[_Obj]:
    out: list[_Obj] = []
    for res in _RESULTS(root):
        res_name = m.text_block(_child(res, _D_NAME))
        for q in _RESULT_QUANTITIES(res):
            qname = m.text_block(_child(q, _D_NAME)) or res_name
            if qname is None:
                continue
            for el in q.iterchildren():
                if isinstance(el.tag, str) and el.tag.startswith(_SI_PREFIX):
                    _read_si(el, qname, m, out, _NO_DEFAULTS)
    return out


class _Defaults:
    """What a list passes down to its members: ``si:listUnit`` and ``si:listUnivariateUnc``."""

    __slots__ = ("unc", "unit")

    def __init__(self, unit: etree._Element | None, unc: etree._Element | None) -> None:
        self.unit = unit
        self.unc = unc


_NO_DEFAULTS = _Defaults(None, None)


def _read_si(el: etree._Element, qname: _Obj, m: _Mapper, out: list[_Obj], inherited: _Defaults) -> None:
    """Append one :class:`Result` per value held by the D-SI element ``el`` (any form, any nesting).

    ``si:hybrid`` holds one quantity in several unit systems: only its first representation is read
    (the others are the same values, not more results).
    """
    tag = el.tag
    if tag == _S_REAL:
        _read_real(el, qname, m, out, inherited)
    elif tag == _S_CONSTANT:
        _read_constant(el, qname, m, out)
    elif tag == _S_COMPLEX:
        _read_complex(el, qname, m, out, inherited)
    elif tag in (_S_REAL_LIST_XML, _S_COMPLEX_LIST_XML):
        _read_xml_list(el, qname, m, out)
    elif tag in (_S_REAL_LIST, _S_COMPLEX_LIST):
        unit = _child(el, _S_LIST_UNIT)
        unc = _child(el, _S_LIST_UNC) if tag == _S_REAL_LIST else _child(el, _S_LIST_BIVARIATE_UNC)
        if unc is None and tag == _S_REAL_LIST:
            unc = _child(el, _S_LIST_MU)
        defaults = _Defaults(unit if unit is not None else inherited.unit, unc if unc is not None else inherited.unc)
        for child in el.iterchildren(_S_REAL, _S_COMPLEX):
            _read_si(child, qname, m, out, defaults)
    elif tag == _S_LIST:  # list of lists: any nesting
        for child in el.iterchildren():
            if isinstance(child.tag, str) and child.tag in _SI_VALUE_FORMS:
                _read_si(child, qname, m, out, inherited)
    elif tag == _S_HYBRID:
        first = next((c for c in el.iterchildren() if isinstance(c.tag, str) and c.tag in _SI_VALUE_FORMS), None)
        if first is not None:
            _read_si(first, qname, m, out, inherited)


def _kids(el: etree._Element) -> dict[Any, etree._Element]:
    """Tag -> first child with that tag, from one pass over the children (a D-SI element has a handful)."""
    children = list(el)
    children.reverse()  # the first child of a tag is assigned last, so it is the one kept
    return {c.tag: c for c in children}


def _uncertainty_of(
    owner: etree._Element | None, kids: dict[Any, etree._Element] | None = None
) -> tuple[etree._Element | None, dict[Any, etree._Element] | None]:
    """``(uncertainty value element, children of the element holding coverageFactor/coverageProbability)``.

    D-SI 1.x/2.0/2.1: ``si:expandedUnc`` (uncertainty, coverageFactor, coverageProbability) or
    ``si:coverageInterval`` (standardUnc, coverageProbability); D-SI 2.2: ``si:measurementUncertaintyUnivariate``
    with ``si:expandedMU`` (valueExpandedMU, ...) or ``si:standardMU`` (valueStandardMU). ``kids``: ``owner``'s
    :func:`_kids` when the caller has them.
    """
    if owner is None:
        return None, None
    if kids is None:
        kids = _kids(owner)
    unc = kids.get(_S_EXPANDED_UNC)
    if unc is not None:
        k = _kids(unc)
        return k.get(_S_UNCERTAINTY), k
    interval = kids.get(_S_COVERAGE_INTERVAL)
    if interval is not None:
        k = _kids(interval)
        return k.get(_S_STANDARD_UNC), k
    mu = kids.get(_S_MU_UNIVARIATE)
    if mu is None and owner.tag == _S_LIST_MU:  # a realList's default, D-SI 2.2
        mu = owner
    if mu is not None:
        mu_kids = _kids(mu)
        expanded = mu_kids.get(_S_EXPANDED_MU)
        if expanded is not None:
            k = _kids(expanded)
            return k.get(_S_VALUE_EXPANDED_MU), k
        standard = mu_kids.get(_S_STANDARD_MU)
        if standard is not None:
            k = _kids(standard)
            return k.get(_S_VALUE_STANDARD_MU), k
    return None, None


def _read_real(el: etree._Element, qname: _Obj, m: _Mapper, out: list[_Obj], inherited: _Defaults) -> None:
    kids = _kids(el)
    value = m.field(kids.get(_S_VALUE))
    if value is None:
        return
    unit = kids.get(_S_UNIT)
    unc, cov = _uncertainty_of(el, kids)
    if unc is None and inherited.unc is not None:
        unc, cov = _uncertainty_of(inherited.unc)
    out.append(
        {
            "quantity": qname,
            "value": value,
            "unit": m.field(unit if unit is not None else inherited.unit),
            "uncertainty": m.field(unc),
            "coverage_factor": m.field(cov.get(_S_COVERAGE_FACTOR)) if cov is not None else None,
            "coverage_probability": m.field(cov.get(_S_COVERAGE_PROBABILITY)) if cov is not None else None,
        }
    )


def _read_constant(el: etree._Element, qname: _Obj, m: _Mapper, out: list[_Obj]) -> None:
    """``si:constant``: value, unit and a standard uncertainty (``si:uncertainty``; 2.2: ``si:valueStandardMU``)."""
    value = m.field(_child(el, _S_VALUE))
    if value is None:
        return
    unc = _child(el, _S_UNCERTAINTY)
    if unc is None:
        unc = _child(el, _S_VALUE_STANDARD_MU)
    out.append({"quantity": qname, "value": value, "unit": m.field(_child(el, _S_UNIT)), "uncertainty": m.field(unc)})


def _read_complex(el: etree._Element, qname: _Obj, m: _Mapper, out: list[_Obj], inherited: _Defaults) -> None:
    """``si:complex`` as text: ``re+imi`` (cartesian) or ``mag∠phase`` (polar, phase unit appended to the unit).

    Its uncertainty is a region (ellipsoidal/rectangular): coverage factor and probability are kept, the
    covariance matrix is not flattened into one number.
    """
    re_el, im_el = _child(el, _S_VALUE_REAL), _child(el, _S_VALUE_IMAG)
    mag_el, ph_el = _child(el, _S_VALUE_MAGNITUDE), _child(el, _S_VALUE_PHASE)
    if re_el is not None and im_el is not None:
        re_txt, im_txt = _text(re_el), _text(im_el)
        if re_txt is None or im_txt is None:
            return
        text = f"{re_txt}{'' if im_txt.startswith(('-', '+')) else '+'}{im_txt}i"
    elif mag_el is not None and ph_el is not None:
        mag_txt, ph_txt = _text(mag_el), _text(ph_el)
        if mag_txt is None or ph_txt is None:
            return
        text = f"{mag_txt}∠{ph_txt}"
    else:
        return
    units = [_text(u) for u in el.iterchildren(_S_UNIT, _S_UNIT_PHASE)]
    unit_txt = "; ".join(u for u in units if u) or _text(inherited.unit)
    region = _child(el, _S_ELLIPSOIDAL) or _child(el, _S_RECTANGULAR)
    out.append(
        {
            "quantity": qname,
            "value": {"value": text, "provenance": m.prov(el)},
            "unit": {"value": unit_txt, "provenance": m.prov(el)} if unit_txt else None,
            "coverage_factor": m.field(_child(region, _S_COVERAGE_FACTOR)) if region is not None else None,
            "coverage_probability": m.field(_child(region, _S_COVERAGE_PROBABILITY)) if region is not None else None,
        }
    )


def _tokens(el: etree._Element | None) -> list[str]:
    return (el.text or "").split() if el is not None else []


def _nth(tokens: list[str], i: int) -> str | None:
    """Element ``i`` of an XMLList; a one-element list applies to every value (D-SI broadcasting)."""
    if not tokens:
        return None
    if len(tokens) == 1:
        return tokens[0]
    return tokens[i] if i < len(tokens) else None


def _read_xml_list(el: etree._Element, qname: _Obj, m: _Mapper, out: list[_Obj]) -> None:
    """``si:realListXMLList`` / ``si:complexListXMLList``: one result per whitespace-separated value.

    Provenance: the XPath of the list element plus ``#n`` (the 1-based token number). Unit and uncertainty
    lists of one element apply to every value.
    """
    if el.tag == _S_REAL_LIST_XML:
        values_el = _child(el, _S_VALUE_XML)
        values = _tokens(values_el)
        imag: list[str] = []
    else:
        values_el = _child(el, _S_VALUE_REAL_XML)
        if values_el is None:
            values_el = _child(el, _S_VALUE_MAGNITUDE_XML)
            imag = _tokens(_child(el, _S_VALUE_PHASE_XML))
        else:
            imag = _tokens(_child(el, _S_VALUE_IMAG_XML))
        values = _tokens(values_el)
    if values_el is None:
        return
    polar = el.tag == _S_COMPLEX_LIST_XML and _child(el, _S_VALUE_MAGNITUDE_XML) is not None
    unit_el = _child(el, _S_UNIT_XML)
    units = _tokens(unit_el)
    unc_holder = _child(el, _S_EXPANDED_UNC_XML)
    unc_el = cov_k_el = cov_p_el = None
    if unc_holder is not None:
        unc_el = _child(unc_holder, _S_UNCERTAINTY_XML)
    else:
        mu = _child(el, _S_MU_UNIVARIATE_XML)
        unc_holder = _child(mu, _S_EXPANDED_MU_XML) if mu is not None else None
        if unc_holder is not None:
            unc_el = _child(unc_holder, _S_VALUE_EXPANDED_MU_XML)
        else:
            unc_holder = _child(el, _S_COVERAGE_INTERVAL_XML)
            if unc_holder is not None:
                unc_el = _child(unc_holder, _S_STANDARD_UNC_XML)
    if unc_holder is not None:
        cov_k_el = _child(unc_holder, _S_COVERAGE_FACTOR_XML)
        cov_p_el = _child(unc_holder, _S_COVERAGE_PROBABILITY_XML)
    uncs, ks, ps = _tokens(unc_el), _tokens(cov_k_el), _tokens(cov_p_el)
    base = m.paths(values_el)
    sha = m.source.sha256

    def tok(src: etree._Element | None, seq: list[str], i: int) -> _Obj | None:
        txt = _nth(seq, i)
        if txt is None or src is None:
            return None
        path = m.paths(src)
        return {"value": txt, "provenance": {"file_sha256": sha, "kind": "xml", "xpath": f"{path}#{i + 1}"}}

    for i, raw in enumerate(values):
        if imag:
            if i >= len(imag):
                break
            im = imag[i]
            raw = f"{raw}∠{im}" if polar else f"{raw}{'' if im.startswith(('-', '+')) else '+'}{im}i"
        out.append(
            {
                "quantity": qname,
                "value": {"value": raw, "provenance": {"file_sha256": sha, "kind": "xml", "xpath": f"{base}#{i + 1}"}},
                "unit": tok(unit_el, units, i),
                "uncertainty": tok(unc_el, uncs, i),
                "coverage_factor": tok(cov_k_el, ks, i),
                "coverage_probability": tok(cov_p_el, ps, i),
            }
        )
