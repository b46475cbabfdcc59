"""Per-file resource limits. The gateway builds one from its settings; tests pass small ones."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Limits"]


class Limits(BaseModel):
    """Bounds applied while parsing one file; exceeding any raises :class:`parsers.errors.LimitExceeded`."""

    model_config = ConfigDict(frozen=True)

    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 500
    max_rows: int = 1_000_000
    max_seconds: float = 60.0
    max_uncompressed_bytes: int = 200 * 1024 * 1024  # XLSX / zip members
    max_compression_ratio: float = 200.0
    max_xml_depth: int = 200
    max_json_depth: int = 64  # nesting of objects/arrays in JSON uploads
    # what parsing one file may add to the worker's address space; enforced only by parsers.guarded
    max_memory_bytes: int = 1024 * 1024 * 1024
