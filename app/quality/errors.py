"""Errors of the quality package (templates, ISO 2859-1 sampling, batch acceptance).

One root, subclasses carrying the structured facts a caller (the gateway) maps to a 4xx::

    QualityError
     +-- TemplateError (ValueError)            template document invalid; ``problems`` lists field + message
     +-- SamplingError (ValueError)            no ISO 2859-1 plan for the request
     |    +-- UnknownInspectionLevelError      level not in S-1..S-4, I, II, III
     |    +-- UnknownAQLError                  AQL not one of the preferred values of Table 2-A
     |    +-- LotSizeError                     lot size < 1
     +-- AssessmentInputError (ValueError)     batch cannot be assessed (no measurements, bad lot size ...)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AssessmentInputError",
    "LotSizeError",
    "QualityError",
    "SamplingError",
    "TemplateError",
    "TemplateProblem",
    "UnknownAQLError",
    "UnknownInspectionLevelError",
]


class QualityError(Exception):
    """Root of every error raised by :mod:`app.quality`."""


@dataclass(frozen=True)
class TemplateProblem:
    """One validation problem of a template: ``field`` is a dotted path such as ``characteristics[1].lsl``."""

    field: str
    message: str


class TemplateError(QualityError, ValueError):
    """A template document is invalid; ``problems`` names every offending field."""

    def __init__(self, problems: Sequence[TemplateProblem]) -> None:
        self.problems = list(problems)
        text = "; ".join(f"{p.field}: {p.message}" for p in self.problems) or "invalid template"
        super().__init__(f"invalid quality template: {text}")


class SamplingError(QualityError, ValueError):
    """No ISO 2859-1 sampling plan can be determined for the request."""


class UnknownInspectionLevelError(SamplingError):
    """The inspection level is not one of S-1, S-2, S-3, S-4, I, II, III."""

    def __init__(self, level: object) -> None:
        super().__init__(f"unknown inspection level {level!r}; expected one of S-1, S-2, S-3, S-4, I, II, III")
        self.level = level


class UnknownAQLError(SamplingError):
    """The AQL is not one of the preferred AQL values that index ISO 2859-1 Table 2-A."""

    def __init__(self, aql: object, allowed: Sequence[float]) -> None:
        allowed_text = ", ".join(f"{a:g}" for a in allowed)
        super().__init__(f"AQL {aql!r} is not a preferred ISO 2859-1 AQL value ({allowed_text})")
        self.aql = aql


class LotSizeError(SamplingError):
    """The lot size is not a positive integer."""

    def __init__(self, lot_size: object) -> None:
        super().__init__(f"lot size must be a positive integer, got {lot_size!r}")
        self.lot_size = lot_size


class AssessmentInputError(QualityError, ValueError):
    """The batch handed to the assessment cannot be assessed; ``field`` names the offending input."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
