"""The template document: strict validation naming the field, JSON Schema, canonical hash, chain terms."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import rfc8785

from app.quality import (
    SCHEMA_PATH,
    QualityError,
    Template,
    TemplateError,
    export_json_schema,
    library_template,
    library_templates,
    load_template,
)

LIBRARY = Path("app/quality/library")
EXPECTED_LIBRARY = {"battery_electrode_coating", "machined_housing", "sic_mosfet_electrical"}


def _doc(name: str = "battery_electrode_coating") -> dict[str, Any]:
    return json.loads((LIBRARY / f"{name}.json").read_text())


def _problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(TemplateError) as info:
        load_template(doc)
    assert isinstance(info.value, QualityError) and isinstance(info.value, ValueError)
    return [(p.field, p.message) for p in info.value.problems]


# -- library + schema ---------------------------------------------------------------------------------


def test_library_templates_load_and_validate_against_the_committed_schema() -> None:
    templates = library_templates()
    assert set(templates) >= EXPECTED_LIBRARY
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for name, template in templates.items():
        raw = _doc(name)
        assert list(validator.iter_errors(raw)) == [], name
        assert list(validator.iter_errors(template.document())) == [], name
        assert template.schema_version == "qcn-template/1"


def test_library_contents_are_what_the_demo_relies_on() -> None:
    coating = library_template("battery_electrode_coating")
    assert coating.part.numbers == ["EL-CATH-7"]
    units = {c.id: c.unit for c in coating.characteristics}
    assert units == {"coating_thickness": "um", "areal_mass": "mg/cm2"}
    assert {p.id: p.unit for p in coating.process_parameters} == {"bake_temperature": "degC", "roll_pressure": "kN/cm"}
    machined = library_template("machined_housing")
    assert {c.id for c in machined.characteristics} >= {"bore_diameter", "length", "flatness"}
    semi = library_template("sic_mosfet_electrical")
    assert {c.id for c in semi.characteristics} >= {"breakdown_voltage", "leakage_current", "threshold_voltage"}
    with pytest.raises(TemplateError, match="no library template 'nope'"):
        library_template("nope")


def test_committed_json_schema_matches_the_model() -> None:
    committed = json.loads(SCHEMA_PATH.read_text())
    assert committed == export_json_schema(), (
        "regenerate: .venv/bin/python -c 'from app.quality import write_json_schema; write_json_schema()'"
    )
    assert committed["$id"] == "urn:qcn:schema:template:1"
    assert committed["additionalProperties"] is False


def test_json_schema_rejects_what_the_model_rejects() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    doc = _doc()
    doc["surprise"] = True
    assert any("surprise" in e.message for e in validator.iter_errors(doc))
    doc = _doc()
    doc["characteristics"][0]["criticality"] = "severe"
    assert list(validator.iter_errors(doc))


# -- canonical hash and chain terms ----------------------------------------------------------------------


def test_canonical_hash_is_sha256_of_rfc8785_document() -> None:
    template = library_template("battery_electrode_coating")
    expected = hashlib.sha256(rfc8785.dumps(template.document())).digest()
    assert template.canonical_hash() == expected
    assert len(expected) == 32
    # the published document round-trips to the same hash
    assert load_template(json.dumps(template.document())).canonical_hash() == expected


def test_canonical_hash_ignores_key_order_and_amount_spelling_but_not_terms() -> None:
    doc = _doc()
    base = load_template(doc).canonical_hash()
    reordered = dict(reversed(list(copy.deepcopy(doc).items())))
    assert load_template(reordered).canonical_hash() == base
    as_int = copy.deepcopy(doc)
    as_int["lab_fee"] = int(as_int["lab_fee"])  # JSON integer instead of decimal string: same amount
    assert load_template(as_int).canonical_hash() == base
    changed = copy.deepcopy(doc)
    changed["characteristics"][0]["usl"] = 88.5
    assert load_template(changed).canonical_hash() != base
    bumped = copy.deepcopy(doc)
    bumped["version"] = 2
    assert load_template(bumped).canonical_hash() != base


def test_token_amounts_are_exact_beyond_2_pow_53() -> None:
    template = library_template("battery_electrode_coating")
    assert template.deposit.base_amount == 50_000 * 10**18
    assert template.document()["deposit"]["base_amount"] == "50000000000000000000000"


def test_chain_terms_are_the_documents_numbers() -> None:
    doc = _doc()
    template = load_template(doc)
    terms = template.chain_terms()
    assert terms["documentHash"] == "0x" + template.canonical_hash().hex()
    assert terms["templateKey"] == "0x" + hashlib.sha256(b"tpl.cathode-coating").hexdigest()
    assert terms["version"] == doc["version"]
    assert terms["depositBase"] == int(doc["deposit"]["base_amount"])
    assert terms["tiers"] == [[t["min_score"], t["ratio_bps"]] for t in doc["deposit"]["tiers"]]
    assert (terms["minRatioBps"], terms["maxRatioBps"], terms["maxStepBps"]) == (
        doc["deposit"]["min_ratio_bps"],
        doc["deposit"]["max_ratio_bps"],
        doc["deposit"]["max_step_bps"],
    )
    assert terms["initialRatioBps"] == doc["deposit"]["initial_ratio_bps"]
    assert terms["topUpGraceSeconds"] == doc["deposit"]["top_up_grace_seconds"]
    per_batch = doc["penalties"]["per_batch"]
    assert (terms["penaltyCritical"], terms["penaltyMajor"], terms["penaltyMinor"]) == tuple(
        int(per_batch[k]) for k in ("critical", "major", "minor")
    )
    assert terms["penaltyPerPpm"] == int(doc["penalties"]["per_ppm_above_target"])
    assert terms["targetPpm"] == doc["penalties"]["target_ppm"]
    assert terms["supplierResponseSeconds"] == doc["deadlines"]["supplier_response_seconds"]
    assert terms["labVerdictSeconds"] == doc["deadlines"]["lab_verdict_seconds"]
    assert terms["disputeWindowSeconds"] == doc["deadlines"]["dispute_window_seconds"]
    assert terms["labFee"] == int(doc["lab_fee"])
    json.dumps(terms)  # plain data


def test_ratio_for_picks_the_highest_tier_reached() -> None:
    deposit = library_template("battery_electrode_coating").deposit
    assert [deposit.ratio_for(s) for s in (0, 59, 60, 79, 80, 96, 97, 100)] == [
        15000, 15000, 12500, 12500, 10000, 7500, 5000, 5000,
    ]  # fmt: skip


# -- validation errors name the field ---------------------------------------------------------------------


def test_lsl_above_usl_names_the_characteristic() -> None:
    doc = _doc()
    doc["characteristics"][1]["lsl"] = 23.0
    [(field, message)] = _problems(doc)
    assert field == "characteristics[1]"
    assert "'areal_mass'" in message and "lsl 23 must be below usl 22.2" in message


def test_nominal_outside_limits_and_missing_limits() -> None:
    doc = _doc()
    doc["characteristics"][0]["nominal"] = 90.0
    del doc["characteristics"][1]["lsl"], doc["characteristics"][1]["usl"]
    problems = dict(_problems(doc))
    assert "nominal 90 is above usl 88" in problems["characteristics[0]"]
    assert "needs at least one spec limit" in problems["characteristics[1]"]


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda d: d["deposit"]["tiers"].__setitem__(2, {"min_score": 50, "ratio_bps": 10000}), "deposit",
         "tiers not increasing: tiers[2].min_score 50 <= tiers[1].min_score 60"),
        (lambda d: d["deposit"]["tiers"][3].__setitem__("ratio_bps", 14000), "deposit",
         "tiers[3].ratio_bps 14000 is above tiers[2].ratio_bps 10000"),
        (lambda d: d["deposit"]["tiers"][0].__setitem__("min_score", 5), "deposit", "tiers[0].min_score must be 0"),
        (lambda d: d["deposit"].__setitem__("min_ratio_bps", 6000), "deposit",
         "tiers[4].ratio_bps 5000 is outside [6000, 15000]"),
        (lambda d: d["deposit"].__setitem__("max_ratio_bps", 4000), "deposit",
         "min_ratio_bps 5000 is above max_ratio_bps 4000"),
        (lambda d: d["deposit"].__setitem__("initial_ratio_bps", 20000), "deposit",
         "initial_ratio_bps 20000 is outside [5000, 15000]"),
        (lambda d: d["deposit"].__setitem__("tiers", []), "deposit.tiers", "at least 1 item"),
        (lambda d: d["sampling"]["aql"].__setitem__("major", 0.7), "sampling.aql",
         "AQL 0.7 for class 'major' is not a preferred value"),
        (lambda d: d["sampling"]["aql"].__setitem__("major", 25.0), "sampling.aql",
         "AQL 25 for class 'major' is not a preferred value"),
        (lambda d: d["sampling"]["aql"].pop("critical"), "$",
         "sampling.aql has no AQL for class critical (used by areal_mass)"),
        (lambda d: d["sampling"].__setitem__("inspection_level", "IV"), "sampling.inspection_level", "S-1"),
        (lambda d: d["sampling"].__setitem__("method", "full"), "sampling", "takes no inspection_level or aql"),
        (lambda d: d["penalties"]["per_batch"].pop("minor"), "penalties.per_batch", "missing minor"),
        (lambda d: d["penalties"].__setitem__("per_ppm_above_target", "-1"), "penalties.per_ppm_above_target",
         "non-negative decimal integer string"),
        (lambda d: d["data_interface"].__setitem__("required_fields", ["sample", "value"]), "data_interface",
         "missing characteristic, unit"),
        (lambda d: d["data_interface"].__setitem__("measurement_formats", ["csv", "docx"]),
         "data_interface.measurement_formats[1]", "'csv', 'json', 'xlsx', 'qif' or 'aqdef'"),
        (lambda d: d["data_interface"].update(report_formats=[], report_required=True), "data_interface",
         "report_required is true but no report_formats"),
        (lambda d: d["characteristics"].append(dict(d["characteristics"][0])), "$",
         "ids used twice: coating_thickness"),
        (lambda d: d.__setitem__("version", "1"), "version", "valid integer"),
        (lambda d: d.__setitem__("schema_version", "qcn-template/2"), "schema_version", "qcn-template/1"),
        (lambda d: d.__setitem__("lab_fee", 1.5), "lab_fee", "must be an integer"),
        (lambda d: d["deadlines"].__setitem__("dispute_window_seconds", 0), "deadlines.dispute_window_seconds",
         "greater than 0"),
        (lambda d: d["part"].__setitem__("numbers", ["A1", "A1"]), "part.numbers", "listed twice: A1"),
        (lambda d: d["characteristics"][0].__setitem__("tolerance", 1), "characteristics[0].tolerance",
         "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_invalid_templates_name_the_field(
    mutate: Callable[[dict[str, Any]], object], field: str, fragment: str
) -> None:
    doc = _doc()
    mutate(doc)
    problems = _problems(doc)
    assert any(f == field and fragment in m for f, m in problems), problems


def test_error_message_lists_every_problem() -> None:
    doc = _doc()
    doc["lab_fee"] = "x"
    doc["version"] = 0
    with pytest.raises(TemplateError) as info:
        load_template(doc)
    text = str(info.value)
    assert text.startswith("invalid quality template: ")
    assert "lab_fee:" in text and "version:" in text


def test_full_inspection_template() -> None:
    doc = _doc()
    doc["sampling"] = {"method": "full", "full_accept": {"major": 1}}
    template = load_template(doc)
    assert template.sampling.method == "full" and template.sampling.aql is None
    doc["sampling"] = {"method": "iso2859-1", "aql": {"critical": 0.4, "major": 1.5}}
    assert any("needs inspection_level" in m for _, m in _problems(doc))


def test_load_from_path_bytes_and_text() -> None:
    path = LIBRARY / "machined_housing.json"
    by_path = load_template(path)
    assert load_template(path.read_bytes()) == by_path
    assert load_template(path.read_text()) == by_path
    with pytest.raises(TemplateError, match="cannot read template file"):
        load_template(LIBRARY / "missing.json")
    with pytest.raises(TemplateError, match="Invalid JSON"):
        load_template("{not json")


def test_template_is_immutable() -> None:
    template = library_template("machined_housing")
    with pytest.raises(ValueError, match="frozen"):
        template.version = 2
    assert isinstance(template, Template)
