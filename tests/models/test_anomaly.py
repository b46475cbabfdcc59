"""IsolationForest -> ONNX -> onnxruntime: parity with scikit-learn, threshold, feature checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.anomaly import (
    DEFAULT_FEATURES,
    IsolationForestModel,
    LoadedModel,
    data_sha256,
    onnx_param_count,
    simulate_characteristics,
)
from models.base import ModelVersion, sha256_bytes
from models.errors import InsufficientData, InvalidInput, NotFittedError


@pytest.fixture(scope="module")
def fitted() -> tuple[IsolationForestModel, LoadedModel, pd.DataFrame]:
    train = simulate_characteristics(800, seed=1)
    model = IsolationForestModel(n_estimators=25, max_samples=128, threshold_quantile=0.01).fit(train)
    blob = model.to_onnx()
    version = ModelVersion(name="t", version="1", sha256=sha256_bytes(blob), params=model.params)
    return (
        model,
        LoadedModel.from_bytes(blob, version=version, features=model.features, threshold=model.threshold),
        train,
    )


def test_onnx_scores_match_sklearn_on_held_out_data(fitted) -> None:
    model, loaded, _ = fitted
    held_out = pd.concat(
        [simulate_characteristics(400, seed=99), simulate_characteristics(100, seed=98, shift={"rf_power": 4.0})]
    )
    onnx_scores = loaded.score_samples(held_out)
    sk_scores = model.estimator.score_samples(held_out.to_numpy(dtype=np.float32))
    assert onnx_scores.shape == (500,)
    np.testing.assert_allclose(onnx_scores, sk_scores, rtol=0, atol=1e-5)
    np.testing.assert_allclose(model.score(held_out), sk_scores, rtol=0, atol=1e-12)
    assert np.all((onnx_scores < 0) & (onnx_scores >= -1))


def test_threshold_is_training_quantile_and_flags_shifted_rows(fitted) -> None:
    model, loaded, train = fitted
    train_scores = model.estimator.score_samples(train.to_numpy(dtype=np.float32))
    assert model.threshold == pytest.approx(np.quantile(train_scores, 0.01))
    flagged_train = np.mean(loaded.score(train).anomalous)
    assert 0.0 < flagged_train <= 0.011
    in_control = loaded.score(simulate_characteristics(1000, seed=5))
    shifted = loaded.score(simulate_characteristics(1000, seed=6, shift={"rf_power": 3.0}))
    assert np.mean(in_control.anomalous) < 0.03
    assert np.mean(shifted.anomalous) > 0.2
    assert shifted.model.version == "1" and shifted.threshold == model.threshold


def test_scores_carry_row_ids_and_model_version(fitted) -> None:
    _, loaded, _ = fitted
    res = loaded.score(simulate_characteristics(3, seed=2, start=10))
    assert res.row_ids == ["S000011", "S000012", "S000013"]
    assert res.model.sha256 == loaded.version.sha256
    assert len(res.scores) == len(res.anomalous) == 3


def test_column_order_does_not_matter_but_names_do(fitted) -> None:
    _, loaded, _ = fitted
    x = simulate_characteristics(20, seed=3)
    np.testing.assert_array_equal(loaded.score_samples(x), loaded.score_samples(x[list(reversed(x.columns))]))


def test_missing_feature_is_named(fitted) -> None:
    _, loaded, _ = fitted
    with pytest.raises(InvalidInput) as err:
        loaded.score(simulate_characteristics(5, seed=3).drop(columns=["film_stress_mpa"]))
    assert err.value.field == "film_stress_mpa"
    assert "film_stress_mpa" in str(err.value)


def test_wrong_feature_is_named(fitted) -> None:
    _, loaded, _ = fitted
    x = simulate_characteristics(5, seed=3).rename(columns={"uniformity_pct": "uniformity"})
    with pytest.raises(InvalidInput) as err:
        loaded.score(x)
    assert err.value.field == "uniformity_pct"  # the missing one is reported first
    extra = simulate_characteristics(5, seed=3).assign(operator_id=1.0)
    with pytest.raises(InvalidInput) as err:
        loaded.score(extra)
    assert err.value.field == "operator_id"


def test_non_finite_and_non_numeric_values_are_named(fitted) -> None:
    _, loaded, _ = fitted
    x = simulate_characteristics(5, seed=3)
    x.iloc[2, 1] = np.nan
    with pytest.raises(InvalidInput) as err:
        loaded.score(x)
    assert err.value.field == "refractive_index" and "row 2" in str(err.value)
    y = simulate_characteristics(5, seed=3).astype({"thickness_nm": object})
    y.iloc[0, 0] = "thick"
    with pytest.raises(InvalidInput) as err:
        loaded.score(y)
    assert err.value.field == "thickness_nm"


def test_numpy_input_must_have_the_feature_count(fitted) -> None:
    _, loaded, _ = fitted
    x = simulate_characteristics(4, seed=3).to_numpy()
    assert loaded.score_samples(x).shape == (4,)
    with pytest.raises(InvalidInput, match="expected 5 features"):
        loaded.score_samples(x[:, :3])


def test_not_fitted_and_too_little_training_data() -> None:
    m = IsolationForestModel()
    with pytest.raises(NotFittedError):
        m.score(simulate_characteristics(5))
    with pytest.raises(NotFittedError):
        m.to_onnx()
    with pytest.raises(InsufficientData) as err:
        m.fit(simulate_characteristics(10))
    assert (err.value.needed, err.value.got) == (50, 10)


def test_session_is_single_threaded_and_sequential(fitted) -> None:
    import onnxruntime as ort

    opts = fitted[1].scorer._session.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL


def test_parameter_count_is_small(fitted) -> None:
    model, _, _ = fitted
    n = onnx_param_count(model.to_onnx())
    nodes = sum(t.tree_.node_count for t in model.estimator.estimators_)
    assert nodes <= n < 1_200_000  # at least one number per tree node, well under the budget


def test_simulator_is_deterministic_and_hash_tracks_data() -> None:
    a, b = simulate_characteristics(50, seed=4), simulate_characteristics(50, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(DEFAULT_FEATURES)
    assert data_sha256(a) == data_sha256(b)
    b.iloc[0, 0] += 1e-9
    assert data_sha256(a) != data_sha256(b)
    with pytest.raises(InvalidInput) as err:
        simulate_characteristics(5, shift={"voltage": 1.0})
    assert err.value.field == "voltage"


def test_duplicate_input_column_is_named(fitted) -> None:
    _, loaded, _ = fitted
    x = simulate_characteristics(3, seed=3)
    dup = pd.concat([x, x[["thickness_nm"]]], axis=1)
    with pytest.raises(InvalidInput) as err:
        loaded.score(dup)
    assert err.value.field == "thickness_nm" and "duplicate" in str(err.value)
