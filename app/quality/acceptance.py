"""Per-record and per-batch verdicts of an inspection batch against a quality template.

Input is plain data so the gateway can call this from its services: a validated `Template`, the lot size and
the measurements (``parsers.model.Measurement`` objects, anything with a ``record()`` method, or dicts with
the record keys ``sample`` (or ``sample_id``), ``characteristic``, ``value``, ``unit`` ...).

Per record (in input order, aligned with ``InspectionBatch.records()``), the first problem found wins::

    missing_required_field  a field of template.data_interface.required_fields is absent/empty, or value is not
                            a finite number
    unknown_characteristic  the characteristic is neither a template characteristic nor a process parameter
    wrong_unit              the unit is not the characteristic's unit or one of its accepted spellings
                            (um = µm = μm, degC = °C, mg/cm2 = mg/cm², ...); values are never converted
    fail_low / fail_high    value < LSL / value > USL (limits are inclusive)
    pass

Per batch, for every criticality class used by the template: the ISO 2859-1 plan for the lot (or 100 %
inspection) gives the sample size n and Ac/Re; a sampled item is *nonconforming* for a class when any of its
results of that class fails; the class rejects when that count >= Re. Further checks: each characteristic has
results on >= n distinct samples, no result out of spec when ``all_results_in_spec``, Cpk >= the class
minimum when the characteristic has >= ``min_samples_for_cpk`` results, every required field present,
units right, part number/revision (when given) covered by the template. The batch is accepted iff no
finding has severity ``error``.

Cpk = min((USL - mean) / 3s, (mean - LSL) / 3s) over the limits that exist, s the sample standard deviation
(n - 1). Example: mean 84.93, s 0.513, LSL 82, USL 88 -> min(3.07, 2.93) / 1.539 = 1.90.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from app.quality.errors import AssessmentInputError
from app.quality.sampling import SamplingPlan, full_inspection_plan, plan_for
from app.quality.template import CLASSES, Characteristic, ProcessParameter, Template

__all__ = [
    "ASSESSMENT_VERSION",
    "BatchAssessment",
    "CharacteristicStats",
    "ClassResult",
    "Finding",
    "RecordVerdict",
    "assess_batch",
    "assess_inspection",
    "canonical_unit",
    "cpk",
    "plans_for_lot",
    "units_equivalent",
]

ASSESSMENT_VERSION: Literal["qcn-assessment/1"] = "qcn-assessment/1"

Verdict = Literal["pass", "fail_low", "fail_high", "unknown_characteristic", "wrong_unit", "missing_required_field"]
Severity = Literal["error", "warning", "info"]

# Spellings of the same unit; anything else must match exactly (case matters: mV is not MV).
_UNIT_SPELLINGS: dict[str, str] = {
    "\u00b5": "u",  # MICRO SIGN
    "\u03bc": "u",  # GREEK SMALL LETTER MU
    "\u00b2": "2",  # SUPERSCRIPT TWO
    "\u00b3": "3",  # SUPERSCRIPT THREE
    "^2": "2",
    "^3": "3",
    "\u03a9": "Ohm",  # GREEK CAPITAL LETTER OMEGA
    "\u2126": "Ohm",  # OHM SIGN
    "\u2103": "degC",  # DEGREE CELSIUS
    "\u00b0C": "degC",  # DEGREE SIGN + C
    "\u00baC": "degC",  # MASCULINE ORDINAL (a common typo for the degree sign)
}
_UNIT_WORDS: dict[str, str] = {
    "micron": "um",
    "microns": "um",
    "micrometer": "um",
    "micrometre": "um",
    "ohm": "Ohm",
    "mohm": "mOhm",
    "kohm": "kOhm",
    "deg_c": "degC",
    "celsius": "degC",
    "mg/cm^2": "mg/cm2",
    "g/m^2": "g/m2",
}


def canonical_unit(unit: str) -> str:
    """The canonical spelling of a unit (µm/μm -> um, °C -> degC, cm² -> cm2, whitespace dropped)."""
    text = "".join(unit.split())
    word = _UNIT_WORDS.get(text.lower())
    if word is not None:
        return word
    for spelling, canonical in _UNIT_SPELLINGS.items():
        text = text.replace(spelling, canonical)
    return text


def units_equivalent(given: str, expected: str) -> bool:
    """True when ``given`` is ``expected`` or an accepted spelling of it (never a conversion: mm != um)."""
    return canonical_unit(given) == canonical_unit(expected)


def cpk(values: Sequence[float], lsl: float | None, usl: float | None) -> float | None:
    """Process capability index over the given limits; None for < 2 values or zero spread."""
    n = len(values)
    if n < 2 or (lsl is None and usl is None):
        return None
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    if std == 0:
        return None
    sides = []
    if usl is not None:
        sides.append((usl - mean) / (3 * std))
    if lsl is not None:
        sides.append((mean - lsl) / (3 * std))
    return min(sides)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordVerdict(_Out):
    """Verdict on one measurement record (``index`` = position in the batch's records)."""

    index: int
    sample: str | None
    characteristic: str | None
    value: float | None
    unit: str | None
    verdict: Verdict
    message: str


class Finding(_Out):
    """A batch-level observation; any ``error`` rejects the batch."""

    code: str
    severity: Severity
    message: str
    characteristic: str | None = None
    criticality: str | None = None


class CharacteristicStats(_Out):
    """Statistics of one template characteristic over the judged results (pass/fail) of the batch."""

    id: str
    criticality: str
    unit: str
    lsl: float | None
    usl: float | None
    n: int
    samples: int
    required_samples: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    cpk: float | None
    min_cpk: float | None
    nonconforming: int


class ClassResult(_Out):
    """The sampling plan of one criticality class and the count it was judged on."""

    criticality: str
    plan: SamplingPlan
    nonconforming_items: int
    verdict: Literal["accept", "reject"]


class BatchAssessment(_Out):
    """Full, deterministic, JSON-able result of assessing one batch against one template."""

    assessment_version: Literal["qcn-assessment/1"] = ASSESSMENT_VERSION
    template_id: str
    template_version: int
    template_hash: str
    lot_size: int
    verdict: Literal["accept", "reject"]
    findings: list[Finding]
    classes: list[ClassResult]
    characteristics: list[CharacteristicStats]
    records: list[RecordVerdict]

    def counts(self) -> dict[str, int]:
        """Number of records per verdict code (only codes that occur)."""
        out: dict[str, int] = {}
        for r in self.records:
            out[r.verdict] = out.get(r.verdict, 0) + 1
        return out


def plans_for_lot(template: Template, lot_size: int) -> dict[str, SamplingPlan]:
    """The sampling plan of every criticality class the template's characteristics use, for ``lot_size``."""
    used = sorted({c.criticality for c in template.characteristics}, key=CLASSES.index)
    spec = template.sampling
    plans: dict[str, SamplingPlan] = {}
    for klass in used:
        if spec.method == "full":
            plans[klass] = full_inspection_plan(lot_size, (spec.full_accept or {}).get(klass, 0))
        else:
            assert spec.aql is not None and spec.inspection_level is not None
            plans[klass] = plan_for(lot_size, spec.inspection_level, spec.aql[klass])
    return plans


def _as_record(item: Any, index: int) -> dict[str, Any]:
    if isinstance(item, Mapping):
        record = dict(item)
        if "sample" not in record and "sample_id" in record:
            record["sample"] = record.pop("sample_id")
        return record
    to_record = getattr(item, "record", None)
    if callable(to_record):
        record = dict(to_record())
        extra = getattr(item, "extra", None) or {}
        for key, value in extra.items():
            record.setdefault(key, value)
        return record
    raise AssessmentInputError(
        f"measurement is a {type(item).__name__}, expected a mapping or an object with record()",
        field=f"measurements[{index}]",
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _limit_verdict(spec: Characteristic | ProcessParameter, value: float) -> tuple[Verdict, str]:
    if spec.lsl is not None and value < spec.lsl:
        return "fail_low", f"{spec.id} = {value:g} {spec.unit} is below LSL {spec.lsl:g}"
    if spec.usl is not None and value > spec.usl:
        return "fail_high", f"{spec.id} = {value:g} {spec.unit} is above USL {spec.usl:g}"
    return "pass", f"{spec.id} = {value:g} {spec.unit} within limits"


def _judge(
    index: int, record: dict[str, Any], template: Template, required: Sequence[str]
) -> tuple[RecordVerdict, Characteristic | ProcessParameter | None]:
    sample = record.get("sample")
    name = record.get("characteristic")
    unit = record.get("unit")
    raw_value = record.get("value")
    value = _number(raw_value)

    def verdict(code: Verdict, message: str) -> RecordVerdict:
        return RecordVerdict(
            index=index,
            sample=str(sample) if sample is not None else None,
            characteristic=str(name) if name is not None else None,
            value=value,
            unit=str(unit) if unit is not None else None,
            verdict=code,
            message=message,
        )

    missing = [f for f in required if _missing(record.get(f))]
    if missing:
        return verdict(
            "missing_required_field", f"record {index}: missing required field(s) {', '.join(missing)}"
        ), None
    if value is None:
        return verdict("missing_required_field", f"record {index}: value {raw_value!r} is not a finite number"), None
    spec: Characteristic | ProcessParameter | None = template.characteristic(str(name))
    if spec is None:
        spec = next((p for p in template.process_parameters if p.id == name), None)
    if spec is None:
        return verdict(
            "unknown_characteristic", f"record {index}: characteristic {name!r} is not in the template"
        ), None
    if unit is None or not units_equivalent(str(unit), spec.unit):
        return (
            verdict("wrong_unit", f"record {index}: {spec.id} is in {unit!r}, the template requires {spec.unit!r}"),
            spec,
        )
    code, message = _limit_verdict(spec, value)
    return verdict(code, f"record {index}: {message}"), spec


def assess_batch(
    template: Template,
    measurements: Iterable[Any],
    *,
    lot_size: int,
    process_values: Iterable[Any] = (),
    part_number: str | None = None,
    part_revision: str | None = None,
) -> BatchAssessment:
    """Assess one batch: per-record verdicts, per-class AQL decisions, Cpk and data checks -> `BatchAssessment`.

    ``process_values`` are optional objects/dicts with ``variable``, ``value``, ``unit`` checked against the
    template's process windows (warnings only). Raises `AssessmentInputError` when there are no
    measurements or the lot size is not a positive integer.
    """
    if isinstance(lot_size, bool) or not isinstance(lot_size, int) or lot_size < 1:
        raise AssessmentInputError(f"must be a positive integer, got {lot_size!r}", field="lot_size")
    records = [_as_record(m, i) for i, m in enumerate(measurements)]
    if not records:
        raise AssessmentInputError("the batch has no measurements to assess", field="measurements")

    findings: list[Finding] = []
    required = template.data_interface.required_fields
    plans = plans_for_lot(template, lot_size)

    if part_number is not None and part_number not in template.part.numbers:
        findings.append(
            Finding(
                code="wrong_part_number",
                severity="error",
                message=f"part number {part_number!r} is not covered by the template "
                f"({', '.join(template.part.numbers)})",
            )
        )
    if part_revision is not None and part_revision != template.part.revision:
        findings.append(
            Finding(
                code="wrong_part_revision",
                severity="error",
                message=f"part revision {part_revision!r} differs from the template's {template.part.revision!r}",
            )
        )

    verdicts: list[RecordVerdict] = []
    by_char: dict[str, list[RecordVerdict]] = {c.id: [] for c in template.characteristics}
    unknown: dict[str, int] = {}
    wrong_units: dict[str, set[str]] = {}
    missing_fields: dict[str, int] = {}
    for index, record in enumerate(records):
        rv, spec = _judge(index, record, template, required)
        verdicts.append(rv)
        if rv.verdict == "unknown_characteristic":
            unknown[str(rv.characteristic)] = unknown.get(str(rv.characteristic), 0) + 1
        elif rv.verdict == "wrong_unit" and spec is not None:
            wrong_units.setdefault(spec.id, set()).add(str(rv.unit))
        elif rv.verdict == "missing_required_field":
            for f in required:
                if _missing(record.get(f)):
                    missing_fields[f] = missing_fields.get(f, 0) + 1
            if not _missing(record.get("value")) and _number(record.get("value")) is None:
                missing_fields["value"] = missing_fields.get("value", 0) + 1
        elif rv.verdict in ("pass", "fail_low", "fail_high") and isinstance(spec, Characteristic):
            by_char[spec.id].append(rv)
        elif rv.verdict in ("fail_low", "fail_high"):
            findings.append(
                Finding(
                    code="process_out_of_window",
                    severity="warning",
                    message=rv.message,
                    characteristic=spec.id if spec else None,
                )
            )

    for field, count in sorted(missing_fields.items()):
        findings.append(
            Finding(
                code="missing_required_field",
                severity="error",
                message=f"{count} record(s) lack required field {field!r} (or it is not a number)",
            )
        )
    for name, count in sorted(unknown.items()):
        findings.append(
            Finding(
                code="unknown_characteristic",
                severity="warning",
                message=f"{count} record(s) of characteristic {name!r}, which the template does not define",
                characteristic=name,
            )
        )
    for cid, units in sorted(wrong_units.items()):
        expected = next(c.unit for c in [*template.characteristics, *template.process_parameters] if c.id == cid)
        findings.append(
            Finding(
                code="wrong_unit",
                severity="error",
                message=f"{cid} reported in {', '.join(sorted(units))}; the template requires {expected} "
                "(values are never converted)",
                characteristic=cid,
            )
        )

    rules = template.acceptance
    all_samples: set[str] = set()
    stats: list[CharacteristicStats] = []
    bad_items: dict[str, set[str]] = {k: set() for k in plans}
    for char in template.characteristics:
        judged = by_char[char.id]
        values = [rv.value for rv in judged if rv.value is not None]
        samples = {str(rv.sample) for rv in judged}
        all_samples |= samples
        failed = [rv for rv in judged if rv.verdict != "pass"]
        bad_items[char.criticality].update(str(rv.sample) for rv in failed)
        plan = plans[char.criticality]
        n = len(values)
        mean = math.fsum(values) / n if n else None
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n >= 2 and mean is not None else None
        min_cpk = rules.min_cpk.get(char.criticality)
        char_cpk = cpk(values, char.lsl, char.usl)
        if len(samples) < plan.sample_size:
            findings.append(
                Finding(
                    code="insufficient_samples",
                    severity="error",
                    message=f"{char.id}: results on {len(samples)} sample(s), the sampling plan requires "
                    f"{plan.sample_size} for lot size {lot_size}",
                    characteristic=char.id,
                    criticality=char.criticality,
                )
            )
        if len(judged) > len(samples):
            findings.append(
                Finding(
                    code="repeated_measurement",
                    severity="warning",
                    message=f"{char.id}: {len(judged) - len(samples)} extra result(s) for samples already measured",
                    characteristic=char.id,
                )
            )
        if failed:
            findings.append(
                Finding(
                    code="out_of_spec",
                    severity="error" if rules.all_results_in_spec else "warning",
                    message=f"{char.id}: {len(failed)} result(s) outside "
                    f"[{'-inf' if char.lsl is None else f'{char.lsl:g}'}, "
                    f"{'inf' if char.usl is None else f'{char.usl:g}'}] {char.unit}",
                    characteristic=char.id,
                    criticality=char.criticality,
                )
            )
        if min_cpk is not None:
            if n < rules.min_samples_for_cpk:
                findings.append(
                    Finding(
                        code="cpk_not_evaluated",
                        severity="info",
                        message=f"{char.id}: {n} result(s), Cpk is checked from {rules.min_samples_for_cpk}",
                        characteristic=char.id,
                    )
                )
            elif char_cpk is None:
                findings.append(
                    Finding(
                        code="cpk_undefined",
                        severity="warning",
                        message=f"{char.id}: all {n} results are identical, Cpk is undefined (gauge resolution?)",
                        characteristic=char.id,
                    )
                )
            elif char_cpk < min_cpk:
                findings.append(
                    Finding(
                        code="cpk_below_minimum",
                        severity="error",
                        message=f"{char.id}: Cpk {char_cpk:.3f} is below the {char.criticality} minimum {min_cpk:g}",
                        characteristic=char.id,
                        criticality=char.criticality,
                    )
                )
        stats.append(
            CharacteristicStats(
                id=char.id,
                criticality=char.criticality,
                unit=char.unit,
                lsl=char.lsl,
                usl=char.usl,
                n=n,
                samples=len(samples),
                required_samples=plan.sample_size,
                mean=mean,
                std=std,
                min=min(values) if values else None,
                max=max(values) if values else None,
                cpk=char_cpk,
                min_cpk=min_cpk,
                nonconforming=len(failed),
            )
        )

    if len(all_samples) > lot_size:
        findings.append(
            Finding(
                code="samples_exceed_lot",
                severity="error",
                message=f"{len(all_samples)} distinct samples reported for a declared lot size of {lot_size}",
            )
        )

    classes: list[ClassResult] = []
    for klass, plan in plans.items():
        count = len(bad_items[klass])
        rejected = count >= plan.reject
        classes.append(
            ClassResult(
                criticality=klass,
                plan=plan,
                nonconforming_items=count,
                verdict="reject" if rejected else "accept",
            )
        )
        if rejected:
            findings.append(
                Finding(
                    code="aql_reject",
                    severity="error",
                    message=f"{klass}: {count} nonconforming item(s) in the sample reaches Re {plan.reject} "
                    f"(Ac {plan.accept}, n {plan.sample_size}"
                    + (f", AQL {plan.aql:g}, code {plan.code})" if plan.aql is not None else ", 100 % inspection)"),
                    criticality=klass,
                )
            )

    findings.extend(_check_process(template, process_values))
    verdict: Literal["accept", "reject"] = "reject" if any(f.severity == "error" for f in findings) else "accept"
    return BatchAssessment(
        template_id=template.template_id,
        template_version=template.version,
        template_hash="0x" + template.canonical_hash().hex(),
        lot_size=lot_size,
        verdict=verdict,
        findings=findings,
        classes=classes,
        characteristics=stats,
        records=verdicts,
    )


def _check_process(template: Template, process_values: Iterable[Any]) -> list[Finding]:
    windows = {p.id: p for p in template.process_parameters}
    out: list[Finding] = []
    for i, item in enumerate(process_values):
        get = item.get if isinstance(item, Mapping) else lambda k, _item=item: getattr(_item, k, None)
        name, value, unit = get("variable"), _number(get("value")), get("unit")
        window = windows.get(str(name))
        if window is None:
            continue
        if value is None:
            out.append(
                Finding(
                    code="process_value_invalid",
                    severity="warning",
                    message=f"process value {i} ({name}) is not a finite number",
                    characteristic=window.id,
                )
            )
        elif unit is None or not units_equivalent(str(unit), window.unit):
            out.append(
                Finding(
                    code="process_wrong_unit",
                    severity="warning",
                    message=f"process value {i}: {window.id} in {unit!r}, the template window is in {window.unit!r}",
                    characteristic=window.id,
                )
            )
        else:
            code, message = _limit_verdict(window, value)
            if code != "pass":
                out.append(
                    Finding(
                        code="process_out_of_window",
                        severity="warning",
                        message=f"process value {i}: {message}",
                        characteristic=window.id,
                    )
                )
    return out


def assess_inspection(template: Template, batch: Any, *, lot_size: int | None = None) -> BatchAssessment:
    """Assess a parsed ``parsers.model.InspectionBatch`` (duck-typed: measurements, process, lot_size, part).

    ``lot_size`` overrides the batch's own; one of them must be set.
    """
    size = lot_size if lot_size is not None else getattr(batch, "lot_size", None)
    if size is None:
        raise AssessmentInputError("unknown: declare the lot size with the upload", field="lot_size")
    return assess_batch(
        template,
        getattr(batch, "measurements", []),
        lot_size=size,
        process_values=getattr(batch, "process", None) or (),
        part_number=getattr(batch, "part_number", None),
        part_revision=getattr(batch, "part_revision", None),
    )
