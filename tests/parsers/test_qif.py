"""QIF 3 results on the public sample files: values, names, units, specs, XPath provenance."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from parsers import parse, source_file
from parsers.errors import EmptyInput, InvalidValue, SchemaViolation
from parsers.qif import parse_qif

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inspection"


def load(rel: str):
    data = (FIXTURES / rel).read_bytes()
    return parse_qif(data, source=source_file(data, format="qif"))


def test_results_sample_values_status_and_units() -> None:
    batch = load("qif/QIF_Results_Sample.QIF")
    assert (batch.part_number, batch.part_revision) == ("QM_X_123456", "1.02")
    assert len(batch.measurements) == 13
    assert {m.sample_id for m in batch.measurements} == {"89"}  # no serial number: MeasurementResults id
    by_id = {m.extra["qif_id"]: m for m in batch.measurements}
    diameter = by_id["51"]
    assert (diameter.characteristic, diameter.value, diameter.unit, diameter.extra["status"]) == (
        "6",
        9.499476,
        "mm",
        "FAIL",
    )
    # repeated measurement of one characteristic on one sample keeps both, numbered
    assert (by_id["17"].characteristic, by_id["18"].characteristic) == ("5", "5#2")
    assert by_id["88"].characteristic == "DIST1"
    assert by_id["84"].characteristic == "Diameter-83"  # item named -NONE-


def test_specs_relative_and_absolute_tolerances() -> None:
    specs = load("qif/QIF_Results_Sample.QIF").characteristics
    # definition 27: relative +/-0.2 around target 774.2698974609...
    assert specs["2"].nominal == pytest.approx(774.269897460938)
    assert (specs["2"].lower_limit, specs["2"].upper_limit) == pytest.approx((774.0698974609, 774.4698974609))
    # definition 31: DefinedAsLimit=true, absolute
    assert (specs["3"].lower_limit, specs["3"].upper_limit) == pytest.approx((944.802746582031, 945.202746582031))
    assert specs["5"].upper_limit == 4.0  # ToleranceValue of a profile tolerance


def test_xpath_provenance_points_at_the_value() -> None:
    data = (FIXTURES / "qif/QIF_Results_Sample.QIF").read_bytes()
    batch = parse_qif(data, source=source_file(data, format="qif"))
    root = etree.fromstring(data)
    for m in batch.measurements[:5]:
        assert m.provenance.kind == "xml" and m.provenance.xpath is not None
        # turn the local-name path into a namespaced one and read the value back
        ns = "{http://qifstandards.org/xsd/qif3}"
        steps = m.provenance.xpath.strip("/").split("/")[1:]
        el = root
        for step in steps:
            name, _, idx = step.partition("[")
            el = el.findall(ns + name)[int(idx.rstrip("]")) - 1 if idx else 0]
        assert float(el.text) == m.value


def test_six_samples_use_serial_numbers() -> None:
    raw = (
        Path(__file__).resolve().parents[1] / "fixtures" / "inspection" / "qif" / "SheetMetal_QIF_Results_6_samples.QIF"
    ).read_bytes()
    batch = parse_qif(raw, source=source_file(raw, format="qif"))
    samples = sorted({m.sample_id for m in batch.measurements})
    assert samples == [f"SN580280{i}" for i in range(1, 7)]
    assert len(batch.measurements) == 228
    assert len(batch.records()) == 228


def test_results_without_values_is_empty() -> None:
    with pytest.raises(EmptyInput, match="no characteristic measurement with a Value"):
        parse((FIXTURES / "qif/mitutoyo_results_serialized_pass_fail_sample.QIF").read_bytes())


def test_non_numeric_value_names_xpath() -> None:
    data = (
        b'<QIFDocument xmlns="http://qifstandards.org/xsd/qif3"><Results><MeasurementResultsSet>'
        b'<MeasurementResults id="1"><MeasuredCharacteristics><CharacteristicMeasurements>'
        b'<DiameterCharacteristicMeasurement id="2"><Value>abc</Value></DiameterCharacteristicMeasurement>'
        b"</CharacteristicMeasurements></MeasuredCharacteristics></MeasurementResults>"
        b"</MeasurementResultsSet></Results></QIFDocument>"
    )
    with pytest.raises(InvalidValue, match="'abc' is not a number") as e:
        parse(data)
    assert e.value.location is not None and e.value.location.endswith("DiameterCharacteristicMeasurement/Value")


def test_qif3_documents_are_validated_against_the_shipped_schema() -> None:
    data = (FIXTURES / "qif/QIF_Results_Sample.QIF").read_bytes()
    batch = parse_qif(data, source=source_file(data, format="qif"))
    assert not any("not schema-validated" in w for w in batch.warnings)
    # an element the QIF 3.0 schema does not allow where it stands
    bad = data.replace(b"<Header>", b"<Header><Surprise>1</Surprise>", 1)
    with pytest.raises(SchemaViolation, match=r"QIF 3\.0 schema") as e:
        parse(bad)
    assert e.value.facts["line"] is not None and "Surprise" in e.value.message


def test_qif_ids_must_be_unique() -> None:
    data = (FIXTURES / "qif/QIF_Results_Sample.QIF").read_bytes()
    first = data.index(b' id="') + 5
    ident = data[first : data.index(b'"', first)]
    # give a later element the first element's id (still valid XSD structure, but two elements share it)
    second = data.index(b' id="', first) + 5
    end = data.index(b'"', second)
    dup = data[:second] + ident + data[end:]
    with pytest.raises(SchemaViolation, match="ids must be unique"):
        parse(dup)


def test_qif_without_a_declared_version_says_it_was_not_validated() -> None:
    data = (FIXTURES / "qif/QIF_Results_Sample.QIF").read_bytes().replace(b'versionQIF="3.0.0"', b"", 1)
    batch = parse_qif(data, source=source_file(data, format="qif"))
    assert any("no versionQIF: not schema-validated" in w for w in batch.warnings)
