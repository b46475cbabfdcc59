"""Errors raised by the parsers.

Every parser failure is a :class:`ParseError`; the gateway maps the whole tree to HTTP 4xx in one place::

    ParseError                      the file cannot be turned into the normalised model
    ├── UnsupportedFormat           content matches no known format (or not the one asked for)
    ├── MalformedInput              syntax/structure is broken (row, column, xpath, page say where)
    │   └── SchemaViolation         well-formed, but invalid against the format's schema (e.g. DCC XSD)
    ├── MissingField                a required field/column is absent
    ├── UnexpectedField             a field/column the format does not know
    ├── InvalidValue                a value has the wrong type/unit/range
    ├── EmptyInput                  no data rows / no results
    ├── HostileInput                entity expansion, external entities, zip bombs, recursive xref ...
    ├── LimitExceeded               a configured limit (size, pages, rows, time, memory) was exceeded
    ├── PasswordProtected           the file is encrypted with a password (PDF); we cannot read it
    └── NeedsOCR                    a PDF page has no text layer (scanned); we refuse to guess
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EmptyInput",
    "HostileInput",
    "InvalidValue",
    "LimitExceeded",
    "MalformedInput",
    "MissingField",
    "NeedsOCR",
    "ParseError",
    "PasswordProtected",
    "SchemaViolation",
    "UnexpectedField",
    "UnsupportedFormat",
]


class ParseError(Exception):
    """Root of all parser errors; carries where the problem is (``location``) and extra structured facts."""

    code = "parse_error"

    def __init__(self, message: str, *, location: str | None = None, **facts: Any) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.facts = facts

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for API error bodies."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.location is not None:
            out["location"] = self.location
        out.update({k: v for k, v in self.facts.items() if v is not None})
        return out

    def __str__(self) -> str:
        return f"{self.message} (at {self.location})" if self.location else self.message


class UnsupportedFormat(ParseError):
    code = "unsupported_format"


class MalformedInput(ParseError):
    code = "malformed_input"


class SchemaViolation(MalformedInput):
    code = "schema_violation"


class MissingField(ParseError):
    code = "missing_field"


class UnexpectedField(ParseError):
    code = "unexpected_field"


class InvalidValue(ParseError):
    code = "invalid_value"


class EmptyInput(ParseError):
    code = "empty_input"


class HostileInput(ParseError):
    code = "hostile_input"


class LimitExceeded(ParseError):
    """A configured limit was exceeded; ``limit`` names it (e.g. ``max_pages``), ``value`` the allowed bound."""

    code = "limit_exceeded"

    def __init__(self, message: str, *, limit: str, allowed: Any, actual: Any = None, **facts: Any) -> None:
        super().__init__(message, limit=limit, allowed=allowed, actual=actual, **facts)
        self.limit = limit
        self.allowed = allowed
        self.actual = actual


class PasswordProtected(ParseError):
    code = "password_protected"


class NeedsOCR(ParseError):
    code = "needs_ocr"
