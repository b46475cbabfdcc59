"""PTB Digital Calibration Certificate (DCC) XML -> :class:`parsers.report_model.LabReport`.

The XML is read with the hardened reader of :mod:`parsers._safe` (no entities, no network, depth-limited),
then validated against the DCC XSD shipped in ``parsers/schemas/`` (never fetched): the schema is chosen by
the root's ``schemaVersion`` attribute.

Schema versions (see ``parsers/schemas/README.md``):

* ``2.4.0``: validated (DCC 2.4.0 XSD + D-SI 2.0.0);
* ``3.1.2``: validated (DCC 3.1.2 XSD + D-SI 2.1.0);
* ``3.3.0``: validated (DCC 3.3.0 XSD + D-SI 2.1.0 with a permissive ``si:complexListXMLList`` + W3C xmldsig);
* any other version: **not validated** -- the report is still mapped, ``schema_check.status`` is
  ``"not_validated"`` and a warning names the version, so the caller (gateway policy) decides whether an
  unvalidated certificate is acceptable. A document that *is* validated and fails raises
  :class:`SchemaViolation` with the XPath of the first error.

Every mapped value carries an XPath :class:`Provenance`.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from lxml import etree

from parsers._safe import parse_xml, xpath_of
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
_NS = {"dcc": DCC_NS, "si": SI_NS}
_SCHEMA_DIR = Path(__file__).parent / "schemas"
VALIDATED_VERSIONS: dict[str, Path] = {
    "2.4.0": _SCHEMA_DIR / "dcc-2.4.0" / "dcc.xsd",
    "3.1.2": _SCHEMA_DIR / "dcc-3.1.2" / "dcc.xsd",
    "3.3.0": _SCHEMA_DIR / "dcc-3.3.0" / "dcc.xsd",
}
_PREFERRED_LANGS = ("en", None, "de")
# Sections of a dcc:result whose quantities are conditions/metadata, not results.
_NON_RESULT_SECTIONS = {"influenceConditions", "usedMethods", "measurementMetaData", "usedSoftware"}


@functools.lru_cache(maxsize=4)
def _schema(version: str) -> Any:
    """Load (once) the XSD for ``version``; local files only, never the network."""
    import xmlschema

    return xmlschema.XMLSchema(str(VALIDATED_VERSIONS[version].resolve()), allow="local")


def validate_dcc(root: etree._Element, version: str) -> None:
    """Validate ``root`` against the shipped XSD of ``version``; raise :class:`SchemaViolation` if invalid."""
    schema = _schema(version)
    for err in schema.iter_errors(root):
        path = getattr(err, "path", None)
        raise SchemaViolation(
            f"DCC does not conform to the DCC {version} schema: {err.reason}",
            location=str(path) if path else None,
            schema_version=version,
        )


def _text(el: etree._Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    txt = " ".join(el.text.split())
    return txt or None


class _Mapper:
    def __init__(self, source: SourceFile) -> None:
        self.source = source

    def prov(self, el: etree._Element) -> Provenance:
        return Provenance(file_sha256=self.source.sha256, kind="xml", xpath=xpath_of(el))

    def field(self, el: etree._Element | None) -> Field[str] | None:
        txt = _text(el)
        return Field[str](value=txt, provenance=self.prov(el)) if txt is not None and el is not None else None

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
        return Field[str](value=", ".join(lines), provenance=self.prov(loc))

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
            role = Field[str](value="main signer", provenance=m.prov(rp.find("dcc:mainSigner", _NS)))
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
        title=Field[str](value="Digital Calibration Certificate", provenance=m.prov(root)),
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


def _in_result_section(q: etree._Element, stop: etree._Element) -> bool:
    node = q.getparent()
    while node is not None and node is not stop:
        if etree.QName(node).localname in _NON_RESULT_SECTIONS:
            return False
        node = node.getparent()
    return True


def _results(root: etree._Element, m: _Mapper) -> list[Result]:
    out: list[Result] = []
    for res in root.iterfind("dcc:measurementResults/dcc:measurementResult/dcc:results/dcc:result", _NS):
        res_name = m.text_block(res.find("dcc:name", _NS))
        for q in res.iterfind(".//dcc:quantity", _NS):
            if not _in_result_section(q, res):
                continue
            qname = m.text_block(q.find("dcc:name", _NS)) or res_name
            if qname is None:
                continue
            reals = _reals_of(q)
            for real in reals:
                value = m.field(real.find("si:value", _NS))
                if value is None:
                    continue
                unc = real.find("si:expandedUnc", _NS)
                out.append(
                    Result(
                        quantity=qname,
                        value=value,
                        unit=m.field(real.find("si:unit", _NS)),
                        uncertainty=m.field(unc.find("si:uncertainty", _NS)) if unc is not None else None,
                        coverage_factor=m.field(unc.find("si:coverageFactor", _NS)) if unc is not None else None,
                        coverage_probability=(
                            m.field(unc.find("si:coverageProbability", _NS)) if unc is not None else None
                        ),
                    )
                )
    return out


def _reals_of(q: etree._Element) -> list[etree._Element]:
    """The si:real values of a dcc:quantity: direct, first unit of an si:hybrid, or every list member."""
    real = q.find("si:real", _NS)
    if real is not None:
        return [real]
    hybrid = q.find("si:hybrid", _NS)
    if hybrid is not None:
        first = hybrid.find("si:real", _NS)
        return [first] if first is not None else []
    lst = q.find("si:list", _NS)
    if lst is not None:
        return list(lst.iterfind(".//si:realList/si:real", _NS))
    return []
