"""Multivariate anomaly model: IsolationForest trained on in-control history, exported to ONNX.

Training uses scikit-learn; scoring in production uses the exported ONNX graph executed by
onnxruntime (one ``InferenceSession`` per loaded model, 1 intra-op thread, sequential execution).
The score is scikit-learn's ``IsolationForest.score_samples``: ``-2 ** (-E[h(x)] / c(ψ))`` with
``E[h(x)]`` the mean path length over the trees and ``c(ψ)`` the average path length of an
unsuccessful BST search over ``ψ = max_samples`` points. It lies in [-1, 0); **lower is more
anomalous**. A row is flagged when its score is below ``threshold``, the ``threshold_quantile``
quantile of the training scores (default 0.5 %: about 1 in 200 in-control rows is flagged).

Feature names and order are stored with the model; scoring checks them and raises
:class:`~models.errors.InvalidInput` naming a missing, unexpected or non-finite feature.

:func:`simulate_characteristics` is the deterministic (seeded) generator of in-control data for a
plasma-deposited dielectric film used to train the default model shipped in ``models/artifacts``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from models.base import AnalysisModel, ModelVersion
from models.errors import InsufficientData, InvalidInput, ModelError

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_SPEC",
    "IsolationForestModel",
    "LoadedModel",
    "ModelScore",
    "OnnxScorer",
    "data_sha256",
    "onnx_param_count",
    "simulate_characteristics",
    "training_features",
]

#: Quality characteristics of the simulated film, in model feature order.
DEFAULT_FEATURES: tuple[str, ...] = (
    "thickness_nm",
    "refractive_index",
    "breakdown_voltage_v",
    "film_stress_mpa",
    "uniformity_pct",
)

#: Spec limits of the simulated film (``models.spec.parse_spec`` format).
DEFAULT_SPEC: dict[str, dict[str, Any]] = {
    "thickness_nm": {"lsl": 470.0, "usl": 530.0, "nominal": 500.0, "unit": "nm"},
    "refractive_index": {"lsl": 1.455, "usl": 1.475, "nominal": 1.465, "unit": "1"},
    "breakdown_voltage_v": {"lsl": 380.0, "nominal": 420.0, "unit": "V"},
    "film_stress_mpa": {"lsl": -320.0, "usl": -180.0, "nominal": -250.0, "unit": "MPa"},
    "uniformity_pct": {"usl": 3.0, "nominal": 1.5, "unit": "%"},
}

_MIN_TRAIN_ROWS = 50


def simulate_characteristics(
    n: int, *, seed: int = 0, shift: Mapping[str, float] | None = None, start: int = 0
) -> pd.DataFrame:
    """Deterministic in-control samples of the film's characteristics (columns = DEFAULT_FEATURES).

    Two latent process deviations (RF power ``p`` and chamber pressure ``q``, both N(0, 1)) drive
    correlated characteristics, so a sample can be anomalous as a combination while each value is in
    spec. ``shift`` adds a constant to named latent variables (``"rf_power"``, ``"pressure"``) or
    characteristics, for building out-of-control data. ``start`` offsets the sample ids
    (``S000001``...) used as the index.
    """
    if n < 0:
        raise InvalidInput(f"n must be >= 0, got {n}", field="n")
    shift = dict(shift or {})
    known = {"rf_power", "pressure", *DEFAULT_FEATURES}
    for k in shift:
        if k not in known:
            raise InvalidInput(f"unknown shift target {k!r} (known: {', '.join(sorted(known))})", field=k)
    rng = np.random.default_rng(seed)
    p = rng.normal(size=n) + shift.get("rf_power", 0.0)
    q = rng.normal(size=n) + shift.get("pressure", 0.0)
    e = rng.normal(size=(n, 5))
    thickness = 500.0 + 6.0 * p + 2.5 * q + 2.0 * e[:, 0]
    ri = 1.465 + 0.0015 * p - 0.001 * q + 0.0006 * e[:, 1]
    bdv = 420.0 + 0.6 * (thickness - 500.0) - 5.0 * q + 4.0 * e[:, 2]
    stress = -250.0 - 12.0 * p + 8.0 * q + 6.0 * e[:, 3]
    unif = 1.5 + 0.25 * np.abs(q) + 0.1 * np.abs(e[:, 4])
    df = pd.DataFrame(
        {
            "thickness_nm": thickness,
            "refractive_index": ri,
            "breakdown_voltage_v": bdv,
            "film_stress_mpa": stress,
            "uniformity_pct": unif,
        },
        index=pd.Index([f"S{i:06d}" for i in range(start + 1, start + n + 1)], name="sample_id"),
    )
    for k, v in shift.items():
        if k in df.columns:
            df[k] = df[k] + v
    return df


def data_sha256(df: pd.DataFrame) -> str:
    """SHA-256 of a numeric table: column names (in order) + float64 little-endian values, row-major."""
    header = json.dumps(list(map(str, df.columns)), separators=(",", ":")).encode()
    values = np.ascontiguousarray(df.to_numpy(dtype="<f8"))
    return hashlib.sha256(header + b"\n" + values.tobytes()).hexdigest()


def _matrix(data: pd.DataFrame | np.ndarray, features: Sequence[str]) -> np.ndarray:
    """Check ``data`` against ``features`` (names + order) and return a float32 matrix."""
    if isinstance(data, pd.DataFrame):
        cols = [str(c) for c in data.columns]
        missing = [f for f in features if f not in cols]
        if missing:
            raise InvalidInput(
                f"missing feature {missing[0]!r} (model expects {', '.join(features)})", field=missing[0]
            )
        extra = [c for c in cols if c not in features]
        if extra:
            raise InvalidInput(f"unexpected feature {extra[0]!r} (model expects {', '.join(features)})", field=extra[0])
        if len(set(cols)) != len(cols):
            dup = next(c for c in cols if cols.count(c) > 1)
            raise InvalidInput(f"duplicate feature column {dup!r}", field=dup)
        # whole-frame to_numpy + column positions: ~10x cheaper than .loc[:, features] on one row
        try:
            arr = data.to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            bad = next((f for f in features if not pd.api.types.is_numeric_dtype(data[f])), features[0])
            raise InvalidInput(f"feature {bad!r} is not numeric", field=bad) from exc
        pos = [cols.index(f) for f in features]
        if pos != list(range(len(features))):
            arr = arr[:, pos]
    else:
        try:
            arr = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"input is not numeric: {exc}", field="data") from exc
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != len(features):
            raise InvalidInput(
                f"expected {len(features)} features ({', '.join(features)}), got shape {arr.shape}",
                field="data",
            )
    if arr.shape[0] == 0:
        raise InsufficientData(1, 0, "rows to score")
    arr32 = arr.astype(np.float32)
    bad_rows, bad_cols = np.nonzero(~np.isfinite(arr32))
    if bad_rows.size:
        f = features[int(bad_cols[0])]
        raise InvalidInput(f"feature {f!r} is not finite (or out of float32 range) in row {int(bad_rows[0])}", field=f)
    return arr32


def training_features(data: Any) -> list[str]:
    """Check in-control training data (a DataFrame, enough rows, unique feature columns); its feature names."""
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput("training data must be a DataFrame with one column per feature", field="data")
    if data.shape[1] == 0:
        raise InvalidInput("training data has no feature columns", field="data")
    if len(data) < _MIN_TRAIN_ROWS:
        raise InsufficientData(_MIN_TRAIN_ROWS, len(data), "in-control training rows")
    features = [str(c) for c in data.columns]
    if len(set(features)) != len(features):
        dup = next(f for f in features if features.count(f) > 1)
        raise InvalidInput(f"duplicate feature column {dup!r}", field=dup)
    return features


class IsolationForestModel(AnalysisModel):
    """IsolationForest on in-control rows; ``score`` gives scikit-learn's ``score_samples``.

    ``fit(df)`` takes a DataFrame whose columns are the features (order kept). After fit:
    ``features``, ``threshold`` (``threshold_quantile`` of the training scores),
    ``training_data_sha256``, ``n_training_rows``; ``to_onnx()`` exports the ONNX bytes.
    """

    name = "isolation_forest"

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: int = 256,
        threshold_quantile: float = 0.005,
        random_state: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 < threshold_quantile < 0.5:
            raise InvalidInput(
                f"threshold_quantile must be in (0, 0.5), got {threshold_quantile}",
                field="threshold_quantile",
            )
        self.n_estimators = int(n_estimators)
        self.max_samples = int(max_samples)
        self.threshold_quantile = float(threshold_quantile)
        self.random_state = int(random_state)
        self.features: list[str] = []
        self.threshold: float = float("nan")
        self.training_data_sha256: str | None = None
        self.n_training_rows = 0
        self._est: Any = None

    @property
    def params(self) -> dict[str, Any]:
        """Hyper-parameters needed to reproduce the fit."""
        return {
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "threshold_quantile": self.threshold_quantile,
            "random_state": self.random_state,
        }

    @property
    def estimator(self) -> Any:
        """The fitted scikit-learn IsolationForest (NotFittedError before fit)."""
        self._check_fitted()
        return self._est

    def _fit(self, data: Any, **kwargs: Any) -> None:
        from sklearn.ensemble import IsolationForest

        features = training_features(data)
        x = _matrix(data, features)
        est = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(data)),
            random_state=self.random_state,
        )
        est.fit(x)
        self._est = est
        self.features = features
        train_scores = est.score_samples(x)
        self.threshold = float(np.quantile(train_scores, self.threshold_quantile))
        self.training_data_sha256 = data_sha256(data.loc[:, features])
        self.n_training_rows = len(data)

    def _score(self, data: Any) -> np.ndarray:
        return np.asarray(self._est.score_samples(_matrix(data, self.features)), dtype=np.float64)

    def _predict(self, data: Any) -> np.ndarray:
        """True where the row is anomalous (score below the calibrated threshold)."""
        return self._score(data) < self.threshold

    def to_onnx(self) -> bytes:
        """Export to ONNX bytes with the ``score_samples`` output (opset 17, ai.onnx.ml 3)."""
        self._check_fitted()
        from skl2onnx import to_onnx

        sample = np.zeros((1, len(self.features)), dtype=np.float32)
        onx = to_onnx(
            self._est,
            sample,
            options={id(self._est): {"score_samples": True}},
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        # skl2onnx builds opset_import from a set: order follows PYTHONHASHSEED, so fix it for stable bytes
        opsets = sorted((o.domain, o.version) for o in onx.opset_import)
        del onx.opset_import[:]
        for domain, version in opsets:
            entry = onx.opset_import.add()
            entry.domain, entry.version = domain, version
        for name in ("producer_version", "doc_string"):
            if hasattr(onx, name):
                setattr(onx, name, "")  # keep bytes reproducible across converter patch versions
        return bytes(onx.SerializeToString())


def onnx_param_count(model_bytes: bytes) -> int:
    """Number of learned numbers in an ONNX graph: initializer elements + numeric attribute arrays.

    For tree ensembles this counts every per-node entry (feature id, threshold, children, leaf
    weights ...), i.e. the storage a tree model needs, not just its leaves.
    """
    import onnx

    proto = onnx.load_from_string(model_bytes)
    total = sum(int(np.prod(init.dims)) if init.dims else 1 for init in proto.graph.initializer)
    for node in proto.graph.node:
        for attr in node.attribute:
            total += len(attr.floats) + len(attr.ints)
            if attr.HasField("t"):
                total += int(np.prod(attr.t.dims)) if attr.t.dims else 1
    return total


class OnnxScorer:
    """onnxruntime session over an exported IsolationForest; created once, reused for every call.

    Single-threaded (``intra_op_num_threads = 1``, sequential execution) so scoring does not compete
    with the gateway's other work on a small machine.
    """

    def __init__(self, model_bytes: bytes) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors: translate once, here
            raise ModelError(f"cannot load ONNX model: {exc}") from exc
        outputs = [o.name for o in self._session.get_outputs()]
        if "score_samples" not in outputs:
            raise ModelError(f"ONNX model has no 'score_samples' output (outputs: {outputs})")
        self._input = self._session.get_inputs()[0].name
        shape = self._session.get_inputs()[0].shape
        self.n_features: int | None = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """Scores for a float32 matrix (rows x features), as float64 1-D array."""
        (out,) = self._session.run(["score_samples"], {self._input: np.ascontiguousarray(x, dtype=np.float32)})
        return np.asarray(out, dtype=np.float64).reshape(-1)


class ModelScore(BaseModel):
    """Scores of some rows plus the model version that produced them (record/anchor it with the result)."""

    model_config = ConfigDict(frozen=True)

    scores: list[float]
    anomalous: list[bool]
    threshold: float
    model: ModelVersion
    row_ids: list[str] | None = None


@dataclass
class LoadedModel:
    """A model ready to score: ONNX session + stored features, threshold and version.

    Usually obtained from :meth:`models.registry.ModelRegistry.load`.
    """

    version: ModelVersion
    features: list[str]
    threshold: float
    scorer: OnnxScorer
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scorer.n_features is not None and self.scorer.n_features != len(self.features):
            raise ModelError(
                f"model graph takes {self.scorer.n_features} features but metadata lists {len(self.features)}"
            )

    @classmethod
    def from_bytes(
        cls,
        model_bytes: bytes,
        *,
        version: ModelVersion,
        features: Sequence[str],
        threshold: float,
        meta: Mapping[str, Any] | None = None,
    ) -> LoadedModel:
        """Build from ONNX bytes and metadata (no integrity check: the registry does that)."""
        return cls(
            version=version,
            features=list(features),
            threshold=float(threshold),
            scorer=OnnxScorer(model_bytes),
            meta=dict(meta or {}),
        )

    def score_samples(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Raw scores (lower = more anomalous) after checking the features."""
        return self.scorer.score_samples(_matrix(data, self.features))

    def score(self, data: pd.DataFrame | np.ndarray) -> ModelScore:
        """Scores and anomaly flags (score < threshold) with the model version."""
        s = self.score_samples(data)
        ids = [str(i) for i in data.index] if isinstance(data, pd.DataFrame) else None
        return ModelScore(
            scores=s.tolist(),
            anomalous=(s < self.threshold).tolist(),
            threshold=self.threshold,
            model=self.version,
            row_ids=ids,
        )
