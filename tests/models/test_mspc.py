"""PCA-Mahalanobis model: formula, ONNX parity, errors, and detection vs the IsolationForest (1.0.0)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.anomaly import LoadedModel, onnx_param_count, simulate_characteristics
from models.artifacts import DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION, default_registry
from models.base import ModelVersion, sha256_bytes
from models.errors import InsufficientData, InvalidInput, NotFittedError
from models.mspc import PcaMahalanobisModel


def _load(model: PcaMahalanobisModel) -> LoadedModel:
    blob = model.to_onnx()
    version = ModelVersion(name="m", version="1", sha256=sha256_bytes(blob), params=model.params)
    return LoadedModel.from_bytes(blob, version=version, features=model.features, threshold=model.threshold)


@pytest.fixture(scope="module")
def fitted() -> tuple[PcaMahalanobisModel, LoadedModel]:
    model = PcaMahalanobisModel().fit(simulate_characteristics(2000, seed=21))
    return model, _load(model)


def test_score_is_minus_max_of_calibrated_t2_and_mahalanobis_by_hand() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 3.0, 5000)
    train = pd.DataFrame({"a": a, "b": 10 + 0.5 * a / 3.0 + rng.normal(0, 1.0, 5000)})
    m = PcaMahalanobisModel(n_leading=1).fit(train)
    x = train.to_numpy(dtype=np.float32).astype(float)  # the model sees float32 inputs, like ONNX
    z = (x - x.mean(0)) / x.std(0)
    prec = np.linalg.inv(np.cov(z, rowvar=False))  # sample covariance (n - 1), as PCA's variances
    d2 = np.einsum("ij,jk,ik->i", z, prec, z)
    np.testing.assert_allclose(m.statistics(train)["mahalanobis_d2"], d2, rtol=1e-9)
    # leading PC of two standardised, positively correlated features is (1, 1)/sqrt(2)
    lam1 = np.linalg.eigvalsh(np.cov(z, rowvar=False))[-1]
    t2 = ((z[:, 0] + z[:, 1]) / np.sqrt(2)) ** 2 / lam1
    np.testing.assert_allclose(m.statistics(train)["t2_leading"], t2, rtol=1e-9)
    assert m.c_lead == pytest.approx(np.quantile(t2, 0.99))
    assert m.c_full == pytest.approx(np.quantile(d2, 0.999))
    # a correlation-breaking row: a high, b low -> small T2 on the leading PC, large d2
    row = pd.DataFrame({"a": [6.0], "b": [8.0]})
    st = m.statistics(row).iloc[0]
    assert st["mahalanobis_d2"] > 10 * st["t2_leading"]
    assert m.score(row)[0] == pytest.approx(-st["mahalanobis_d2"] / m.c_full, rel=1e-12)


def test_onnx_scores_match_the_training_library(fitted) -> None:
    model, loaded = fitted
    held_out = pd.concat(
        [
            simulate_characteristics(300, seed=31),
            simulate_characteristics(100, seed=32, shift={"rf_power": 5.0}),
            simulate_characteristics(100, seed=33, shift={"breakdown_voltage_v": -60.0}),
        ]
    )
    onnx_scores = loaded.score_samples(held_out)
    np.testing.assert_allclose(onnx_scores, model.score(held_out), rtol=0, atol=1e-5)
    assert np.max(np.abs(onnx_scores - model.score(held_out))) < 1e-9  # float64 graph: far inside 1e-5
    assert onnx_scores.shape == (500,) and np.all(onnx_scores < 0)


def test_threshold_flags_the_training_quantile(fitted) -> None:
    model, loaded = fitted
    train = simulate_characteristics(2000, seed=21)
    assert np.mean(loaded.score(train).anomalous) == pytest.approx(0.005, abs=0.001)
    assert model.predict(train).sum() == sum(loaded.score(train).anomalous)


def test_parameters_are_few_and_graph_is_plain_onnx(fitted) -> None:
    import onnx

    model, _ = fitted
    blob = model.to_onnx()
    d = len(model.features)
    assert onnx_param_count(blob) == d + d + d * d + 2 * d + 1  # centre, 1/sd, whitening, combine, axes
    ops = [n.op_type for n in onnx.load_from_string(blob).graph.node]
    assert ops == ["Cast", "Sub", "Mul", "MatMul", "Mul", "MatMul", "ReduceMax", "Neg"]
    assert blob == model.to_onnx()  # deterministic bytes


def test_errors_name_the_problem() -> None:
    with pytest.raises(NotFittedError):
        PcaMahalanobisModel().score(simulate_characteristics(3))
    with pytest.raises(NotFittedError):
        PcaMahalanobisModel().to_onnx()
    with pytest.raises(InsufficientData):
        PcaMahalanobisModel().fit(simulate_characteristics(10))
    with pytest.raises(InvalidInput) as err:
        PcaMahalanobisModel().fit(simulate_characteristics(100).assign(uniformity_pct=1.5))
    assert err.value.field == "uniformity_pct"
    with pytest.raises(InvalidInput) as err:
        PcaMahalanobisModel(n_leading=5).fit(simulate_characteristics(100))
    assert err.value.field == "n_leading"
    with pytest.raises(InvalidInput) as err:
        PcaMahalanobisModel(lead_quantile=0.3)
    assert err.value.field == "lead_quantile"


def _rates(model: LoadedModel, calib: np.ndarray, sets: dict[str, pd.DataFrame]) -> dict[str, float]:
    thr = float(np.quantile(model.score_samples(calib), 0.005))  # same 0.5 % false-alarm rate for both
    return {k: float(np.mean(model.score_samples(df) < thr)) for k, df in sets.items()}


def test_default_model_detects_both_fault_kinds_better_than_the_isolation_forest() -> None:
    reg = default_registry()
    assert DEFAULT_MODEL_VERSION == "2.0.0" and reg.read_meta(DEFAULT_MODEL_NAME)["kind"] == "pca_mahalanobis"
    new, old = reg.load(DEFAULT_MODEL_NAME, "2.0.0"), reg.load(DEFAULT_MODEL_NAME, "1.0.0")
    n = 8000
    sets = {
        "in_control": simulate_characteristics(n, seed=501),
        "rf_power": simulate_characteristics(n, seed=502, shift={"rf_power": 3.0}),
        "breakdown": simulate_characteristics(n, seed=503, shift={"breakdown_voltage_v": -25.0}),
    }
    calib = simulate_characteristics(4 * n, seed=504).to_numpy()
    r_new, r_old = _rates(new, calib, sets), _rates(old, calib, sets)
    # bench (20k rows/set): FA 0.52 % vs 0.54 %; rf +3 sd 40.5 % vs 38.7 %; breakdown -25 V 70 % vs 0.7 %
    assert r_new["in_control"] < 0.01 and r_old["in_control"] < 0.01
    assert r_old["breakdown"] < 0.03 < 0.5 < r_new["breakdown"]
    assert r_new["rf_power"] > 0.3 and r_new["rf_power"] > r_old["rf_power"] - 0.02
    # at the shipped thresholds the new model also flags ~0.5 % of in-control rows, as documented
    assert np.mean(new.score(sets["in_control"]).anomalous) < 0.01
