"""Bounded input types shared by the routers, and the file-name sanitiser.

Every path, query and body field gets bounds that fit what stores or uses it: integer ids fit a 32-bit
``INTEGER`` column on PostgreSQL, offsets and limits are capped, references (uuid, 0x id, row id) have a
length and an alphabet, amounts fit a ``uint256``, floats are finite, and strings never carry NUL (which
PostgreSQL text columns refuse).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated
from urllib.parse import quote

from fastapi import Path, Query
from pydantic import AfterValidator, Field

__all__ = [
    "MAX_FILENAME",
    "UINT256_MAX",
    "DbId",
    "FiniteFloat",
    "Limit",
    "Offset",
    "Ref",
    "RefPath",
    "SafeText",
    "Uint256",
    "attachment",
    "is_row_id",
    "no_nul",
    "safe_filename",
]

INT32_MAX = 2**31 - 1
UINT256_MAX = 2**256 - 1
MAX_FILENAME = 200


def no_nul(value: str) -> str:
    """Refuse NUL: PostgreSQL cannot store it in text and no qcn field needs it."""
    if "\x00" in value:
        raise ValueError("NUL characters are not accepted")
    return value


# a row id as stored (INTEGER primary keys)
DbId = Annotated[int, Path(ge=1, le=INT32_MAX)]
Offset = Annotated[int, Query(ge=0, le=INT32_MAX)]
Limit = Annotated[int, Query(ge=1, le=500)]
# uuid (36), on-chain 0x bytes32 (66) or a decimal row id
_REF_PATTERN = r"^(0x[0-9a-fA-F]{1,64}|[0-9]{1,10}|[0-9a-fA-F-]{36})$"
RefPath = Annotated[str, Path(min_length=1, max_length=66, pattern=_REF_PATTERN)]
Ref = Annotated[str, Field(min_length=1, max_length=66, pattern=_REF_PATTERN)]
Uint256 = Annotated[int, Field(ge=0, le=UINT256_MAX)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
SafeText = Annotated[str, AfterValidator(no_nul)]


def is_row_id(ref: str) -> bool:
    """A decimal row id that fits the INTEGER column (``'³'.isdigit()`` is True, so check ASCII too)."""
    return ref.isascii() and ref.isdigit() and 0 < len(ref) <= 10 and int(ref) <= INT32_MAX


_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>:\"|?*]")


def attachment(name: str) -> str:
    """``Content-Disposition`` for a download named ``name`` in any script (RFC 6266 / RFC 5987).

    HTTP headers are latin-1, so ``8D-报告.txt`` goes in ``filename*`` (UTF-8, percent-encoded) with an ASCII
    fallback in ``filename`` for old clients; quotes, backslashes and control characters never reach the header.
    """
    clean = _UNSAFE.sub("_", name).replace("\\", "_") or "download"
    fallback = clean.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(clean, safe='')}"


def safe_filename(name: str | None) -> str | None:
    """The base name of an uploaded file, without directories, control characters or a leading dot run.

    ``../../etc/passwd`` -> ``passwd``; ``C:\\x\\report.pdf`` -> ``report.pdf``; names longer than
    :data:`MAX_FILENAME` characters keep their extension and lose the middle. Nothing usable -> ``None``.
    """
    if name is None:
        return None
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip().lstrip(".")
    if not base:
        return None
    if len(base) > MAX_FILENAME:
        stem, dot, ext = base.rpartition(".")
        ext = ext if dot and 0 < len(ext) <= 16 else ""
        keep = MAX_FILENAME - len(ext) - (1 if ext else 0)
        base = (stem if ext else base)[:keep] + ("." + ext if ext else "")
    return base
