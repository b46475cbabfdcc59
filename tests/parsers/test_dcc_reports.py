"""PTB DCC parser: mapping with XPath provenance, shipped-XSD validation, hostile/unknown inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers.dcc import parse_dcc
from parsers.errors import HostileInput, SchemaViolation, UnsupportedFormat
from parsers.limits import Limits
from parsers.pdf_accuracy import source_of

PTB = Path(__file__).resolve().parent.parent / "fixtures" / "reports" / "ptb"
DCC3 = Path(__file__).resolve().parent.parent / "fixtures" / "reports" / "dcc3"


def _parse(data: bytes):
    return parse_dcc(data, source=source_of(data, "dcc"), limits=Limits())


def test_example_dcc_maps_core_data_with_xpaths() -> None:
    rep = _parse((PTB / "example.xml").read_bytes())
    assert rep.schema_check is not None and rep.schema_check.status == "valid"
    assert rep.schema_check.version == "2.4.0"
    assert rep.report_id is not None and rep.report_id.value == "PTB - 11044 17"
    assert rep.report_id.provenance.xpath == (
        "/digitalCalibrationCertificate/administrativeData/coreData/uniqueIdentifier"
    )
    assert rep.dates.performance_start is not None and rep.dates.performance_start.value == "2017-09-20"
    assert rep.lab.name is not None and rep.lab.name.value == "Physikalisch-Technische Bundesanstalt (PTB)"
    assert rep.lab.address is not None and rep.lab.address.value == "Bundesallee 100, 38116 Braunschweig, DE"
    assert [i.id.value for i in rep.items if i.id] == ["1040917", "1040918"]
    assert [p.name.value for p in rep.authorised_by] == ["Vorname1 Name1", "Vorname2 Name2", "Vorname3 Name3"]
    first = rep.results[0]
    assert (first.quantity.value, first.value.value) == ("mass", "10.000006E-3")
    assert first.unit is not None and first.unit.value == "\\kilogram"
    assert first.uncertainty is not None and first.uncertainty.value == "0.000004E-3"
    assert first.coverage_factor is not None and first.coverage_factor.value == "2"
    assert first.coverage_probability is not None and first.coverage_probability.value == "0.95"
    assert "/measurementResults/" in (first.value.provenance.xpath or "")
    # influence conditions (temperature, humidity...) are not results
    assert all("temperature" not in r.quantity.value.lower() for r in rep.results)
    assert rep.warnings == []


def test_vacuum_dcc_list_results() -> None:
    rep = _parse((PTB / "dcc-vacuumlab-CDG.xml").read_bytes())
    assert rep.report_id is not None and rep.report_id.value == "75999PTB20"
    assert rep.dates.performance_end is not None and rep.dates.performance_end.value == "2020-08-08"
    assert len(rep.results) == 56
    assert rep.results[0].value.value == "2.6650e+01"


def test_invalid_dcc_raises_schema_violation_with_location() -> None:
    data = (PTB / "example.xml").read_bytes()
    broken = data.replace(b"<dcc:uniqueIdentifier>PTB - 11044 17</dcc:uniqueIdentifier>", b"", 1)
    assert broken != data
    with pytest.raises(SchemaViolation) as exc:
        _parse(broken)
    assert exc.value.facts["schema_version"] == "2.4.0"
    assert "coreData" in (exc.value.location or "")


def test_unknown_schema_version_is_parsed_but_marked_not_validated() -> None:
    data = (PTB / "example.xml").read_bytes().replace(b'schemaVersion="2.4.0"', b'schemaVersion="9.0.0"', 1)
    rep = _parse(data)
    assert rep.schema_check is not None
    assert (rep.schema_check.status, rep.schema_check.version) == ("not_validated", "9.0.0")
    assert any("NOT schema-validated" in w for w in rep.warnings)
    assert rep.report_id is not None and rep.report_id.value == "PTB - 11044 17"


def test_xxe_is_refused() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<dcc:digitalCalibrationCertificate xmlns:dcc="https://ptb.de/dcc" schemaVersion="2.4.0">'
        b"&x;</dcc:digitalCalibrationCertificate>"
    )
    with pytest.raises(HostileInput):
        _parse(evil)


def test_other_xml_is_unsupported() -> None:
    with pytest.raises(UnsupportedFormat, match="not a PTB DCC"):
        _parse(b'<QIFDocument xmlns="http://qifstandards.org/xsd/qif3"/>')


def test_public_dict_is_json_ready() -> None:
    import json

    rep = _parse((PTB / "example.xml").read_bytes())
    d = rep.to_public_dict()
    assert json.loads(json.dumps(d))["report_id"]["value"] == "PTB - 11044 17"
    assert d["format"] == "dcc"


def test_dcc_3_3_0_validates_and_maps_amendment_and_issue_date() -> None:
    rep = _parse((DCC3 / "dcc-3.3.0-mass-amended.xml").read_bytes())
    assert rep.schema_check is not None
    assert (rep.schema_check.status, rep.schema_check.version) == ("valid", "3.3.0")
    assert rep.warnings == []
    assert rep.report_id is not None and rep.report_id.value == "NORDCAL-2025-0042-A1"
    assert rep.amends_report_id is not None and rep.amends_report_id.value == "NORDCAL-2025-0042"
    assert rep.amends_report_id.provenance.xpath == (
        "/digitalCalibrationCertificate/administrativeData/coreData/reportAmendedSubstituted/replacedUniqueIdentifier"
    )
    assert rep.dates.issue is not None and rep.dates.issue.value == "2025-03-14"
    assert rep.dates.receipt is not None and rep.dates.receipt.value == "2025-03-03"
    assert rep.lab.address is not None and rep.lab.address.value == "Hafenstrasse 12, 20457 Hamburg, DE"
    assert [(m.name.value if m.name else None, m.standard.value if m.standard else None) for m in rep.methods] == [
        ("Substitution weighing", "OIML R 111-1")
    ]
    # the influence condition (temperature) is not a result; the mass is, with its uncertainty
    assert [(r.quantity.value, r.value.value, r.unit.value if r.unit else None) for r in rep.results] == [
        ("mass", "1.0000021", "\\kilogram")
    ]
    assert rep.results[0].uncertainty is not None and rep.results[0].uncertainty.value == "0.0000016"


def test_dcc_3_1_2_validates_and_maps_every_result_point() -> None:
    rep = _parse((DCC3 / "dcc-3.1.2-thermometer.xml").read_bytes())
    assert rep.schema_check is not None
    assert (rep.schema_check.status, rep.schema_check.version) == ("valid", "3.1.2")
    assert rep.report_id is not None and rep.report_id.value == "THERMO-312-0007"
    assert [(r.quantity.value, r.value.value) for r in rep.results] == [
        ("deviation at 0 degC", "0.012"),
        ("deviation at 100 degC", "-0.031"),
    ]
    assert [i.id.value for i in rep.items if i.id] == ["PT100-55"]


def test_dcc_3_3_0_missing_mandatory_element_raises_schema_violation_with_location() -> None:
    data = (DCC3 / "dcc-3.3.0-mass-amended.xml").read_bytes()
    broken = data.replace(b"<dcc:endPerformanceDate>2025-03-11</dcc:endPerformanceDate>", b"", 1)
    assert broken != data
    with pytest.raises(SchemaViolation) as exc:
        _parse(broken)
    assert exc.value.facts["schema_version"] == "3.3.0"
    assert "coreData" in (exc.value.location or "")


def test_dcc_3_1_2_bad_coverage_factor_raises_schema_violation_naming_the_element() -> None:
    data = (DCC3 / "dcc-3.1.2-thermometer.xml").read_bytes()
    # D-SI kValueType requires a coverage factor >= 1 written as a plain decimal
    broken = data.replace(b"<si:coverageFactor>2</si:coverageFactor>", b"<si:coverageFactor>0.5</si:coverageFactor>", 1)
    assert broken != data
    with pytest.raises(SchemaViolation) as exc:
        _parse(broken)
    assert exc.value.facts["schema_version"] == "3.1.2"
    assert "coverageFactor" in (exc.value.location or "")


def test_dcc_2_4_0_document_relabelled_3_3_0_is_rejected_by_the_3_3_0_schema() -> None:
    data = (PTB / "example.xml").read_bytes().replace(b'schemaVersion="2.4.0"', b'schemaVersion="3.3.0"', 1)
    with pytest.raises(SchemaViolation) as exc:
        _parse(data)
    assert exc.value.facts["schema_version"] == "3.3.0"
    assert exc.value.location
