"""The quality contract template: the off-chain JSON document an OEM publishes (``qcn-template/1``).

A template fixes everything both parties sign up to: the part, its characteristics with spec limits and
criticality class, the ISO 2859-1 sampling plan, the data interface (record fields and file formats), the
acceptance rules (spec limits, minimum Cpk), the deposit curve, the penalty schedule, the tracing deadlines
and the lab fee. ``canonical_hash()`` is the SHA-256 of its RFC 8785 canonical JSON: the ``documentHash``
anchored on chain together with ``chain_terms()``, the numbers the contracts enforce.

Token amounts (deposit base, penalties, lab fee) are integers in the settlement token's smallest unit. In
JSON they are written as decimal strings ("25000000000000000000000"): RFC 8785 numbers are IEEE doubles
and would silently lose precision above 2**53. Inputs may give them as JSON integers or decimal strings.

The model is strict (no type coercion) and rejects unknown fields, so a typo is an error, not a silently
ignored term. Load documents with :func:`load_template`, which turns pydantic's errors into a
`TemplateError` naming each offending field.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.quality.errors import TemplateError, TemplateProblem
from app.quality.sampling import AQL_VALUES, InspectionLevel, normalise_aql
from chain.canonical import canonical_bytes as _canonical_bytes

__all__ = [
    "CLASSES",
    "MEASUREMENT_FORMATS",
    "RECORD_FIELDS",
    "REPORT_FORMATS",
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "AcceptanceRules",
    "Characteristic",
    "Criticality",
    "DataInterface",
    "DepositTerms",
    "PartRef",
    "PenaltySchedule",
    "ProcessParameter",
    "RatioTier",
    "SamplingSpec",
    "Template",
    "TracingDeadlines",
    "export_json_schema",
    "library_template",
    "library_templates",
    "load_template",
    "write_json_schema",
]

SCHEMA_VERSION = "qcn-template/1"
SCHEMA_PATH = Path(__file__).parent / "schema" / "template-v1.schema.json"
LIBRARY_DIR = Path(__file__).parent / "library"

Criticality = Literal["critical", "major", "minor"]
CLASSES: tuple[str, ...] = ("critical", "major", "minor")
MeasurementFormat = Literal["csv", "json", "xlsx", "qif", "aqdef"]
MEASUREMENT_FORMATS: tuple[str, ...] = ("csv", "json", "xlsx", "qif", "aqdef")
ReportFormat = Literal["pdf", "dcc"]
REPORT_FORMATS: tuple[str, ...] = ("pdf", "dcc")
# keys of a parsed measurement record (parsers.model.Measurement.record()); free-text extras are allowed too
RECORD_FIELDS: tuple[str, ...] = (
    "sample",
    "characteristic",
    "value",
    "unit",
    "uncertainty",
    "coverage_factor",
    "measured_at",
)

BPS = 10_000
_MAX_BPS = 65_535  # ratios fit a uint16 on chain
_MAX_SECONDS = 366 * 24 * 3600
_MAX_TOKEN = 2**256 - 1


def _token_amount(value: Any) -> Any:
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise ValueError(f"token amount must be a non-negative decimal integer string, got {value!r}")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"token amount must be an integer (or decimal string), got {value!r}")
    if not 0 <= value <= _MAX_TOKEN:
        raise ValueError(f"token amount {value} is outside 0 .. 2**256-1")
    return value


TokenAmount = Annotated[
    int,
    BeforeValidator(_token_amount),
    PlainSerializer(lambda v: str(v), return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "description": "integer amount in the settlement token's smallest unit (decimal string preferred)",
            "anyOf": [{"type": "string", "pattern": "^[0-9]{1,78}$"}, {"type": "integer", "minimum": 0}],
        }
    ),
]
Seconds = Annotated[int, Field(gt=0, le=_MAX_SECONDS)]
Bps = Annotated[int, Field(ge=0, le=_MAX_BPS)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class PartRef(_Strict):
    """The part(s) the template covers: one or more part numbers at one drawing revision."""

    numbers: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1)
    revision: str = Field(min_length=1, max_length=32)
    description: str | None = None

    @field_validator("numbers")
    @classmethod
    def _unique_numbers(cls, numbers: list[str]) -> list[str]:
        dupes = sorted({n for n in numbers if numbers.count(n) > 1})
        if dupes:
            raise ValueError(f"part numbers listed twice: {', '.join(dupes)}")
        return numbers


class _Limits(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    unit: str = Field(min_length=1, max_length=32)
    nominal: float | None = None
    lsl: float | None = None
    usl: float | None = None

    _v_finite = field_validator("nominal", "lsl", "usl")(_finite)

    @model_validator(mode="after")
    def _check_limits(self) -> _Limits:
        what = f"{'characteristic' if isinstance(self, Characteristic) else 'process parameter'} {self.id!r}"
        if self.lsl is None and self.usl is None:
            raise ValueError(f"{what} needs at least one spec limit (lsl or usl)")
        if self.lsl is not None and self.usl is not None and self.lsl >= self.usl:
            raise ValueError(f"{what}: lsl {self.lsl:g} must be below usl {self.usl:g}")
        if self.nominal is not None:
            if self.lsl is not None and self.nominal < self.lsl:
                raise ValueError(f"{what}: nominal {self.nominal:g} is below lsl {self.lsl:g}")
            if self.usl is not None and self.nominal > self.usl:
                raise ValueError(f"{what}: nominal {self.nominal:g} is above usl {self.usl:g}")
        return self


class Characteristic(_Limits):
    """A product characteristic measured on every sampled item, judged against LSL/USL (one may be open)."""

    criticality: Criticality


class ProcessParameter(_Limits):
    """A process variable with an agreed window (e.g. bake temperature); checked when reported, not sampled."""

    tier: Literal["material", "equipment", "process", "environment"] = "process"


class SamplingSpec(_Strict):
    """How many items of a lot are inspected.

    ``method="iso2859-1"``: single sampling, normal inspection, at ``inspection_level`` with one AQL per
    criticality class (percent nonconforming, a preferred value <= 10). ``method="full"``: 100 % inspection,
    the lot is accepted with at most ``full_accept[class]`` nonconforming items (0 when omitted).
    """

    method: Literal["iso2859-1", "full"]
    inspection: Literal["normal"] = "normal"
    inspection_level: InspectionLevel | None = None
    aql: dict[Criticality, float] | None = None
    full_accept: dict[Criticality, Annotated[int, Field(ge=0)]] | None = None

    @field_validator("aql")
    @classmethod
    def _preferred_aql(cls, aql: dict[str, float] | None) -> dict[str, float] | None:
        if aql is None:
            return None
        out: dict[str, float] = {}
        for klass, value in aql.items():
            if value > 10 or not any(math.isclose(value, a, rel_tol=1e-9) for a in AQL_VALUES):
                allowed = ", ".join(f"{a:g}" for a in AQL_VALUES if a <= 10)
                raise ValueError(f"AQL {value:g} for class {klass!r} is not a preferred value ({allowed})")
            out[klass] = normalise_aql(value)
        return out

    @model_validator(mode="after")
    def _method_fields(self) -> SamplingSpec:
        if self.method == "iso2859-1":
            if self.inspection_level is None:
                raise ValueError("sampling method iso2859-1 needs inspection_level (S-1..S-4, I, II, III)")
            if not self.aql:
                raise ValueError("sampling method iso2859-1 needs an AQL per criticality class")
            if self.full_accept is not None:
                raise ValueError("full_accept only applies to sampling method 'full'")
        else:
            if self.inspection_level is not None or self.aql is not None:
                raise ValueError("sampling method 'full' takes no inspection_level or aql")
        return self


class DataInterface(_Strict):
    """What an upload must contain: record fields present in every measurement, and accepted file formats."""

    required_fields: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]] = Field(min_length=1)
    measurement_formats: list[MeasurementFormat] = Field(min_length=1)
    report_formats: list[ReportFormat] = Field(default_factory=list)
    report_required: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> DataInterface:
        for name in ("required_fields", "measurement_formats", "report_formats"):
            values: list[str] = getattr(self, name)
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"{name} lists {', '.join(dupes)} more than once")
        missing = [f for f in ("sample", "characteristic", "value", "unit") if f not in self.required_fields]
        if missing:
            raise ValueError(f"required_fields must include the core record fields; missing {', '.join(missing)}")
        if self.report_required and not self.report_formats:
            raise ValueError("report_required is true but no report_formats are accepted")
        return self


class AcceptanceRules(_Strict):
    """Batch acceptance beyond the AQL count.

    ``all_results_in_spec``: any result outside LSL/USL rejects the batch (zero tolerance), in addition
    to the AQL numbers. ``min_cpk[class]``: minimum Cpk of every characteristic of that class, checked
    only when a characteristic has at least ``min_samples_for_cpk`` results (Cpk on fewer is noise).
    """

    all_results_in_spec: bool = False
    min_cpk: dict[Criticality, Annotated[float, Field(gt=0, le=10)]] = Field(default_factory=dict)
    min_samples_for_cpk: int = Field(default=25, ge=2, le=100_000)


class RatioTier(_Strict):
    """From ``min_score`` (0..100) upwards, the required deposit is ``ratio_bps`` / 10 000 of the base."""

    min_score: int = Field(ge=0, le=100)
    ratio_bps: Bps


class DepositTerms(_Strict):
    """Quality deposit: required = base_amount x ratio; the ratio follows the quarterly score via ``tiers``.

    Tiers are sorted by strictly increasing ``min_score``, start at score 0, and a better score never
    needs a larger deposit (``ratio_bps`` non-increasing). Every tier ratio and ``initial_ratio_bps`` lie in
    [min_ratio_bps, max_ratio_bps]; one quarterly evaluation moves the ratio by at most ``max_step_bps``.
    """

    base_amount: TokenAmount
    initial_ratio_bps: Bps
    tiers: list[RatioTier] = Field(min_length=1, max_length=8)
    min_ratio_bps: Bps
    max_ratio_bps: Bps
    max_step_bps: int = Field(gt=0, le=_MAX_BPS)
    top_up_grace_seconds: Seconds

    @model_validator(mode="after")
    def _curve(self) -> DepositTerms:
        if self.min_ratio_bps > self.max_ratio_bps:
            raise ValueError(f"min_ratio_bps {self.min_ratio_bps} is above max_ratio_bps {self.max_ratio_bps}")
        if self.tiers[0].min_score != 0:
            raise ValueError(f"tiers[0].min_score must be 0 so every score has a ratio, got {self.tiers[0].min_score}")
        for i in range(1, len(self.tiers)):
            prev, cur = self.tiers[i - 1], self.tiers[i]
            if cur.min_score <= prev.min_score:
                raise ValueError(
                    f"tiers not increasing: tiers[{i}].min_score {cur.min_score} <= "
                    f"tiers[{i - 1}].min_score {prev.min_score}"
                )
            if cur.ratio_bps > prev.ratio_bps:
                raise ValueError(
                    f"tiers[{i}].ratio_bps {cur.ratio_bps} is above tiers[{i - 1}].ratio_bps {prev.ratio_bps}: "
                    "a better score must not require a larger deposit"
                )
        for i, tier in enumerate(self.tiers):
            if not self.min_ratio_bps <= tier.ratio_bps <= self.max_ratio_bps:
                raise ValueError(
                    f"tiers[{i}].ratio_bps {tier.ratio_bps} is outside "
                    f"[{self.min_ratio_bps}, {self.max_ratio_bps}] (min_ratio_bps, max_ratio_bps)"
                )
        if not self.min_ratio_bps <= self.initial_ratio_bps <= self.max_ratio_bps:
            raise ValueError(
                f"initial_ratio_bps {self.initial_ratio_bps} is outside [{self.min_ratio_bps}, {self.max_ratio_bps}]"
            )
        return self

    def ratio_for(self, score: int) -> int:
        """The tier ratio (bps) for a quarterly score, before the min/max clamp and step limit."""
        ratio = self.tiers[0].ratio_bps
        for tier in self.tiers:
            if score >= tier.min_score:
                ratio = tier.ratio_bps
        return ratio


class PenaltySchedule(_Strict):
    """Penalties taken from the deposit: per confirmed non-conforming batch by class, and per PPM above target."""

    per_batch: dict[Criticality, TokenAmount]
    per_ppm_above_target: TokenAmount
    target_ppm: int = Field(ge=0, le=1_000_000)

    @field_validator("per_batch")
    @classmethod
    def _all_classes(cls, per_batch: dict[str, int]) -> dict[str, int]:
        missing = [c for c in CLASSES if c not in per_batch]
        if missing:
            raise ValueError(f"per_batch needs a penalty for every class; missing {', '.join(missing)}")
        return per_batch


class TracingDeadlines(_Strict):
    """Deadlines of a tracing case, in seconds from the previous step (checked against block time)."""

    supplier_response_seconds: Seconds
    lab_verdict_seconds: Seconds
    dispute_window_seconds: Seconds


class Template(_Strict):
    """A published quality contract template (document format ``qcn-template/1``); immutable once published."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        title="qcn quality contract template",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "urn:qcn:schema:template:1",
        },
    )

    schema_version: Literal["qcn-template/1"]
    template_id: Identifier
    version: int = Field(ge=1, le=2**32 - 1)
    title: str = Field(min_length=1, max_length=200)
    oem: str = Field(min_length=1, max_length=200)
    part: PartRef
    characteristics: list[Characteristic] = Field(min_length=1, max_length=500)
    process_parameters: list[ProcessParameter] = Field(default_factory=list, max_length=500)
    sampling: SamplingSpec
    data_interface: DataInterface
    acceptance: AcceptanceRules
    deposit: DepositTerms
    penalties: PenaltySchedule
    deadlines: TracingDeadlines
    lab_fee: TokenAmount

    @model_validator(mode="after")
    def _cross_checks(self) -> Template:
        ids = [c.id for c in self.characteristics] + [p.id for p in self.process_parameters]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"characteristic/process parameter ids used twice: {', '.join(dupes)}")
        if self.sampling.method == "iso2859-1":
            assert self.sampling.aql is not None
            used = sorted({c.criticality for c in self.characteristics}, key=CLASSES.index)
            missing = [c for c in used if c not in self.sampling.aql]
            if missing:
                names = [ch.id for ch in self.characteristics if ch.criticality in missing]
                raise ValueError(f"sampling.aql has no AQL for class {', '.join(missing)} (used by {', '.join(names)})")
        return self

    # -- derived views ------------------------------------------------------------------------------

    def characteristic(self, characteristic_id: str) -> Characteristic | None:
        """The characteristic with this id, or None."""
        for c in self.characteristics:
            if c.id == characteristic_id:
                return c
        return None

    def document(self) -> dict[str, Any]:
        """The template as plain JSON data (token amounts as decimal strings), as published."""
        return self.model_dump(mode="json", exclude_none=False)

    def canonical_json(self) -> bytes:
        """RFC 8785 canonical UTF-8 bytes of :meth:`document`."""
        return _canonical_bytes(self.document())

    def canonical_hash(self) -> bytes:
        """SHA-256 of the canonical JSON: the 32-byte ``documentHash`` anchored on chain."""
        return hashlib.sha256(self.canonical_json()).digest()

    def template_key(self) -> bytes:
        """32-byte on-chain template id: SHA-256 of the UTF-8 ``template_id`` (the version is separate)."""
        return hashlib.sha256(self.template_id.encode("utf-8")).digest()

    def chain_terms(self) -> dict[str, Any]:
        """The numbers the contracts enforce, as a plain dict (hashes as 0x-hex, amounts as Python ints).

        Keys: templateKey, version, documentHash, depositBase, initialRatioBps, tiers (list of
        [minScore, ratioBps]), minRatioBps, maxRatioBps, maxStepBps, topUpGraceSeconds,
        penaltyCritical, penaltyMajor, penaltyMinor, penaltyPerPpm, targetPpm,
        supplierResponseSeconds, labVerdictSeconds, disputeWindowSeconds, labFee.
        """
        d, p, t = self.deposit, self.penalties, self.deadlines
        return {
            "templateKey": "0x" + self.template_key().hex(),
            "version": self.version,
            "documentHash": "0x" + self.canonical_hash().hex(),
            "depositBase": d.base_amount,
            "initialRatioBps": d.initial_ratio_bps,
            "tiers": [[tier.min_score, tier.ratio_bps] for tier in d.tiers],
            "minRatioBps": d.min_ratio_bps,
            "maxRatioBps": d.max_ratio_bps,
            "maxStepBps": d.max_step_bps,
            "topUpGraceSeconds": d.top_up_grace_seconds,
            "penaltyCritical": p.per_batch["critical"],
            "penaltyMajor": p.per_batch["major"],
            "penaltyMinor": p.per_batch["minor"],
            "penaltyPerPpm": p.per_ppm_above_target,
            "targetPpm": p.target_ppm,
            "supplierResponseSeconds": t.supplier_response_seconds,
            "labVerdictSeconds": t.lab_verdict_seconds,
            "disputeWindowSeconds": t.dispute_window_seconds,
            "labFee": self.lab_fee,
        }


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "$"


def load_template(source: Mapping[str, Any] | str | bytes | Path) -> Template:
    """Validate a template from a dict, JSON text/bytes or a JSON file path; raise `TemplateError`.

    The error's ``problems`` carry one (field, message) per violation, e.g.
    ``characteristics[0]: characteristic 'bore_diameter': lsl 25.021 must be below usl 25``.
    """
    if isinstance(source, Path):
        try:
            source = source.read_bytes()
        except OSError as exc:
            raise TemplateError([TemplateProblem(field="$", message=f"cannot read template file: {exc}")]) from exc
    try:
        if isinstance(source, str | bytes):
            return Template.model_validate_json(source)
        return Template.model_validate(dict(source))
    except ValidationError as exc:
        problems = [
            TemplateProblem(field=_field_path(tuple(err["loc"])), message=err["msg"].removeprefix("Value error, "))
            for err in exc.errors(include_url=False)
        ]
        raise TemplateError(problems) from exc


def library_templates() -> dict[str, Template]:
    """All ready-made templates shipped in ``app/quality/library/``, keyed by file stem."""
    return {path.stem: load_template(path) for path in sorted(LIBRARY_DIR.glob("*.json"))}


def library_template(name: str) -> Template:
    """One library template by file stem (e.g. ``"battery_electrode_coating"``); `TemplateError` if absent."""
    path = LIBRARY_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in LIBRARY_DIR.glob("*.json")))
        raise TemplateError([TemplateProblem(field="$", message=f"no library template {name!r} (known: {known})")])
    return load_template(path)


def export_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the template document, as committed in ``schema/``."""
    return Template.model_json_schema(mode="validation")


def write_json_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write :func:`export_json_schema` as stable, indented JSON (regenerate after changing the model).

    ``.venv/bin/python -c "from app.quality import write_json_schema; write_json_schema()"``
    """
    path.write_text(json.dumps(export_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path
