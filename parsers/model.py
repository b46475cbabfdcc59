"""The normalised inspection model every tabular/measurement parser produces.

``InspectionBatch.records()`` gives the canonical record dicts the gateway hashes (RFC 8785) and anchors:
one per measurement, plain JSON scalars only, in file order. Provenance is kept on the models but never
enters a record, so re-exporting the same data in another format yields the same records.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

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
]

Tier = Literal["material", "equipment", "process", "environment"]
TIERS: tuple[str, ...] = ("material", "equipment", "process", "environment")


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
