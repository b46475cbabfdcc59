"""Analysis errors as gateway errors (:class:`app.errors.AppError` subclasses), and the one translation of
:class:`models.errors.ModelError` into them::

    AppError
    ├── AnalysisNotReady      409: not enough stored data for this analysis yet ("insufficient data", needed/got)
    └── AnalysisInputError    422: the model refused the input (unknown variable, invalid input ...)
"""

from __future__ import annotations

from typing import Any

from app.errors import AppError, ServiceUnavailable
from models.errors import InsufficientData, ModelError, ModelIntegrityError

__all__ = ["AnalysisInputError", "AnalysisNotReady", "translate_model_error"]


class AnalysisNotReady(AppError):
    """Too little stored data for the requested analysis; the body says what is needed and what exists."""

    status = 409
    code = "insufficient_data"


class AnalysisInputError(AppError):
    """The analysis models rejected the input; ``model_code`` is the model error's code."""

    status = 422
    code = "invalid_analysis_input"


def translate_model_error(exc: ModelError) -> AppError:
    """Map a model error to the gateway error the API returns (raise it ``from exc``)."""
    facts: dict[str, Any] = {k: v for k, v in exc.facts.items() if v is not None}
    if isinstance(exc, InsufficientData):
        return AnalysisNotReady(exc.message, **facts)
    if isinstance(exc, ModelIntegrityError):
        return ServiceUnavailable(exc.message, **facts)
    return AnalysisInputError(exc.message, model_code=exc.code, **facts)
