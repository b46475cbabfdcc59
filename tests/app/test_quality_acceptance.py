"""Per-record and per-batch verdicts against a template (ISO 2859-1 counts, Cpk, units, required fields)."""

from __future__ import annotations

import copy
import json
import random
import statistics
from pathlib import Path
from typing import Any

import pytest

from app.quality import (
    AssessmentInputError,
    BatchAssessment,
    QualityError,
    Template,
    assess_batch,
    assess_inspection,
    cpk,
    library_template,
    load_template,
    plans_for_lot,
    units_equivalent,
)
from parsers import parse_inspection

SAMPLE_FILE = Path("scripts/sample_data/coating_lot_A.csv")
COATING = "battery_electrode_coating"


def _coating(**changes: Any) -> Template:
    doc = json.loads(Path(f"app/quality/library/{COATING}.json").read_text())
    for path, value in changes.items():
        target = doc
        *parents, leaf = path.split("__")
        for p in parents:
            target = target[p]
        target[leaf] = value
    return load_template(doc)


def _batch(n: int, *, seed: int = 7, thickness: float = 85.0, t_sd: float = 0.5) -> list[dict[str, Any]]:
    """n samples, each with coating_thickness and areal_mass well inside the coating template's limits."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        for name, value, unit in (
            ("coating_thickness", round(rng.gauss(thickness, t_sd), 3), "um"),
            ("areal_mass", round(rng.gauss(21.5, 0.1), 3), "mg/cm2"),
        ):
            out.append(
                {
                    "sample": f"S{i:03d}",
                    "characteristic": name,
                    "value": value,
                    "unit": unit,
                    "uncertainty": 0.1,
                    "measured_at": "2026-11-27T08:00:00Z",
                }
            )
    return out


def _set(batch: list[dict[str, Any]], sample: str, characteristic: str, **fields: Any) -> None:
    for record in batch:
        if record["sample"] == sample and record["characteristic"] == characteristic:
            record.update(fields)
            return
    raise KeyError((sample, characteristic))


def _codes(result: BatchAssessment, severity: str | None = None) -> list[str]:
    return [f.code for f in result.findings if severity is None or f.severity == severity]


# -- the demo file -----------------------------------------------------------------------------------------


def test_demo_sample_file_is_accepted_by_the_coating_template() -> None:
    batch = parse_inspection(SAMPLE_FILE.read_bytes(), filename=SAMPLE_FILE.name)
    template = library_template(COATING)
    result = assess_inspection(template, batch, lot_size=2000)  # the demo declares lot 2000 (S-4 -> G, n=32)
    assert result.verdict == "accept", result.findings
    assert _codes(result, "error") == []
    assert result.counts() == {"pass": 64}
    assert [r.index for r in result.records] == list(range(64))
    by_class = {c.criticality: c for c in result.classes}
    assert (by_class["critical"].plan.sample_size, by_class["critical"].plan.accept) == (32, 0)
    assert (by_class["major"].plan.sample_size, by_class["major"].plan.accept) == (32, 1)
    stats = {c.id: c for c in result.characteristics}
    values = [m.value for m in batch.measurements if m.characteristic == "coating_thickness"]
    assert stats["coating_thickness"].n == stats["coating_thickness"].samples == 32
    assert stats["coating_thickness"].mean == pytest.approx(statistics.fmean(values))
    assert stats["coating_thickness"].std == pytest.approx(statistics.stdev(values))
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    assert stats["coating_thickness"].cpk == pytest.approx(min(88.0 - mean, mean - 82.0) / (3 * sd))
    assert stats["areal_mass"].cpk is not None and stats["areal_mass"].cpk >= 1.67
    assert result.template_hash == "0x" + template.canonical_hash().hex()


def test_demo_file_at_a_larger_lot_has_too_few_samples() -> None:
    batch = parse_inspection(SAMPLE_FILE.read_bytes(), filename=SAMPLE_FILE.name)
    result = assess_inspection(library_template(COATING), batch, lot_size=20_000)  # S-4 -> H, n=50
    assert result.verdict == "reject"
    plans = {c.criticality: c.plan for c in result.classes}
    assert (plans["major"].code, plans["major"].sample_size) == ("H", 50)  # AQL 1.5: Ac 2 Re 3
    assert (plans["critical"].code, plans["critical"].sample_size) == ("G", 32)  # AQL 0.40 on H: up arrow to G
    short = [f for f in result.findings if f.code == "insufficient_samples"]
    assert [f.characteristic for f in short] == ["coating_thickness"]
    assert "32 sample(s), the sampling plan requires 50 for lot size 20000" in short[0].message


def test_lot_size_comes_from_the_batch_or_must_be_declared() -> None:
    batch = parse_inspection(SAMPLE_FILE.read_bytes(), filename=SAMPLE_FILE.name)
    with pytest.raises(AssessmentInputError, match="lot_size: unknown"):
        assess_inspection(library_template(COATING), batch)
    with_lot = batch.model_copy(update={"lot_size": 2000})
    assert assess_inspection(library_template(COATING), with_lot).verdict == "accept"


# -- per-record verdicts --------------------------------------------------------------------------------------


def test_record_verdicts_name_the_problem() -> None:
    batch = _batch(32)
    _set(batch, "S001", "coating_thickness", value=81.5)
    _set(batch, "S002", "coating_thickness", value=88.2)
    _set(batch, "S003", "coating_thickness", unit="mm", value=0.085)
    _set(batch, "S004", "areal_mass", uncertainty=None)
    _set(batch, "S005", "areal_mass", value="n/a")
    batch.append({**batch[0], "characteristic": "porosity", "unit": "%", "value": 31.0})
    result = assess_batch(_coating(), batch, lot_size=2000)
    by = {(r.sample, r.characteristic): r for r in result.records}
    low = by[("S001", "coating_thickness")]
    assert (low.verdict, low.value) == ("fail_low", 81.5)
    assert "below LSL 82" in low.message
    assert by[("S002", "coating_thickness")].verdict == "fail_high"
    assert "above USL 88" in by[("S002", "coating_thickness")].message
    wrong = by[("S003", "coating_thickness")]
    assert wrong.verdict == "wrong_unit" and "'mm'" in wrong.message and "'um'" in wrong.message
    missing = by[("S004", "areal_mass")]
    assert missing.verdict == "missing_required_field" and "uncertainty" in missing.message
    assert by[("S005", "areal_mass")].verdict == "missing_required_field"
    assert "'n/a' is not a finite number" in by[("S005", "areal_mass")].message
    assert by[("S001", "porosity")].verdict == "unknown_characteristic"
    assert result.counts() == {
        "pass": 59,
        "fail_low": 1,
        "fail_high": 1,
        "wrong_unit": 1,
        "missing_required_field": 2,
        "unknown_characteristic": 1,
    }
    codes = _codes(result)
    assert {"wrong_unit", "missing_required_field", "unknown_characteristic", "aql_reject"} <= set(codes)
    assert result.verdict == "reject"


@pytest.mark.parametrize(("given", "expected"), [("µm", "um"), ("μm", "um"), (" um ", "um"), ("micron", "um"),
                                                 ("mg/cm²", "mg/cm2"), ("mg / cm^2", "mg/cm2"), ("°C", "degC"),
                                                 ("℃", "degC"), ("mΩ", "mOhm")])  # fmt: skip
def test_equivalent_unit_spellings_are_accepted(given: str, expected: str) -> None:
    assert units_equivalent(given, expected)


@pytest.mark.parametrize(("given", "expected"), [("mm", "um"), ("nm", "um"), ("MV", "mV"), ("g/m2", "mg/cm2")])
def test_other_units_are_never_converted(given: str, expected: str) -> None:
    assert not units_equivalent(given, expected)


def test_micro_sign_spelling_passes_through_assessment() -> None:
    batch = _batch(32)
    for record in batch:
        if record["unit"] == "um":
            record["unit"] = "µm"
    result = assess_batch(_coating(), batch, lot_size=2000)
    assert result.verdict == "accept" and result.counts() == {"pass": 64}
    assert {r.unit for r in result.records} == {"µm", "mg/cm2"}  # reported as given, never rewritten


# -- batch verdict by the AQL numbers ------------------------------------------------------------------------


def test_one_critical_nonconformity_rejects_at_ac_0() -> None:
    batch = _batch(32)
    _set(batch, "S010", "areal_mass", value=22.4)
    result = assess_batch(_coating(), batch, lot_size=2000)
    critical = next(c for c in result.classes if c.criticality == "critical")
    assert (critical.nonconforming_items, critical.plan.reject, critical.verdict) == (1, 1, "reject")
    assert result.verdict == "reject"
    [finding] = [f for f in result.findings if f.code == "aql_reject"]
    assert finding.criticality == "critical" and "reaches Re 1" in finding.message


def test_major_class_accepts_one_and_rejects_two_nonconforming_items() -> None:
    one = _batch(32)
    _set(one, "S003", "coating_thickness", value=88.3)
    result = assess_batch(_coating(), one, lot_size=2000)
    major = next(c for c in result.classes if c.criticality == "major")
    assert (major.nonconforming_items, major.plan.accept, major.verdict) == (1, 1, "accept")
    assert result.verdict == "accept"
    assert "out_of_spec" in _codes(result, "warning")

    two = _batch(32)
    _set(two, "S003", "coating_thickness", value=88.3)
    _set(two, "S004", "coating_thickness", value=81.0)
    result = assess_batch(_coating(), two, lot_size=2000)
    major = next(c for c in result.classes if c.criticality == "major")
    assert (major.nonconforming_items, major.verdict) == (2, "reject")
    assert result.verdict == "reject"


def test_nonconforming_items_count_samples_not_results() -> None:
    batch = _batch(32)
    _set(batch, "S003", "coating_thickness", value=88.3)
    batch.append({**next(r for r in batch if r["sample"] == "S003" and r["characteristic"] == "coating_thickness")})
    result = assess_batch(_coating(), batch, lot_size=2000)
    major = next(c for c in result.classes if c.criticality == "major")
    assert major.nonconforming_items == 1 and major.verdict == "accept"
    stats = next(c for c in result.characteristics if c.id == "coating_thickness")
    assert (stats.n, stats.samples, stats.nonconforming) == (33, 32, 2)
    assert "repeated_measurement" in _codes(result, "warning")


def test_all_results_in_spec_rejects_any_failure() -> None:
    batch = _batch(32)
    _set(batch, "S003", "coating_thickness", value=88.3)
    result = assess_batch(_coating(acceptance__all_results_in_spec=True), batch, lot_size=2000)
    assert result.verdict == "reject"
    assert "out_of_spec" in _codes(result, "error") and "aql_reject" not in _codes(result)


def test_larger_lot_needs_the_larger_plan() -> None:
    template = _coating(sampling__inspection_level="II")
    plans = plans_for_lot(template, 1200)  # II -> J, n=80; critical AQL 0.40 on J is a down arrow -> K
    assert plans["major"].sample_size == 80 and (plans["major"].accept, plans["major"].reject) == (3, 4)
    assert plans["critical"].code == "K" and plans["critical"].sample_size == 125
    result = assess_batch(template, _batch(80), lot_size=1200)
    short = [f for f in result.findings if f.code == "insufficient_samples"]
    assert [f.characteristic for f in short] == ["areal_mass"]  # critical needs 125, major has its 80
    assert result.verdict == "reject"


def test_full_inspection_needs_every_item_and_uses_full_accept() -> None:
    template = _coating(sampling={"method": "full", "full_accept": {"major": 1}})
    batch = _batch(20)
    _set(batch, "S001", "coating_thickness", value=90.0)
    result = assess_batch(template, batch, lot_size=20)
    assert {c.criticality: (c.plan.sample_size, c.plan.accept) for c in result.classes} == {
        "critical": (20, 0),
        "major": (20, 1),
    }
    assert result.verdict == "accept", result.findings
    assert "cpk_not_evaluated" in _codes(result, "info")  # 20 < min_samples_for_cpk 25
    short = assess_batch(template, _batch(19), lot_size=20)
    assert "insufficient_samples" in _codes(short, "error")


def test_more_samples_than_the_lot_is_an_error() -> None:
    result = assess_batch(_coating(sampling={"method": "full"}), _batch(12), lot_size=10)
    assert "samples_exceed_lot" in _codes(result, "error") and result.verdict == "reject"


# -- Cpk ----------------------------------------------------------------------------------------------------


def test_cpk_below_the_class_minimum_rejects() -> None:
    batch = _batch(32, t_sd=0.9)  # all inside 82..88 but too spread for Cpk 1.33
    values = [r["value"] for r in batch if r["characteristic"] == "coating_thickness"]
    assert min(values) >= 82 and max(values) <= 88
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    expected = min(88 - mean, mean - 82) / (3 * sd)
    assert expected < 1.33
    result = assess_batch(_coating(), batch, lot_size=2000)
    stats = next(c for c in result.characteristics if c.id == "coating_thickness")
    assert stats.cpk == pytest.approx(expected) and stats.min_cpk == 1.33
    [finding] = [f for f in result.findings if f.code == "cpk_below_minimum"]
    assert finding.characteristic == "coating_thickness" and f"Cpk {expected:.3f}" in finding.message
    assert result.verdict == "reject"


def test_cpk_function() -> None:
    values = [9.8, 10.0, 10.2, 10.1, 9.9]
    mean, sd = 10.0, statistics.stdev(values)
    assert cpk(values, 9.0, 11.5) == pytest.approx((mean - 9.0) / (3 * sd))
    assert cpk(values, None, 10.6) == pytest.approx(0.6 / (3 * sd))  # one-sided
    assert cpk([1.0, 1.0, 1.0], 0.0, 2.0) is None  # no spread
    assert cpk([1.0], 0.0, 2.0) is None


def test_identical_values_make_cpk_undefined_not_a_crash() -> None:
    batch = _batch(32)
    for record in batch:
        if record["characteristic"] == "areal_mass":
            record["value"] = 21.5
    result = assess_batch(_coating(), batch, lot_size=2000)
    assert "cpk_undefined" in _codes(result, "warning")
    assert result.verdict == "accept"


# -- other checks, determinism, input errors --------------------------------------------------------------------


def test_process_windows_and_part_number() -> None:
    process = [
        {"variable": "bake_temperature", "value": 145.0, "unit": "°C"},
        {"variable": "roll_pressure", "value": 15.0, "unit": "kN/cm"},
        {"variable": "roll_pressure", "value": 15.0, "unit": "MPa"},
        {"variable": "humidity", "value": 99.0, "unit": "%"},  # not a template window: ignored
    ]
    result = assess_batch(_coating(), _batch(32), lot_size=2000, process_values=process, part_number="EL-CATH-7")
    assert result.verdict == "accept"
    warnings = [f for f in result.findings if f.severity == "warning"]
    assert [(f.code, f.characteristic) for f in warnings] == [
        ("process_out_of_window", "bake_temperature"),
        ("process_wrong_unit", "roll_pressure"),
    ]
    assert "above USL 140" in warnings[0].message
    # a process parameter reported as a measurement gets a record verdict but does not count for the AQL
    batch = _batch(32)
    batch.append({**batch[0], "characteristic": "bake_temperature", "value": 150.0, "unit": "degC"})
    result = assess_batch(_coating(), batch, lot_size=2000)
    assert result.records[-1].verdict == "fail_high" and result.verdict == "accept"
    assert _codes(result, "warning") == ["process_out_of_window"]
    wrong_part = assess_batch(_coating(), _batch(32), lot_size=2000, part_number="EL-ANODE-1", part_revision="D")
    assert _codes(wrong_part, "error") == ["wrong_part_number", "wrong_part_revision"]
    assert wrong_part.verdict == "reject"


def test_assessment_is_deterministic_and_round_trips_as_json() -> None:
    batch = _batch(32)
    _set(batch, "S003", "coating_thickness", value=88.3)
    first = assess_batch(_coating(), copy.deepcopy(batch), lot_size=2000)
    second = assess_batch(_coating(), copy.deepcopy(batch), lot_size=2000)
    assert first.model_dump_json() == second.model_dump_json()
    assert BatchAssessment.model_validate_json(first.model_dump_json()) == first
    data = json.loads(first.model_dump_json())
    assert data["assessment_version"] == "qcn-assessment/1" and data["verdict"] == "accept"


def test_parsed_measurements_and_sample_id_dicts_are_accepted() -> None:
    batch = _batch(32)
    for record in batch:
        record["sample_id"] = record.pop("sample")
    assert assess_batch(_coating(), batch, lot_size=2000).verdict == "accept"


@pytest.mark.parametrize(
    ("measurements", "lot_size", "fragment"),
    [
        ([], 100, "measurements: the batch has no measurements"),
        (_batch(2), 0, "lot_size: must be a positive integer, got 0"),
        (_batch(2), True, "lot_size: must be a positive integer"),
        ([42], 100, "measurements[0]: measurement is a int"),
    ],
)
def test_input_errors_are_clear(measurements: list[Any], lot_size: int, fragment: str) -> None:
    with pytest.raises(AssessmentInputError) as info:
        assess_batch(_coating(), measurements, lot_size=lot_size)
    assert isinstance(info.value, QualityError) and isinstance(info.value, ValueError)
    assert fragment in str(info.value)
