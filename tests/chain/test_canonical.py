"""RFC 8785 canonicalisation: known answers from the RFC and byte-identity with the `rfc8785` package."""

from __future__ import annotations

import enum
import hashlib
import math
import struct

import numpy as np
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.canonical import (
    CanonicalizationError,
    IntegerRangeError,
    NonFiniteNumberError,
    ProofError,
    UnsupportedValueError,
    canonical_bytes,
    number_text,
    number_texts,
    record_digest,
    record_digests,
)

# RFC 8785 Appendix B: IEEE-754 bit patterns and their required serialisation.
RFC_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), RFC_NUMBERS)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_bytes(value) == expected.encode()
    assert canonical_bytes({"v": value}) == b'{"v":' + expected.encode() + b"}"


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_rfc8785_appendix_b_nan_and_infinity_are_rejected(bits: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    with pytest.raises(NonFiniteNumberError) as info:
        canonical_bytes({"sample": "S1", "value": value})
    assert info.value.path == "$.value"
    assert "not a finite number" in str(info.value)
    assert isinstance(info.value, CanonicalizationError)
    assert isinstance(info.value, ProofError)


def test_rfc8785_section_3_2_2_example() -> None:
    obj = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_bytes(obj) == expected.encode("utf-8")


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is D83D DE00 in UTF-16 and so sorts before U+E000 (code point order says the opposite).
    obj = {"\ue000": 1, "😀": 2, "a": 3}
    assert canonical_bytes(obj) == '{"a":3,"😀":2,"\ue000":1}'.encode()
    assert canonical_bytes(obj) == rfc8785.dumps(obj)


def test_measurement_record_exact_bytes_and_digest() -> None:
    record = {
        "verdict": "pass",
        "value": 12.0,
        "unit": "µm",
        "sample": "S1",
        "uncertainty": 5e-2,
        "batch": "B-1",
        "limits": {"usl": 12.5, "lsl": 11.5},
    }
    expected = (
        '{"batch":"B-1","limits":{"lsl":11.5,"usl":12.5},"sample":"S1","uncertainty":0.05,'
        '"unit":"µm","value":12,"verdict":"pass"}'
    ).encode()
    assert canonical_bytes(record) == expected
    assert record_digest(record) == hashlib.sha256(expected).digest()


@pytest.mark.parametrize(
    "value",
    [1e21, 1e20, 1e16, 9999999999999998.0, 5e-324, -0.0, 1e-7, 1e-6, 0.0001, 0.00009999, 12.0, -1.5e-9],
)
def test_float_edge_cases_match_reference(value: float) -> None:
    assert canonical_bytes([value]) == rfc8785.dumps([value])


def test_integers_at_and_beyond_the_ieee_exact_range() -> None:
    assert canonical_bytes(2**53 - 1) == b"9007199254740991"
    assert canonical_bytes(-(2**53) + 1) == b"-9007199254740991"
    with pytest.raises(IntegerRangeError) as info:
        canonical_bytes({"count": {"n": 2**53}})
    assert info.value.path == "$.count.n"
    assert info.value.value == 2**53
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps({"count": {"n": 2**53}})


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(UnsupportedValueError, match="surrogate"):
        canonical_bytes({"note": "\ud800"})


@pytest.mark.parametrize("bad", [{"raw": b"\x00"}, {"s": {1, 2}}, {1: "non-string key"}, object()])
def test_non_json_values_are_rejected(bad: object) -> None:
    with pytest.raises(UnsupportedValueError):
        canonical_bytes(bad)


class Verdict(enum.IntEnum):
    FAIL = 0
    PASS = 1


def test_unusual_types_fall_back_to_the_reference() -> None:
    obj = {"verdict": Verdict.PASS, "pair": (1, "x"), "ok": True}
    assert canonical_bytes(obj) == rfc8785.dumps(obj) == b'{"ok":true,"pair":[1,"x"],"verdict":1}'


# -- property tests: byte-identical to rfc8785 over generated records -------------------

_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [1e21, 1e-7, 5e-324, -0.0, 1e16, 123456789012345680000.0, 1.7976931348623157e308]
)
_ints = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.integers(min_value=-(2**60), max_value=2**60)
_text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(['"', "\\", "\n\t\b\f\r", "\x00\x1f\x7f"])
# Mostly ASCII keys (the fast path); non-ASCII keys exercise the UTF-16 ordering fallback.
_keys = st.text(st.characters(codec="ascii"), max_size=8) | _text
_scalars = st.none() | st.booleans() | _ints | _floats | _text
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)
_records = st.dictionaries(_keys, _values, max_size=9)


def _reference(obj: object) -> bytes | type[Exception]:
    try:
        return rfc8785.dumps(obj)
    except rfc8785.IntegerDomainError:
        return IntegerRangeError


@settings(max_examples=250, deadline=None)
@given(_records)
def test_fast_path_is_byte_identical_to_rfc8785(record: dict) -> None:
    expected = _reference(record)
    if expected is IntegerRangeError:
        with pytest.raises(IntegerRangeError):
            canonical_bytes(record)
    else:
        assert canonical_bytes(record) == expected


@settings(max_examples=300, deadline=None)
@given(_floats)
def test_every_finite_float_matches_rfc8785(value: float) -> None:
    assert canonical_bytes({"value": value}) == rfc8785.dumps({"value": value})
    # The canonical text parses back to the same double (round trip, as JCS requires).
    assert float(canonical_bytes(value)) == value or (value == 0 and math.copysign(1, value) < 0)


_safe_records = st.dictionaries(
    st.text(max_size=8),
    st.none() | st.booleans() | _floats | st.text(max_size=8) | st.integers(-1000, 1000),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        _safe_records | _records.map(lambda r: {"nested": r}).filter(lambda r: _reference(r) is not IntegerRangeError),
        max_size=6,
    )
)
def test_batch_digests_equal_single_digests(records: list[dict]) -> None:
    assert record_digests(records) == [hashlib.sha256(rfc8785.dumps(r)).digest() for r in records]


def test_number_texts_are_number_text_of_each_value() -> None:
    """``repr`` stands in for ``number_text`` only where they agree: around the fixed/exponent bounds, integral
    values, zeros, tiny and huge values the full path still runs."""
    edges = [0.0, -0.0, 1.0, -2.5, 1e-3, 9.99e-4, 1e-4, 1e-5, 1.5e-7, 5e-324, 1e15, 1e15 + 0.5, 1e16, 1e21, 1e22]
    edges += [9999999999999998.0, 123456789012345678.0, 0.1, 1.7976931348623157e308, 999999999999999.9]
    rng = np.random.default_rng(3)
    for scale in (1e-9, 1e-4, 1e-3, 1.0, 1e6, 1e14, 1e15, 1e16, 1e20):
        x = rng.normal(0.0, scale, 2000)
        values = np.concatenate([np.asarray(edges), -np.asarray(edges), x, x.round(), x.round(3)])
        assert number_texts(values) == [number_text(v) for v in values.tolist()]
    for bad in (math.nan, math.inf, -math.inf):  # refused as number_text refuses them
        with pytest.raises(NonFiniteNumberError):
            number_texts(np.asarray([1.5, bad]))
