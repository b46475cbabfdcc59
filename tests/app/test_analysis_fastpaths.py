"""The analysis' column-wise fast paths give exactly what the row-wise pandas code gave: the rows hashed into
``observations_sha256``, the quality rows, and the SPC series (app/analysis/engine.py, models/spc.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.analysis.engine import _observation_rows, observations_sha256, quality_mask
from chain.canonical import NonFiniteNumberError, json_sha256
from models.spc import _as_series


def _frames() -> list[pd.DataFrame]:
    strings = pd.DataFrame(
        {
            "batch_pk": ["b"] * 4,
            "sample_id": ["S1", None, "S2", "S2"],  # a batch-level value has no sample
            "variable": ["thickness", "line_speed", "thickness", "width"],
            "tier": ["quality", "process", "quality", None],
            "value": [12.31, 3.0, 1e-7, 4.0],
            "unit": ["um", None, "um", "mm"],
        }
    )
    all_missing = strings.assign(sample_id=[None] * 4, unit=[None] * 4)  # object columns holding None
    return [strings, all_missing, strings.iloc[0:0]]


@pytest.mark.parametrize("frame", _frames())
def test_observation_rows_are_the_rows_itertuples_gave(frame: pd.DataFrame) -> None:
    long = frame.drop(columns=["batch_pk"])
    before = [[r.sample_id, r.variable, r.tier, float(r.value), r.unit] for r in long.itertuples(index=False)]
    after = _observation_rows(long)
    assert repr(after) == repr(before)
    assert [[type(v) for v in row] for row in after] == [[type(v) for v in row] for row in before]
    try:
        expected = json_sha256(before)
    except NonFiniteNumberError:  # a missing string read back as NaN: the same error either way
        with pytest.raises(NonFiniteNumberError):
            json_sha256(after)
        with pytest.raises(NonFiniteNumberError):
            observations_sha256(long)
    else:
        assert json_sha256(after) == expected
        assert observations_sha256(long) == expected


_text = st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["\u2028", '"', "\\", "\x00", "é", "😀", "\ud800"]))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(_text, _text, _text, st.floats(allow_nan=False, allow_infinity=False) | st.just(-0.0), _text),
        max_size=8,
    )
)
def test_observations_hash_is_the_canonical_json_of_the_rows(rows: list[tuple[object, ...]]) -> None:
    """The column-wise writer hashes exactly the RFC 8785 bytes of the rows, or fails as the generic path does."""
    long = pd.DataFrame(
        {
            "sample_id": pd.Series([r[0] for r in rows], dtype=object),
            "variable": pd.Series([r[1] for r in rows], dtype=object),
            "tier": pd.Series([r[2] for r in rows], dtype=object),
            "value": pd.Series([r[3] for r in rows], dtype=float),
            "unit": pd.Series([r[4] for r in rows], dtype=object),
        }
    )
    try:
        expected = json_sha256([list(r) for r in rows])
    except ValueError as exc:
        with pytest.raises(type(exc)):
            observations_sha256(long)
    else:
        assert observations_sha256(long) == expected


@pytest.mark.parametrize("frame", _frames())
def test_quality_mask_is_the_pandas_comparison(frame: pd.DataFrame) -> None:
    expected = (frame["tier"] == "quality").to_numpy(dtype=bool)
    assert quality_mask(frame).tolist() == expected.tolist()
    assert frame[quality_mask(frame)].equals(frame[frame["tier"] == "quality"])


@pytest.mark.parametrize(
    "values",
    [np.array([1.5, 2.25, -3.0]), np.array([0.1, 0.7], dtype=np.float32), [1, 2, 3], np.array([4, 5]), []],
)
def test_spc_series_of_an_array_is_what_the_list_gave(values: object) -> None:
    expected = np.asarray(list(values), dtype=float)  # type: ignore[call-overload]
    got = _as_series(values, "values")  # type: ignore[arg-type]
    assert got.dtype == expected.dtype and got.tolist() == expected.tolist()
    if isinstance(values, np.ndarray):
        assert got is not values  # a copy: the caller's array is not shared
