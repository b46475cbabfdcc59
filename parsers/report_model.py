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
    "Field",
    "LabReport",
    "Method",
    "Party",
    "Person",
    "ReportDates",
    "ReportItem",
    "Result",
    "SchemaCheck",
    "SignatureInfo",
    "SignatureVerdict",
]

T = TypeVar("T")


class Field(BaseModel, Generic[T]):
    """One extracted value plus where it was found."""

    model_config = ConfigDict(frozen=True)

    value: T
    provenance: Provenance


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
    amends_report_id: Field[str] | None = None
    signature: SignatureInfo = PydanticField(default_factory=SignatureInfo)
    schema_check: SchemaCheck | None = None
    needs_ocr_pages: list[int] = PydanticField(default_factory=list)
    page_count: int | None = None
    warnings: list[str] = PydanticField(default_factory=list)

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
            if key in {"source", "signature", "schema_check", "warnings", "needs_ocr_pages", "provenance"}:
                continue
            _flatten(sub, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            _flatten(sub, f"{prefix}[{i}]", out)
