"""PTB Digital Calibration Certificate (DCC) XML -> :class:`parsers.report_model.LabReport`.

The XML is read once with the hardened reader of :mod:`parsers._safe` (no entities, no network,
depth-limited), then that same tree is validated by libxml2 (``lxml.etree.XMLSchema``) against the DCC XSD
shipped in ``parsers/schemas/`` (never fetched; imports resolve to local files only): the schema is chosen
by the root's ``schemaVersion`` attribute. Each schema is compiled once per thread (a few ms);
``xsi:schemaLocation`` hints in the document are ignored. libxml2 does not check that an ``xs:IDREF``
names an existing ``xs:ID``; :func:`validate_dcc` adds that check, so the accept/reject verdict is the
one of a full XSD 1.0 validator (xmlschema, which this module used before, agrees on the test corpus).

Schema versions (see ``parsers/schemas/README.md``):

* ``2.4.0``: validated (DCC 2.4.0 XSD + D-SI 2.0.0);
* ``3.1.2``: validated (DCC 3.1.2 XSD + D-SI 2.1.0);
* ``3.3.0``: validated (DCC 3.3.0 XSD + D-SI 2.1.0 with a permissive ``si:complexListXMLList`` + W3C xmldsig);
* any other version: **not validated** -- the report is still mapped, ``schema_check.status`` is
  ``"not_validated"`` and a warning names the version, so the caller (gateway policy) decides whether an
  unvalidated certificate is acceptable. A document that *is* validated and fails raises
  :class:`SchemaViolation` with the prefixed XPath (``location``) and source ``line`` of the first error.

Every mapped value carries an XPath :class:`Provenance`.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from lxml import etree

from parsers._safe import XPathIndex, parse_xml, xpath_of
from parsers.errors import LimitExceeded, SchemaViolation, UnsupportedFormat
from parsers.limits import Limits
from parsers.provenance import Provenance, SourceFile
from parsers.report_model import (
    Field,
    LabReport,
    Method,
    Party,
    Person,
    ReportDates,
    ReportItem,
    Result,
    SchemaCheck,
)

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
    "2.4.0": _SCHEMA_DIR / "dcc-2.4.0" / "dcc.xsd",
    "3.1.2": _SCHEMA_DIR / "dcc-3.1.2" / "dcc.xsd",
    "3.3.0": _SCHEMA_DIR / "dcc-3.3.0" / "dcc.xsd",
}
_StrField = Field[str]  # parametrised once: ``Field[str](...)`` per value costs pydantic's generic lookup
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
_LIST_REALS = etree.XPath(".//si:realList/si:real", namespaces=_NS)
_D_NAME = f"{{{DCC_NS}}}name"
_S_REAL, _S_HYBRID, _S_LIST = (f"{{{SI_NS}}}{n}" for n in ("real", "hybrid", "list"))
_S_VALUE, _S_UNIT, _S_EXPANDED_UNC = (f"{{{SI_NS}}}{n}" for n in ("value", "unit", "expandedUnc"))
_S_UNCERTAINTY, _S_COVERAGE_FACTOR, _S_COVERAGE_PROBABILITY = (
    f"{{{SI_NS}}}{n}" for n in ("uncertainty", "coverageFactor", "coverageProbability")
)


class _LocalSchemaResolver(etree.Resolver):
    """Lets libxml2 read XSDs from ``parsers/schemas/`` only; any other URL (http, file elsewhere) is refused."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []

    def resolve(self, system_url: str | None, public_id: str | None, context: Any) -> Any:
        path = Path(system_url.removeprefix("file://")) if system_url else None
        if path is not None and path.is_absolute():
            path = path.resolve()
            if path.is_relative_to(_SCHEMA_ROOT) and path.is_file():
                return self.resolve_filename(str(path), context)
        self.refused.append(str(system_url))
        return self.resolve_string("", context)  # an empty document: the import fails, nothing is fetched


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

    def prov(self, el: etree._Element) -> Provenance:
        return Provenance(file_sha256=self.source.sha256, kind="xml", xpath=self.paths(el))

    def field(self, el: etree._Element | None) -> Field[str] | None:
        txt = _text(el)
        return _StrField(value=txt, provenance=self.prov(el)) if txt is not None and el is not None else None

    def text_block(self, el: etree._Element | None) -> Field[str] | None:
        """A dcc:textType: pick the English content, else language-less, else German, else the first."""
        if el is None:
            return None
        contents = el.findall("dcc:content", _NS)
        if not contents:
            return None
        by_lang = {c.get("lang"): c for c in contents}
        for lang in _PREFERRED_LANGS:
            if lang in by_lang and _text(by_lang[lang]):
                return self.field(by_lang[lang])
        return self.field(contents[0])

    def location(self, loc: etree._Element | None) -> Field[str] | None:
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
        return _StrField(value=", ".join(lines), provenance=self.prov(loc))

    def contact(self, contact: etree._Element | None) -> Party:
        if contact is None:
            return Party()
        return Party(
            name=self.text_block(contact.find("dcc:name", _NS)),
            address=self.location(contact.find("dcc:location", _NS)),
        )


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
    tree = parse_xml(data, limits=limits, what="DCC XML")
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
        validate_dcc(root, version)
        check = SchemaCheck(schema_name="dcc", version=version, status="valid")
    else:
        check = SchemaCheck(schema_name="dcc", version=version, status="not_validated")
        warnings.append(
            f"DCC schemaVersion {version!r} has no shipped XSD (validated: "
            f"{', '.join(sorted(VALIDATED_VERSIONS))}); the certificate was NOT schema-validated"
        )
    _check_time(start, limits)
    report = _map(root, source=source, check=check, warnings=warnings)
    _check_time(start, limits)
    return report


def _map(root: etree._Element, *, source: SourceFile, check: SchemaCheck, warnings: list[str]) -> LabReport:
    m = _Mapper(source)
    adm = root.find("dcc:administrativeData", _NS)
    core = adm.find("dcc:coreData", _NS) if adm is not None else None

    def core_field(name: str) -> Field[str] | None:
        return m.field(core.find(f"dcc:{name}", _NS)) if core is not None else None

    lab_contact = adm.find("dcc:calibrationLaboratory/dcc:contact", _NS) if adm is not None else None
    customer = adm.find("dcc:customer", _NS) if adm is not None else None

    items: list[ReportItem] = []
    for item in root.iterfind("dcc:administrativeData/dcc:items/dcc:item", _NS):
        ident = item.find("dcc:identifications/dcc:identification/dcc:value", _NS)
        items.append(
            ReportItem(
                id=m.field(ident),
                description=m.text_block(item.find("dcc:name", _NS)),
            )
        )

    persons: list[Person] = []
    for rp in root.iterfind("dcc:administrativeData/dcc:respPersons/dcc:respPerson", _NS):
        name = m.text_block(rp.find("dcc:person/dcc:name", _NS))
        if name is None:
            continue
        role = m.text_block(rp.find("dcc:description", _NS))
        if role is None and _text(rp.find("dcc:mainSigner", _NS)) == "true":
            role = _StrField(value="main signer", provenance=m.prov(rp.find("dcc:mainSigner", _NS)))
        persons.append(Person(name=name, role=role))

    methods: list[Method] = []
    for um in root.iterfind(".//dcc:usedMethods/dcc:usedMethod", _NS):
        methods.append(Method(name=m.text_block(um.find("dcc:name", _NS)), standard=m.field(um.find("dcc:norm", _NS))))

    amends: Field[str] | None = None
    if core is not None:
        amends = m.field(core.find("dcc:reportAmendedSubstituted/dcc:replacedUniqueIdentifier", _NS))
        if amends is None:
            amends = m.field(core.find("dcc:previousReport/dcc:referenceID", _NS))

    return LabReport(
        source=source,
        format="dcc",
        title=_StrField(value="Digital Calibration Certificate", provenance=m.prov(root)),
        report_id=core_field("uniqueIdentifier"),
        lab=m.contact(lab_contact),
        location=core_field("performanceLocation"),
        customer=m.contact(customer),
        methods=methods,
        items=items,
        dates=ReportDates(
            receipt=core_field("receiptDate"),
            performance_start=core_field("beginPerformanceDate"),
            performance_end=core_field("endPerformanceDate"),
            issue=core_field("issueDate"),
        ),
        results=_results(root, m),
        authorised_by=persons,
        amends_report_id=amends,
        schema_check=check,
        warnings=warnings,
    )


def _child(el: etree._Element, tag: str) -> etree._Element | None:
    """First child of ``el`` with the Clark-notation ``tag`` (C iteration, no ElementPath parsing)."""
    return next(el.iterchildren(tag), None)


def _results(root: etree._Element, m: _Mapper) -> list[Result]:
    out: list[Result] = []
    for res in _RESULTS(root):
        res_name = m.text_block(_child(res, _D_NAME))
        for q in _RESULT_QUANTITIES(res):
            qname = m.text_block(_child(q, _D_NAME)) or res_name
            if qname is None:
                continue
            for real in _reals_of(q):
                value = m.field(_child(real, _S_VALUE))
                if value is None:
                    continue
                unc = _child(real, _S_EXPANDED_UNC)
                out.append(
                    Result(
                        quantity=qname,
                        value=value,
                        unit=m.field(_child(real, _S_UNIT)),
                        uncertainty=m.field(_child(unc, _S_UNCERTAINTY)) if unc is not None else None,
                        coverage_factor=m.field(_child(unc, _S_COVERAGE_FACTOR)) if unc is not None else None,
                        coverage_probability=(
                            m.field(_child(unc, _S_COVERAGE_PROBABILITY)) if unc is not None else None
                        ),
                    )
                )
    return out


def _reals_of(q: etree._Element) -> list[etree._Element]:
    """The si:real values of a dcc:quantity: direct, first unit of an si:hybrid, or every list member."""
    real = _child(q, _S_REAL)
    if real is not None:
        return [real]
    hybrid = _child(q, _S_HYBRID)
    if hybrid is not None:
        first = _child(hybrid, _S_REAL)
        return [first] if first is not None else []
    lst = _child(q, _S_LIST)
    if lst is not None:
        return _LIST_REALS(lst)
    return []
