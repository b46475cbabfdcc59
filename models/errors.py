"""Errors raised by the analysis models.

Every failure in ``models`` is a :class:`ModelError`; the gateway maps the whole tree in one place::

    ModelError                      analysis could not produce a result
    ├── NotFittedError              score/predict/query called before fit (or load)
    ├── InsufficientData            too few rows/points for the requested analysis (needed, got, what)
    ├── UnknownVariable             a variable/characteristic/feature name the model does not know (name)
    ├── InvalidInput                input has the wrong shape, type, missing/extra column, NaN ... (field)
    └── ModelIntegrityError         model file differs from its recorded SHA-256 (path, expected, actual)

Each error carries structured facts as attributes and in :meth:`ModelError.to_dict`, so an API error body
can name the offending field/variable without parsing the message.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "InsufficientData",
    "InvalidInput",
    "ModelError",
    "ModelIntegrityError",
    "NotFittedError",
    "UnknownVariable",
]


class ModelError(Exception):
    """Root of all analysis-model errors; ``facts`` holds the structured details."""

    code = "model_error"

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.message = message
        self.facts = facts

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for API error bodies: ``{"code", "message", **facts}``."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        out.update({k: v for k, v in self.facts.items() if v is not None})
        return out

    def __str__(self) -> str:
        return self.message


class NotFittedError(ModelError):
    """The model was used (score/predict/query) before :meth:`fit` or loading."""

    code = "not_fitted"

    def __init__(self, model: str = "model", message: str | None = None) -> None:
        super().__init__(message or f"{model} is not fitted: call fit() (or load a fitted model) first", model=model)
        self.model = model


class InsufficientData(ModelError):
    """Too little data: ``needed`` items of kind ``what`` were required, ``got`` were given."""

    code = "insufficient_data"

    def __init__(self, needed: int, got: int, what: str = "rows", message: str | None = None) -> None:
        super().__init__(
            message or f"insufficient data: need at least {needed} {what}, got {got}",
            needed=needed,
            got=got,
            what=what,
        )
        self.needed = needed
        self.got = got
        self.what = what


class UnknownVariable(ModelError):
    """A variable / characteristic / feature ``name`` that the model does not know."""

    code = "unknown_variable"

    def __init__(self, name: str, message: str | None = None, *, known: list[str] | None = None) -> None:
        msg = message or f"unknown variable {name!r}"
        if message is None and known:
            msg += f" (known: {', '.join(sorted(known))})"
        super().__init__(msg, name=name, known=known)
        self.name = name
        self.known = known


class InvalidInput(ModelError):
    """Input is malformed; ``field`` names the offending column/feature/parameter when there is one."""

    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{message} [field: {field}]", field=field)
        self.field = field


class ModelIntegrityError(ModelError):
    """A stored model file's SHA-256 differs from the one recorded in its metadata."""

    code = "model_integrity"

    def __init__(self, path: str, expected: str, actual: str, message: str | None = None) -> None:
        super().__init__(
            message or f"model file {path} has sha256 {actual}, expected {expected}: refusing to load",
            path=path,
            expected=expected,
            actual=actual,
        )
        self.path = path
        self.expected = expected
        self.actual = actual
