"""The normalised inspection model every tabular/measurement parser produces.

``InspectionBatch.records()`` gives the canonical record dicts the gateway hashes (RFC 8785) and anchors:
one per measurement, plain JSON scalars only, in file order. Provenance is kept on the models but never
enters a record, so re-exporting the same data in another format yields the same records.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from parsers.provenance import Provenance, SourceFile

__all__ = [
    "TIERS",
    "CharacteristicSpec",
    "InspectionBatch",
    "Measurement",
    "ParsedFile",
    "ProcessValue",
    "Tier",
    "trusted",
]

Tier = Literal["material", "equipment", "process", "environment"]
TIERS: tuple[str, ...] = ("material", "equipment", "process", "environment")


_M = TypeVar("_M", bound=BaseModel)
_object_new = object.__new__
# the slots a validated instance has set (pydantic.BaseModel.__slots__), written directly: cheaper than
# object.__setattr__, which looks each name up again
_set_dict, _set_fields_set, _set_extra, _set_private = (
    BaseModel.__dict__[name].__set__
    for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
)


def trusted(cls: type[_M], values: dict[str, Any], fields_set: set[str]) -> _M:
    """An instance of the frozen model ``cls`` from ``values`` that already passed every check validation makes.

    No validation runs: the caller guarantees ``values`` holds every field, in declaration order, with
    exactly the objects validation would have produced, and gives the ``fields_set`` a validating call
    would have recorded. The result then equals, dumps and prints like the validated instance
    (tests/parsers/test_table_fast_path.py holds the table parser to this) at a fraction of the cost, which
    is what a 100k-row table needs. ``values`` is kept, not copied. ``fields_set`` may be one set shared by
    many instances: pydantic changes it only on assignment, which a frozen model refuses, and copies it
    first in ``model_copy``.
    """
    m = _object_new(cls)
    _set_dict(m, values)
    _set_fields_set(m, fields_set)
    _set_extra(m, None)
    _set_private(m, None)
    return m


def _finite(v: float | None) -> float | None:
    if v is not None and not math.isfinite(v):
        raise ValueError("must be a finite number (NaN/Infinity are not measurements)")
    return v


class Measurement(BaseModel):
    """One measured value of one characteristic on one sample."""

    model_config = ConfigDict(frozen=True)

    sample_id: str = Field(min_length=1)
    characteristic: str = Field(min_length=1)
    value: float
    unit: str
    uncertainty: float | None = Field(default=None, ge=0)
    coverage_factor: float | None = Field(default=None, gt=0)
    measured_at: datetime | None = None
    provenance: Provenance
    # declared free-text fields (operator, gauge_id, status ...)
    extra: dict[str, str] = Field(default_factory=dict)

    _v_value = field_validator("value", "uncertainty", "coverage_factor")(_finite)

    def record(self) -> dict[str, Any]:
        """Canonical record dict (plain JSON scalars, no provenance) for hashing/anchoring."""
        return {
            "sample": self.sample_id,
            "characteristic": self.characteristic,
            "value": self.value,
            "unit": self.unit,
            "uncertainty": self.uncertainty,
            "coverage_factor": self.coverage_factor,
            "measured_at": self.measured_at.isoformat() if self.measured_at is not None else None,
        }


class ProcessValue(BaseModel):
    """A process/material/equipment/environment variable linked to a batch (or one sample of it)."""

    model_config = ConfigDict(frozen=True)

    variable: str = Field(min_length=1)
    tier: Tier
    value: float
    unit: str | None = None
    sample_id: str | None = None  # None = applies to the whole batch
    provenance: Provenance

    _v_value = field_validator("value")(_finite)


class CharacteristicSpec(BaseModel):
    """What a format declares about a characteristic (AQDEF K2xxx, QIF nominals); all optional."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str | None = None
    nominal: float | None = None
    lower_limit: float | None = None
    upper_limit: float | None = None
    unit: str | None = None
    provenance: Provenance | None = None


class InspectionBatch(BaseModel):
    """All measurements (and/or process values) of one uploaded inspection file."""

    part_number: str | None = None
    part_revision: str | None = None
    lot_id: str | None = None
    lot_size: int | None = Field(default=None, ge=0)
    measurements: list[Measurement] = Field(default_factory=list)
    process: list[ProcessValue] = Field(default_factory=list)
    # declared characteristics keyed by name (filled by AQDEF/QIF; empty for CSV/JSON/XLSX)
    characteristics: dict[str, CharacteristicSpec] = Field(default_factory=dict)
    source: SourceFile
    warnings: list[str] = Field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """Canonical record dicts, one per measurement, in file order (deterministic for the same input).

        Keys: sample, characteristic, value, unit, uncertainty, coverage_factor, measured_at (ISO 8601 or
        None). Values are str/float/None only, ready for RFC 8785 canonicalisation.
        """
        return [m.record() for m in self.measurements]


class ParsedFile(BaseModel):
    """Result of :func:`parsers.parse`: either an inspection batch or a lab report."""

    kind: Literal["inspection", "report"]
    format: str
    source: SourceFile
    inspection: InspectionBatch | None = None
    report: Any | None = None  # parsers.report_model.LabReport
