"""Normalised ISO/IEC 17025:2017 (clause 7.8) lab report model shared by the PDF and DCC parsers.

Every extracted value is wrapped in :class:`Field` so the API can show where it came from::

    report.report_id.value        -> "PTB - 11044 17"
    report.report_id.provenance   -> Provenance(kind="pdf", page=1, bbox=(...))  or  (kind="xml", xpath="/...")

Plain values (lists, verdicts, warnings) that are not read from one place in the file are not wrapped.
``LabReport.to_public_dict()`` gives a JSON-able, key-sorted form (stable input for hashing / RFC 8785).
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField

from parsers.provenance import Provenance, SourceFile
from parsers.signature_model import SignatureInfo, SignatureVerdict

__all__ = [
    "Accreditation",
    "Field",
    "LabReport",
    "Method",
    "Party",
    "Person",
    "ReportDates",
    "ReportItem",
    "Result",
    "Review",
    "SchemaCheck",
    "SignatureInfo",
    "SignatureVerdict",
    "labreport_json_schema",
]

T = TypeVar("T")


class Field(BaseModel, Generic[T]):
    """One extracted value plus where it was found."""

    model_config = ConfigDict(frozen=True)

    value: T
    provenance: Provenance
    # 0..1: how sure the extractor is (label matched on the same line > label above > value shape only);
    # None where the source is structured (DCC XML) and the value is read, not guessed
    confidence: float | None = PydanticField(default=None, ge=0.0, le=1.0)


class Party(BaseModel):
    """A laboratory or a customer: name and (free-text) address."""

    name: Field[str] | None = None
    address: Field[str] | None = None


class Method(BaseModel):
    """A test/calibration method: its name and the standard it follows (e.g. ``ISO 6892-1:2019``)."""

    name: Field[str] | None = None
    standard: Field[str] | None = None


class ReportItem(BaseModel):
    """The item tested or calibrated (ISO/IEC 17025 7.8.2.1 f)."""

    id: Field[str] | None = None
    description: Field[str] | None = None
    condition: Field[str] | None = None


class ReportDates(BaseModel):
    """ISO-8601 dates (``YYYY-MM-DD``) as far as the report states them."""

    receipt: Field[str] | None = None
    sampling: Field[str] | None = None
    performance_start: Field[str] | None = None
    performance_end: Field[str] | None = None
    issue: Field[str] | None = None


class Result(BaseModel):
    """One reported result: characteristic, value, unit, expanded uncertainty and optional verdict."""

    quantity: Field[str]
    value: Field[str]  # kept as the literal text (decimal separator normalised to '.'), never a float
    unit: Field[str] | None = None
    uncertainty: Field[str] | None = None
    coverage_factor: Field[str] | None = None
    coverage_probability: Field[str] | None = None
    verdict: Field[str] | None = None  # "pass" / "fail" / as printed when unknown
    sample_id: Field[str] | None = None
    external_provider: bool = False  # result produced by an external provider (7.8.2.1 marked results)
    method: Field[str] | None = None  # test method / standard of this row (a merged cell repeats it)
    limit_text: Field[str] | None = None  # the requirement as printed ("≤ 1000", "0.5-1.5", "Negative")
    lower_limit: Field[str] | None = None  # numeric lower limit read from the limit or an LSL column
    upper_limit: Field[str] | None = None  # numeric upper limit read from the limit or a USL column
    mdl: Field[str] | None = None  # method detection / reporting limit (MDL, LOD, LOQ, RL)
    test_part: Field[str] | None = None  # section or tested part the row belongs to (carried across pages)


class Accreditation(BaseModel):
    """The issuing laboratory's own accreditation (not a CMA licence, not a reference standard's lab)."""

    body: Field[str]  # "CNAS", "A2LA", "UKAS", "DAkkS", "HOKLAS", "SWEDAC", "PJLA", ...
    id: Field[str]  # "L1234", "1234.01", "D-K-15183-01-00", ...


class Review(BaseModel):
    """Whether a person must look at this extraction before it is trusted, and why."""

    required: bool = False
    reasons: list[str] = PydanticField(default_factory=list)
    confidence: float | None = None  # mean confidence of the extracted fields and rows (PDF only)


class Person(BaseModel):
    """A person authorising the report, with role when stated."""

    name: Field[str]
    role: Field[str] | None = None


class SchemaCheck(BaseModel):
    """Schema validation state of an XML report: ``valid`` or ``not_validated`` (unknown schema version)."""

    schema_name: str
    version: str | None
    status: Literal["valid", "not_validated"]


class LabReport(BaseModel):
    """A lab report (test report or calibration certificate) normalised to ISO/IEC 17025:2017 clause 7.8."""

    source: SourceFile
    format: Literal["pdf", "dcc"]
    layout_profile: str | None = None  # PDF layout profile used (e.g. "ptb_calibration", "generic")
    title: Field[str] | None = None
    report_id: Field[str] | None = None
    lab: Party = PydanticField(default_factory=Party)
    location: Field[str] | None = None  # where the lab activity was performed
    customer: Party = PydanticField(default_factory=Party)
    methods: list[Method] = PydanticField(default_factory=list)
    items: list[ReportItem] = PydanticField(default_factory=list)
    dates: ReportDates = PydanticField(default_factory=ReportDates)
    sampling_plan: Field[str] | None = None
    results: list[Result] = PydanticField(default_factory=list)
    conformity_statement: Field[str] | None = None
    decision_rule: Field[str] | None = None
    deviations: list[Field[str]] = PydanticField(default_factory=list)
    authorised_by: list[Person] = PydanticField(default_factory=list)
    external_providers: list[Field[str]] = PydanticField(default_factory=list)
    amends_report_id: Field[str] | None = None  # the superseded report's number (amended reports)
    accreditation: Accreditation | None = None
    signature: SignatureInfo = PydanticField(default_factory=SignatureInfo)
    schema_check: SchemaCheck | None = None
    needs_ocr_pages: list[int] = PydanticField(default_factory=list)
    page_count: int | None = None
    warnings: list[str] = PydanticField(default_factory=list)
    review: Review = PydanticField(default_factory=Review)
    ocr_pages: list[int] = PydanticField(default_factory=list)  # pages read by OCR (Tesseract)

    def to_public_dict(self) -> dict[str, Any]:
        """JSON-able dict (no ``None`` members), suitable for API output and canonical JSON hashing."""
        return self.model_dump(mode="json", exclude_none=True)

    def flat_values(self) -> dict[str, str]:
        """Flatten the extracted values to ``{"dates.issue": "2024-03-01", "results[0].value": "12.5", ...}``.

        Used by the accuracy measurement and handy in tests; only ``Field`` values are included.
        """
        out: dict[str, str] = {}
        _flatten(self.model_dump(mode="json", exclude_none=True), "", out)
        return out


def _flatten(node: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(node, dict):
        if set(node) >= {"value", "provenance"} and not isinstance(node["value"], dict | list):
            out[prefix] = str(node["value"])
            return
        for key, sub in node.items():
            if key in {
                "source",
                "signature",
                "schema_check",
                "warnings",
                "needs_ocr_pages",
                "provenance",
                "review",
                "confidence",
                "ocr_pages",
            }:
                continue
            _flatten(sub, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            _flatten(sub, f"{prefix}[{i}]", out)


def labreport_json_schema() -> dict[str, Any]:
    """JSON Schema of what ``LabReport.to_public_dict()`` (and ``qcn parse`` for a report) prints."""
    schema = LabReport.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://qcn.example/labreport.schema.json"
    return schema
