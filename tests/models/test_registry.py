"""Model registry: versioned files, SHA-256 verification, write-once, the shipped default model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.anomaly import IsolationForestModel, simulate_characteristics
from models.artifacts import DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION, default_registry, load_default_model
from models.base import sha256_bytes
from models.errors import InvalidInput, ModelIntegrityError
from models.registry import ModelNotFound, ModelRegistry, ModelVersionExists


@pytest.fixture(scope="module")
def tiny() -> IsolationForestModel:
    return IsolationForestModel(n_estimators=5, max_samples=64).fit(simulate_characteristics(200, seed=11))


def test_save_writes_model_and_meta_and_load_round_trips(tmp_path: Path, tiny) -> None:
    reg = ModelRegistry(tmp_path / "models")
    v = reg.save(tiny, "film", "1.0.0")
    blob = (tmp_path / "models" / "film" / "1.0.0" / "model.onnx").read_bytes()
    meta = json.loads((tmp_path / "models" / "film" / "1.0.0" / "meta.json").read_text())
    assert v.sha256 == sha256_bytes(blob) == meta["sha256"]
    assert meta["features"] == tiny.features
    assert meta["threshold"] == tiny.threshold
    assert meta["training_data_sha256"] == tiny.training_data_sha256
    assert meta["libraries"]["onnxruntime"] and meta["libraries"]["scikit-learn"]
    assert 0 < meta["onnx_params"] < 1_200_000
    loaded = reg.load("film")
    assert loaded.version == v and loaded.features == tiny.features
    x = simulate_characteristics(30, seed=12)
    np.testing.assert_allclose(loaded.score_samples(x), tiny.score(x), atol=1e-5)
    assert loaded.score(x).model.ref == v.ref


def test_versions_listed_in_natural_order_and_latest_loaded(tmp_path: Path, tiny) -> None:
    reg = ModelRegistry(tmp_path)
    for ver in ("1.9.0", "1.10.0", "1.2.0"):
        reg.save(tiny, "film", ver)
    reg.save(tiny, "other", "1")
    assert reg.list_versions("film") == ["1.2.0", "1.9.0", "1.10.0"]
    assert reg.list_models() == ["film", "other"]
    assert reg.load("film").version.version == "1.10.0"
    assert reg.load("film", "1.2.0").version.version == "1.2.0"


def test_versions_are_write_once(tmp_path: Path, tiny) -> None:
    reg = ModelRegistry(tmp_path)
    reg.save(tiny, "film", "1")
    with pytest.raises(ModelVersionExists) as err:
        reg.save(tiny, "film", "1")
    assert err.value.facts == {"name": "film", "version": "1"}


def test_tampered_file_is_refused(tmp_path: Path, tiny) -> None:
    reg = ModelRegistry(tmp_path)
    v = reg.save(tiny, "film", "1")
    path = tmp_path / "film" / "1" / "model.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as err:
        reg.load("film", "1")
    assert err.value.expected == v.sha256
    assert err.value.actual == sha256_bytes(bytes(data))
    assert err.value.to_dict()["code"] == "model_integrity"


def test_missing_model_and_bad_names(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    assert reg.list_models() == [] and reg.list_versions("film") == []
    with pytest.raises(ModelNotFound):
        reg.load("film")
    with pytest.raises(ModelNotFound) as err:
        reg.read_meta("film", "2")
    assert err.value.version == "2"
    with pytest.raises(InvalidInput) as bad:
        reg.load("../etc", "1")
    assert bad.value.field == "name"


def test_shipped_default_model_loads_verified_and_flags_out_of_control_data() -> None:
    reg = default_registry()
    assert DEFAULT_MODEL_VERSION in reg.list_versions(DEFAULT_MODEL_NAME)
    model = load_default_model()
    meta = reg.read_meta(DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION)
    assert model.version.sha256 == meta["sha256"]
    assert meta["training_data"]["seed"] == 20240611
    assert meta["onnx_params"] < 1_200_000
    in_control = model.score(simulate_characteristics(1000, seed=123))
    drifted = model.score(simulate_characteristics(1000, seed=124, shift={"rf_power": 3.0}))
    assert np.mean(in_control.anomalous) < 0.02
    assert np.mean(drifted.anomalous) > 0.2


@pytest.mark.slow
def test_default_model_retrains_to_the_same_bytes(tmp_path: Path) -> None:
    from models.artifacts.retrain import train_default

    fresh = train_default(tmp_path)
    shipped = default_registry().read_meta(DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION)
    assert fresh.sha256 == shipped["sha256"]
    assert json.loads((tmp_path / DEFAULT_MODEL_NAME / DEFAULT_MODEL_VERSION / "meta.json").read_text()) == shipped
