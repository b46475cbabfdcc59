"""Where an extracted value came from: the file (by SHA-256) and the place inside it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Provenance", "SourceFile"]


class SourceFile(BaseModel):
    """The uploaded file a model was parsed from."""

    model_config = ConfigDict(frozen=True)

    sha256: str  # 0x-less lowercase hex of the exact bytes received
    size: int
    format: str  # detected format id: csv, json, xlsx, aqdef, qif, dcc, pdf
    filename: str | None = None
    media_type: str | None = None


class Provenance(BaseModel):
    """Location of one extracted field. Exactly the members that fit the format are set.

    - PDF: ``page`` (1-based) and ``bbox`` (x0, top, x1, bottom in PDF points, pdfplumber's convention)
    - XML: ``xpath``
    - tables (CSV/XLSX/AQDEF): ``row`` (1-based, header is row 1) and ``column`` (header name or letter)
    - JSON: ``pointer`` (RFC 6901 JSON pointer)
    """

    model_config = ConfigDict(frozen=True)

    file_sha256: str
    kind: Literal["pdf", "xml", "table", "json", "text"]
    page: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    xpath: str | None = None
    row: int | None = None
    column: str | None = None
    pointer: str | None = None
