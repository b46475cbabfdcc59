"""RFC 8785 (JSON Canonicalization Scheme) bytes and SHA-256 digests of measurement records.

`canonical_bytes` has a fast path for the record shapes qcn produces (objects and arrays of
str/int/float/bool/None, nested or flat) that is byte-identical to the reference `rfc8785`
package (property-tested in tests/chain/test_canonical.py). Anything else (subclasses of the
JSON types, tuples, non-ASCII keys with odd ordering, ...) falls back to `rfc8785` itself.

`canonical_json` / `json_sha256` are the one canonical-JSON hash of qcn, versioned by `HashFormat`: documents
hashed before RFC 8785 was used everywhere carry (or are stored with) `HashFormat.LEGACY_JSON` and still
verify; everything new is `HashFormat.RFC8785`.

This module also holds the root of the proof-side exception tree (apart from `chain.errors.ChainError`:
records, trees and proofs are checked without web3 or a node)::

    ProofError
     +-- CanonicalizationError (ValueError)       record cannot be canonicalised
     |    +-- NonFiniteNumberError                 NaN / +-Infinity (JSON has no such numbers)
     |    +-- IntegerRangeError                    |int| > 2**53 - 1 (not exact in an IEEE double)
     |    +-- UnsupportedValueError                non-JSON type, non-str key, lone surrogate
     +-- MerkleError (ValueError)                 chain.merkle
     +-- ProofFormatError (ValueError)            chain.proof
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from enum import StrEnum
from json.encoder import encode_basestring  # C-accelerated, escapes exactly like RFC 8785
from typing import TYPE_CHECKING, Any

import rfc8785

if TYPE_CHECKING:  # numpy loads with the first column hashed, not with this module
    import numpy as np

__all__ = [
    "CURRENT_HASH_FORMAT",
    "CanonicalizationError",
    "HashFormat",
    "IntegerRangeError",
    "NonFiniteNumberError",
    "ProofError",
    "UnsupportedValueError",
    "canonical_bytes",
    "canonical_json",
    "json_sha256",
    "number_text",
    "number_texts",
    "record_digest",
    "record_digests",
    "sha256",
    "string_text",
]

_INT_MAX = 2**53 - 1
_INT_MIN = -(2**53) + 1


class ProofError(Exception):
    """Root of all errors raised by qcn's records, Merkle trees and portable proofs."""


class CanonicalizationError(ProofError, ValueError):
    """A record cannot be turned into RFC 8785 canonical JSON; `path` names the offending value."""

    def __init__(self, message: str, *, path: str = "$") -> None:
        super().__init__(f"{message} (at {path})")
        self.path = path


class NonFiniteNumberError(CanonicalizationError):
    """NaN or Infinity: RFC 8785 / I-JSON numbers must be finite."""

    def __init__(self, value: float, *, path: str = "$") -> None:
        super().__init__(f"{value!r} is not a finite number and cannot appear in a record", path=path)
        self.value = value


class IntegerRangeError(CanonicalizationError):
    """An integer outside +-(2**53 - 1): JSON numbers are IEEE doubles, so it would lose precision."""

    def __init__(self, value: int, *, path: str = "$") -> None:
        super().__init__(
            f"integer {value} is outside the exact IEEE-754 range +-(2**53-1); send it as a string",
            path=path,
        )
        self.value = value


class UnsupportedValueError(CanonicalizationError):
    """A value that is not JSON (e.g. bytes, a set, a non-string key, an unpaired surrogate)."""


class _Unusual(Exception):  # internal control flow: leave the fast path
    pass


# The records of a batch share a few key sets ("shapes"). For each shape cache the sorted keys
# with the text that precedes each value: '{"batch":', ',"sample":', ...
_PLANS: dict[tuple[Any, ...], tuple[tuple[str, str], ...]] = {}
_PLANS_MAX = 1024


def _plan(shape: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
    if not all(type(k) is str and k.isascii() for k in shape):
        # Non-str keys are an error and non-ASCII keys sort by UTF-16 units: both go to rfc8785.
        raise _Unusual
    keys = sorted(shape)
    plan = tuple((k, ("{" if i == 0 else ",") + encode_basestring(k) + ":") for i, k in enumerate(keys))
    if len(_PLANS) < _PLANS_MAX:
        _PLANS[shape] = plan
    return plan


def _float_text(f: float, path: str) -> str:
    """ECMAScript Number::toString of a finite double, as RFC 8785 3.2.2.3 requires."""
    r = repr(f)
    if "e" not in r:
        # Python uses fixed notation only for 1e-4 <= |f| < 1e16, a subset of ECMAScript's
        # fixed range, and both print the shortest round-tripping digits.
        if r.endswith(".0"):
            r = r[:-2]
            return "0" if r == "-0" else r
        if r == "nan" or r.endswith("inf"):
            raise NonFiniteNumberError(f, path=path)
        return r
    sign = ""
    if r[0] == "-":
        sign, r = "-", r[1:]
    mantissa, _, exp = r.partition("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    k = len(digits)
    n = int(exp) + 1  # value = 0.digits * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exp_text = f"e+{e}" if e > 0 else f"e-{-e}"
    if k == 1:
        return sign + digits + exp_text
    return sign + digits[0] + "." + digits[1:] + exp_text


def number_text(value: float) -> str:
    """RFC 8785 text of a finite float (ECMAScript Number::toString); NaN/Infinity raise NonFiniteNumberError."""
    text = repr(value)
    if "e" in text or text.endswith(".0") or text[-1] in "nf":
        text = _float_text(value, "$")
    return text


def number_texts(values: np.ndarray) -> list[str]:
    """:func:`number_text` of each value of a float64 numpy array (a column of observations). ``repr`` already is
    that text for a finite value with a fraction and a magnitude in [1e-3, 1e15) (fixed notation, no trailing
    ``.0``); the column is sorted into those by numpy and only the others take the full path: ~half the CPU of a
    call per value. NaN/Infinity raise NonFiniteNumberError as there."""
    import numpy as np

    texts = list(map(repr, values.tolist()))
    magnitude = np.abs(values)
    full = ~np.isfinite(values) | (values == np.trunc(values)) | (magnitude < 1e-3) | (magnitude >= 1e15)
    for i in np.flatnonzero(full).tolist():
        texts[i] = number_text(float(values[i]))
    return texts


#: RFC 8785 text of a string (JSON escapes exactly as JSON.stringify: C-accelerated)
string_text = encode_basestring


def _fast(obj: Any, path: str) -> str:
    """Canonical JSON text of `obj`; raises `_Unusual` for anything outside the fast path."""
    t = type(obj)
    if t is dict:
        if not obj:
            return "{}"
        shape = tuple(obj)
        plan = _PLANS.get(shape)
        if plan is None:
            plan = _plan(shape)
        parts: list[str] = []
        append = parts.append
        for key, prefix in plan:
            value = obj[key]
            append(prefix)
            tv = type(value)
            if tv is str:
                append(encode_basestring(value))
            elif tv is float:
                text = repr(value)
                # the common case inline: fixed notation with a fraction ("85.7729") is already ECMAScript's text;
                # integral values, exponents, NaN and infinities ("nan", "inf" end in a letter) take the full path
                if "e" in text or text.endswith(".0") or text[-1] in "nf":
                    text = _float_text(value, f"{path}.{key}")
                append(text)
            elif tv is int:
                if value > _INT_MAX or value < _INT_MIN:
                    raise IntegerRangeError(value, path=f"{path}.{key}")
                append(str(value))
            elif value is None:
                append("null")
            elif value is True:
                append("true")
            elif value is False:
                append("false")
            else:
                append(_fast(value, f"{path}.{key}"))
        append("}")
        return "".join(parts)
    if t is str:
        return encode_basestring(obj)
    if t is float:
        return _float_text(obj, path)
    if t is int:
        if obj > _INT_MAX or obj < _INT_MIN:
            raise IntegerRangeError(obj, path=path)
        return str(obj)
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if t is list:
        return "[" + ",".join([_fast(v, f"{path}[{i}]") for i, v in enumerate(obj)]) + "]"
    raise _Unusual


def _find(obj: Any, bad: Callable[[Any], bool], path: str = "$") -> tuple[Any, str] | None:
    """First (value, path) in `obj` for which `bad(value)` holds, to name it in an error."""
    if bad(obj):
        return obj, path
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = _find(v, bad, f"{path}.{k}")
            if found:
                return found
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            found = _find(v, bad, f"{path}[{i}]")
            if found:
                return found
    return None


def _non_finite(v: Any) -> bool:
    return isinstance(v, float) and not math.isfinite(v)


def _out_of_range(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and not _INT_MIN <= v <= _INT_MAX


def _slow(obj: Any) -> bytes:
    """Reference path: the `rfc8785` package, with its errors translated into ours."""
    try:
        return rfc8785.dumps(obj)
    except rfc8785.FloatDomainError as exc:
        found = _find(obj, _non_finite)
        value, path = found if found else (float("nan"), "$")
        raise NonFiniteNumberError(value, path=path) from exc
    except rfc8785.IntegerDomainError as exc:
        found = _find(obj, _out_of_range)
        ivalue, path = found if found else (0, "$")
        raise IntegerRangeError(int(ivalue), path=path) from exc
    except rfc8785.CanonicalizationError as exc:
        raise UnsupportedValueError(str(exc)) from exc
    except (UnicodeEncodeError, RecursionError) as exc:
        raise UnsupportedValueError(f"value cannot be canonicalised: {exc}") from exc


def canonical_bytes(obj: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value (byte-identical to `rfc8785`).

    Raises `NonFiniteNumberError` for NaN/Infinity, `IntegerRangeError` for integers beyond
    +-(2**53-1) and `UnsupportedValueError` for values JSON cannot carry.
    """
    try:
        text = _fast(obj, "$")
    except _Unusual:
        return _slow(obj)
    except RecursionError as exc:
        raise UnsupportedValueError("value is nested too deeply") from exc
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnsupportedValueError("string contains an unpaired surrogate, which is not valid UTF-8") from exc


class HashFormat(StrEnum):
    """How a JSON value became the bytes that were hashed (kept with a hash whose form could differ)."""

    #: ``json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``: what
    #: analysis documents and evidence hashes used before; differs from RFC 8785 in number forms (``1.0``,
    #: ``1e-07``) and in the order of non-ASCII keys, identical for ASCII strings, lists and integers.
    LEGACY_JSON = "json-sorted/1"
    #: RFC 8785 (JSON Canonicalization Scheme): `canonical_bytes`.
    RFC8785 = "rfc8785"


CURRENT_HASH_FORMAT = HashFormat.RFC8785


def canonical_json(obj: Any, fmt: HashFormat = CURRENT_HASH_FORMAT) -> bytes:
    """The UTF-8 bytes of ``obj`` in format ``fmt`` (default RFC 8785): what `json_sha256` hashes.

    Raises `CanonicalizationError` (a ``ValueError``) for values the format cannot carry (NaN, ...).
    """
    if fmt is HashFormat.RFC8785:
        return canonical_bytes(obj)
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise NonFiniteNumberError(float("nan"), path="$") from exc
    except TypeError as exc:
        raise UnsupportedValueError(str(exc)) from exc
    return text.encode("utf-8")


def json_sha256(obj: Any, fmt: HashFormat = CURRENT_HASH_FORMAT) -> str:
    """Hex SHA-256 of `canonical_json` (``obj``, ``fmt``)."""
    return hashlib.sha256(canonical_json(obj, fmt)).hexdigest()


def sha256(data: bytes) -> bytes:
    """SHA-256 digest of `data` (the digest used for files and canonical records)."""
    return hashlib.sha256(data).digest()


def record_digest(record: Any) -> bytes:
    """SHA-256 of the record's RFC 8785 canonical bytes: the `digest` half of its Merkle leaf."""
    return hashlib.sha256(canonical_bytes(record)).digest()


def record_digests(records: Iterable[Any]) -> list[bytes]:
    """`record_digest` of each record, in order (the batch loop behind `build_batch_tree`)."""
    fast = _fast
    h = hashlib.sha256
    out: list[bytes] = []
    append = out.append
    for record in records:
        try:
            data = fast(record, "$").encode("utf-8")
        except (_Unusual, UnicodeEncodeError, RecursionError):
            data = canonical_bytes(record)
        append(h(data).digest())
    return out
