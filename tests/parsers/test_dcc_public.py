"""Real DCC certificates from public repositories: every result read, every 3.x version validated by its XSD.

Expected counts are hand-counted (``tests/fixtures/reports/dcc-public/expected.json`` says how for each file).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from parsers import parse
from parsers.dcc import VALIDATED_VERSIONS
from parsers.errors import HostileInput, SchemaViolation

PUBLIC = Path(__file__).resolve().parent.parent / "fixtures" / "reports" / "dcc-public"
EXPECTED: dict[str, dict[str, object]] = {
    k: v for k, v in json.loads((PUBLIC / "expected.json").read_text()).items() if not k.startswith("_")
}


def _read(rel: str) -> bytes:
    return (PUBLIC / rel).resolve().read_bytes()


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_every_result_of_every_public_dcc_is_read(rel: str) -> None:
    """Regression (issue 11): 12 of 13 real PTB DCC 3.x certificates gave 0 results."""
    want = EXPECTED[rel]
    if want["schema"] == "schema_violation":
        with pytest.raises(SchemaViolation):
            parse(_read(rel), filename=Path(rel).name)
        return
    report = parse(_read(rel), filename=Path(rel).name).report
    assert report is not None and report.schema_check is not None
    assert (report.schema_check.status, report.schema_check.version) == ("valid", want["schema"])
    assert len(report.results) == want["results"]


def test_results_read_ratio_over_every_dcc_is_one() -> None:
    present = read = 0
    for rel, want in EXPECTED.items():
        if want["schema"] == "schema_violation":
            continue
        present += int(want["results"])  # type: ignore[call-overload]
        report = parse(_read(rel), filename=Path(rel).name).report
        assert report is not None
        read += len(report.results)
    assert present > 300 and read == present


def test_xmllist_values_carry_units_uncertainty_and_coverage_per_point() -> None:
    report = parse(_read("pydcc/dcc_gp_temperature_typical_v12.xml")).report
    assert report is not None
    errors = [r for r in report.results if r.value.provenance.xpath and "/quantity[3]/" in r.value.provenance.xpath]
    assert [r.value.value for r in errors] == ["0.072", "0.089", "0.107", "-0.009", "-0.084"]
    # one uncertainty / coverage factor / probability for the whole list applies to every point
    assert {(r.unit.value, r.uncertainty.value, r.coverage_factor.value, r.coverage_probability.value)  # type: ignore[union-attr]
            for r in errors} == {("\\kelvin", "0.061", "2", "0.95")}  # fmt: skip
    assert errors[3].value.provenance.xpath.endswith("/realListXMLList/valueXMLList#4")  # type: ignore[union-attr]
    # si:hybrid: the first representation (kelvin), the degree Celsius twin is not a second result
    ref = report.results[0]
    assert (ref.value.value, ref.unit.value if ref.unit else None) == ("306.248", "\\kelvin")


def test_every_d_si_result_form_is_read_with_its_uncertainty() -> None:
    path = PUBLIC.parent / "dcc-forms" / "dcc-3.3.0-every-dsi-result-form.xml"
    report = parse(path.read_bytes()).report
    assert report is not None and report.schema_check is not None and report.schema_check.status == "valid"
    rows = [
        (r.quantity.value, r.value.value, r.unit.value if r.unit else None,
         r.uncertainty.value if r.uncertainty else None, r.coverage_factor.value if r.coverage_factor else None,
         r.coverage_probability.value if r.coverage_probability else None)
        for r in report.results
    ]  # fmt: skip
    assert rows == [
        ("Mass", "1.0000012", "\\kilogram", "0.0000008", "2", "0.95"),  # D-SI 2.2 expandedMU
        ("Length", "25.0004", "\\milli\\metre", "0.0002", None, "0.99"),  # coverage interval (standard unc.)
        ("Standard gravity", "9.80665", "\\metre\\second\\tothe{-2}", "0.00001", None, None),  # si:constant
        ("Impedance", "50.02-0.31i", "\\ohm", None, None, None),  # si:complex, cartesian
        ("Reflection coefficient", "0.012∠1.571", "\\one; \\radian", None, None, None),  # si:complex, polar
        ("Scattering parameter S21", "0.99-0.01i", "\\one", None, None, None),  # si:complexListXMLList
        ("Scattering parameter S21", "0.98+0.02i", "\\one", None, None, None),
        ("Scattering parameter S21", "0.95-0.05i", "\\one", None, None, None),
        ("Pressure", "100.1", "\\pascal", "0.5", "2", "0.95"),  # si:list > si:list > si:realList, list default unc
        ("Pressure", "200.3", "\\pascal", "0.7", "2", "0.95"),  # member's own uncertainty wins
        ("Pressure", "300.2", "\\pascal", "0.9", "2", "0.95"),  # si:list > realListXMLList with expandedMUXMLList
        ("Pressure", "400.4", "\\pascal", "1.1", "2", "0.95"),
        ("Temperature", "293.15", "\\kelvin", None, None, None),  # dcc:list > dcc:list > si:hybrid (first)
    ]


def _relabel(data: bytes, version: str) -> bytes:
    return re.sub(rb'schemaVersion="[^"]+"', f'schemaVersion="{version}"'.encode(), data, count=1)


@pytest.mark.parametrize(("version", "rel"), [
    ("3.0.0", "ptb-xsd-dcc/v3.0.0-example.xml"), ("3.1.0", "ptb-xsd-dcc/v3.1.0-dcc-vacuumlab-SRG.xml"),
    ("3.1.1", "pydcc/dcc_gp_temperature_typical_v12.xml"),
    ("3.1.2", "pydcc/dcc_gp_humidity_v1.0.xml"), ("3.2.0", "pydcc/dcc_gp_temperature_typical_v12_v3.2.0_signed.xml"),
    ("3.2.1", "pydcc/dcc_gp_temperature_typical_v12_v3.2.0_signed.xml"), ("3.3.0", "lutaml-dcc/valid.xml"),
])  # fmt: skip
def test_each_3x_version_is_validated_against_its_own_xsd(version: str, rel: str) -> None:
    """Regression (issue 11): 3.1.1 and 3.2.0 certificates were parsed "not_validated"."""
    assert version in VALIDATED_VERSIONS
    data = _relabel(_read(rel), version)
    report = parse(data).report
    assert report is not None and report.schema_check is not None
    assert (report.schema_check.status, report.schema_check.version) == ("valid", version)
    broken = data.replace(b"<dcc:uniqueIdentifier>", b"<dcc:uniqueIdentifierX>", 1).replace(
        b"</dcc:uniqueIdentifier>", b"</dcc:uniqueIdentifierX>", 1
    )
    with pytest.raises(SchemaViolation) as e:
        parse(broken)
    assert e.value.facts["schema_version"] == version
    assert e.value.location == "/dcc:digitalCalibrationCertificate/dcc:administrativeData/dcc:coreData"


def test_enveloped_signature_of_a_pre_3_2_certificate_does_not_break_validation() -> None:
    """DCC < 3.2.0 XSDs have no ds:Signature; a signed 3.1.1 certificate is validated without its signature."""
    report = parse(_read("pydcc/dcc_gp_temperature_typical_v12_signed.xml")).report
    assert report is not None and report.schema_check is not None and report.schema_check.status == "valid"
    stray = _read("pydcc/dcc_gp_temperature_typical_v12.xml").replace(
        b"</dcc:administrativeData>", b"<dcc:unknown/></dcc:administrativeData>", 1
    )
    with pytest.raises(SchemaViolation):
        parse(stray)


HOSTILE = PUBLIC.parent / "hostile"


def test_dcc_with_external_doctype_and_undeclared_entity_is_refused_as_hostile() -> None:
    """Regression (issue 11): an unhandled XMLSchemaValidateError (CLI traceback, HTTP 500)."""
    with pytest.raises(HostileInput, match="external subset"):
        parse((HOSTILE / "dcc_external_doctype_undeclared_entity.xml").read_bytes())


def test_qif_goes_through_the_same_hardened_reader() -> None:
    data = (HOSTILE / "dcc_external_doctype_undeclared_entity.xml").read_bytes()
    qif = data.replace(b"dcc:digitalCalibrationCertificate", b"QIFDocument").replace(
        b'xmlns:dcc="https://ptb.de/dcc"', b'xmlns="http://qifstandards.org/xsd/qif3"'
    )
    with pytest.raises(HostileInput, match="external subset"):
        parse(qif, filename="x.qif")


def test_password_protected_pdf_says_so() -> None:
    """Regression (issue 11): a password-protected PDF gave an empty error message."""
    from parsers.errors import PasswordProtected

    with pytest.raises(PasswordProtected, match="this PDF is password-protected"):
        parse((HOSTILE / "password_protected_user_password.pdf").read_bytes())


@pytest.mark.parametrize(
    ("fixture", "message"),
    [("dcc_external_doctype_undeclared_entity.xml", "external subset"),
     ("password_protected_user_password.pdf", "this PDF is password-protected")],
)  # fmt: skip
def test_cli_reports_bad_input_in_one_line_without_a_traceback(fixture: str, message: str) -> None:
    import subprocess
    import sys

    qcn = Path(sys.executable).parent / "qcn"
    out = subprocess.run([str(qcn), "parse", str(HOSTILE / fixture)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert message in out.stderr and "Traceback" not in out.stderr and out.stdout == ""
