"""Specification limits: per-value verdicts, margins and process capability (Cp / Cpk).

A characteristic has a lower and/or upper specification limit (LSL/USL, inclusive: a value equal to a
limit passes) and optionally a nominal. :func:`check_value` gives ``pass`` / ``fail_low`` / ``fail_high``
plus signed margins (positive inside the tolerance, negative outside); :func:`capability` gives Cp/Cpk
of a sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from models.errors import InsufficientData, InvalidInput

__all__ = [
    "Capability",
    "SpecLimit",
    "ValueVerdict",
    "Verdict",
    "capability",
    "check_value",
    "check_values",
    "parse_spec",
]

Verdict = Literal["pass", "fail_low", "fail_high"]


class SpecLimit(BaseModel):
    """Limits of one characteristic. At least one of ``lsl``/``usl`` is required; ``lsl < usl``."""

    model_config = ConfigDict(frozen=True)

    characteristic: str
    lsl: float | None = None
    usl: float | None = None
    nominal: float | None = None
    unit: str | None = None

    @model_validator(mode="after")
    def _check(self) -> SpecLimit:
        if self.lsl is None and self.usl is None:
            raise ValueError(f"{self.characteristic}: at least one of lsl/usl is required")
        for name in ("lsl", "usl", "nominal"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"{self.characteristic}: {name} must be finite, got {v}")
        if self.lsl is not None and self.usl is not None and not self.lsl < self.usl:
            raise ValueError(f"{self.characteristic}: lsl ({self.lsl}) must be < usl ({self.usl})")
        if self.nominal is not None and (
            (self.lsl is not None and self.nominal < self.lsl) or (self.usl is not None and self.nominal > self.usl)
        ):
            raise ValueError(f"{self.characteristic}: nominal {self.nominal} lies outside [lsl, usl]")
        return self


class ValueVerdict(BaseModel):
    """Verdict of one value against its limits.

    ``margin_low = value - lsl`` and ``margin_high = usl - value`` (None when that limit is absent);
    ``margin`` is the smaller of the two: positive = inside by that much, negative = outside by that much.
    """

    model_config = ConfigDict(frozen=True)

    characteristic: str
    value: float
    verdict: Verdict
    margin_low: float | None
    margin_high: float | None
    margin: float


class Capability(BaseModel):
    """Capability of a sample; ``cp`` needs both limits, ``cpu``/``cpl`` need their limit."""

    model_config = ConfigDict(frozen=True)

    characteristic: str
    n: int
    mean: float
    std: float
    cp: float | None
    cpu: float | None
    cpl: float | None
    cpk: float


def parse_spec(spec: Mapping[str, Any]) -> dict[str, SpecLimit]:
    """Normalise ``{characteristic: SpecLimit | {"lsl", "usl", "nominal", "unit"}}`` to SpecLimits.

    Raises :class:`InvalidInput` naming the characteristic when an entry is invalid.
    """
    out: dict[str, SpecLimit] = {}
    for name, entry in spec.items():
        if isinstance(entry, SpecLimit):
            if entry.characteristic != name:
                raise InvalidInput(f"spec key {name!r} holds limits of {entry.characteristic!r}", field=name)
            out[name] = entry
            continue
        if not isinstance(entry, Mapping):
            raise InvalidInput(f"spec for {name!r} must be a mapping, got {type(entry).__name__}", field=name)
        try:
            out[name] = SpecLimit(characteristic=name, **{k: v for k, v in entry.items() if k != "characteristic"})
        except (ValidationError, TypeError) as exc:
            raise InvalidInput(f"invalid spec limits for {name!r}: {exc}", field=name) from exc
    return out


def _finite(value: float, characteristic: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"value {value!r} is not a number", field=characteristic) from exc
    if not math.isfinite(v):
        raise InvalidInput(f"value {v} is not finite", field=characteristic)
    return v


def check_value(value: float, limit: SpecLimit) -> ValueVerdict:
    """Verdict of ``value`` against ``limit`` (limits inclusive).

    Example: LSL 9.7, USL 10.5 -> 10.6 is ``fail_high`` with margin_high = -0.1, margin_low = 0.9.
    """
    v = _finite(value, limit.characteristic)
    low = None if limit.lsl is None else v - limit.lsl
    high = None if limit.usl is None else limit.usl - v
    verdict: Verdict = "pass"
    if low is not None and low < 0:
        verdict = "fail_low"
    elif high is not None and high < 0:
        verdict = "fail_high"
    margin = min(m for m in (low, high) if m is not None)
    return ValueVerdict(
        characteristic=limit.characteristic,
        value=v,
        verdict=verdict,
        margin_low=low,
        margin_high=high,
        margin=margin,
    )


def check_values(values: Iterable[float], limit: SpecLimit) -> list[ValueVerdict]:
    """:func:`check_value` for each value, in order."""
    return [check_value(v, limit) for v in values]


def capability(values: Iterable[float], limit: SpecLimit, *, sigma: float | None = None) -> Capability:
    """Cp/Cpk of a sample against ``limit``.

    With mean ``μ`` and standard deviation ``σ`` (sample std, ddof = 1, unless ``sigma`` is given,
    e.g. the within-subgroup sigma MR̄/d2 from :mod:`models.spc`)::

        Cp  = (USL - LSL) / (6σ)
        CPU = (USL - μ) / (3σ)      CPL = (μ - LSL) / (3σ)
        Cpk = min(CPU, CPL)         (only the side(s) with a limit)

    With the sample std this is strictly the *performance* index (Pp/Ppk in AIAG terms); pass the
    within-subgroup sigma to get the capability index proper.

    Worked example: values 9.9, 10.0, 10.1, 10.0, 10.0, LSL 9.7, USL 10.5:
    μ = 10.0, σ = sqrt((0.01 + 0 + 0.01 + 0 + 0) / 4) = 0.070711;
    Cp = 0.8 / 0.424264 = 1.8856; CPU = 0.5 / 0.212132 = 2.3570; CPL = 0.3 / 0.212132 = 1.4142;
    Cpk = 1.4142.

    Raises :class:`InsufficientData` for fewer than 2 values and :class:`InvalidInput` when σ is 0.
    """
    arr = np.array([_finite(v, limit.characteristic) for v in values], dtype=float)
    if arr.size < 2:
        raise InsufficientData(2, int(arr.size), f"values of {limit.characteristic} for capability")
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if sigma is None else float(sigma)
    if not std > 0:
        raise InvalidInput(f"standard deviation is {std}: capability is undefined", field=limit.characteristic)
    cpu = None if limit.usl is None else (limit.usl - mean) / (3 * std)
    cpl = None if limit.lsl is None else (mean - limit.lsl) / (3 * std)
    cp = None if limit.lsl is None or limit.usl is None else (limit.usl - limit.lsl) / (6 * std)
    cpk = min(c for c in (cpu, cpl) if c is not None)
    return Capability(
        characteristic=limit.characteristic,
        n=int(arr.size),
        mean=mean,
        std=std,
        cp=cp,
        cpu=cpu,
        cpl=cpl,
        cpk=cpk,
    )
