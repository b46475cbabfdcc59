"""Multivariate SPC anomaly model: Hotelling T² on the leading principal components + Mahalanobis d².

Why: an IsolationForest splits on one feature at a time, so it sees a value that is far out on its
own axis but not a *combination* that breaks the in-control correlation (breakdown voltage 25 V low
while thickness and the rest are normal: 0.2 % detected). A Mahalanobis distance sees exactly that,
but spreads its false-alarm budget over all directions and loses power for a shift along the main
process direction (RF power +3 sigma). This model takes the max of two calibrated statistics on the
standardised data ``z = (x - mean) / sd`` with PCA loadings ``V`` and component variances ``λ``:

- ``lead = sum_{i < k} t_i² / λ_i``  (Hotelling T² on the ``k = n_leading`` leading components,
  ``t = z V``): sensitive to shifts along the dominant process direction(s);
- ``full = sum_i t_i² / λ_i``         (squared Mahalanobis distance over all components): sensitive to
  correlation-breaking combinations.

``score = -max(lead / c_lead, full / c_full)`` where ``c_lead`` / ``c_full`` are the
``lead_quantile`` / ``full_quantile`` quantiles of the statistics on the training rows (so each part
is in units of "its own control limit"). **Lower is more anomalous** (same convention as
``IsolationForest.score_samples``); a row is flagged when ``score < threshold``, the
``threshold_quantile`` quantile of the training scores (default 0.5 %).

Worked example (two features, identity covariance, ``k = 1``, ``c_lead = 4``, ``c_full = 9``): a row
with ``t = (1, 2.5)`` has ``lead = 1``, ``full = 7.25`` -> ``score = -max(0.25, 0.806) = -0.806``.

The ONNX graph is built by hand (skl2onnx has no converter for this combination) and runs in float64,
so ONNX scores equal the scikit-learn/numpy ones to ~1e-12::

    X(float32) -Cast-> double -Sub(mean)-> -Mul(1/sd)-> -MatMul(V / sqrt(λ))-> w
    w -Mul(w)-> w² -MatMul(A)-> [lead/c_lead, full/c_full] -ReduceMax-> -Neg-> score_samples
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.anomaly import _matrix, data_sha256, training_features
from models.base import AnalysisModel
from models.errors import InvalidInput

__all__ = ["PcaMahalanobisModel"]


def _significant(value: Any, digits: int = 12) -> np.ndarray:
    """``value`` rounded to ``digits`` significant digits.

    The LAPACK/BLAS kernels behind PCA and quantiles differ in the last bits between CPUs (SIMD paths), so
    the stored parameters are rounded far above that noise: retraining on another machine gives the same
    ONNX bytes and the same model hash.
    """
    return np.vectorize(lambda v: float(f"{v:.{digits}g}"), otypes=[np.float64])(np.asarray(value, dtype=np.float64))


class PcaMahalanobisModel(AnalysisModel):
    """T² on the leading PCs + Mahalanobis d², max of calibrated parts; ``score`` is ``-max(...)``.

    ``fit(df)`` takes a DataFrame whose columns are the features (order kept). After fit:
    ``features``, ``threshold``, ``training_data_sha256``, ``n_training_rows``, the limits
    ``c_lead`` / ``c_full``; ``to_onnx()`` exports the ONNX bytes (output ``score_samples``).
    """

    name = "pca_mahalanobis"

    def __init__(
        self,
        *,
        n_leading: int = 1,
        lead_quantile: float = 0.99,
        full_quantile: float = 0.999,
        threshold_quantile: float = 0.005,
    ) -> None:
        super().__init__()
        if not 0.0 < threshold_quantile < 0.5:
            raise InvalidInput(
                f"threshold_quantile must be in (0, 0.5), got {threshold_quantile}", field="threshold_quantile"
            )
        for fname, q in (("lead_quantile", lead_quantile), ("full_quantile", full_quantile)):
            if not 0.5 < q < 1.0:
                raise InvalidInput(f"{fname} must be in (0.5, 1), got {q}", field=fname)
        if n_leading < 1:
            raise InvalidInput(f"n_leading must be >= 1, got {n_leading}", field="n_leading")
        self.n_leading = int(n_leading)
        self.lead_quantile = float(lead_quantile)
        self.full_quantile = float(full_quantile)
        self.threshold_quantile = float(threshold_quantile)
        self.features: list[str] = []
        self.threshold: float = float("nan")
        self.training_data_sha256: str | None = None
        self.n_training_rows = 0
        self.center_: np.ndarray = np.empty(0)
        self.scale_: np.ndarray = np.empty(0)
        self.whiten_: np.ndarray = np.empty((0, 0))
        self.c_lead: float = float("nan")
        self.c_full: float = float("nan")
        self._pca: Any = None

    @property
    def params(self) -> dict[str, Any]:
        """Hyper-parameters needed to reproduce the fit."""
        return {
            "n_leading": self.n_leading,
            "lead_quantile": self.lead_quantile,
            "full_quantile": self.full_quantile,
            "threshold_quantile": self.threshold_quantile,
        }

    @property
    def estimator(self) -> Any:
        """The fitted scikit-learn PCA on the standardised features (NotFittedError before fit)."""
        self._check_fitted()
        return self._pca

    def _fit(self, data: Any, **kwargs: Any) -> None:
        from sklearn.decomposition import PCA

        features = training_features(data)
        if self.n_leading >= len(features):
            raise InvalidInput(
                f"n_leading ({self.n_leading}) must be below the number of features ({len(features)})",
                field="n_leading",
            )
        # the model sees what production sees: float32 values (ONNX input), computed in float64
        x = _matrix(data, features).astype(np.float64)
        mean, sd = x.mean(axis=0), x.std(axis=0)
        const = np.flatnonzero(sd <= 1e-12 * np.maximum(np.abs(mean), 1.0))
        if const.size:
            raise InvalidInput(
                f"feature {features[int(const[0])]!r} is constant in the training data", field=features[int(const[0])]
            )
        pca = PCA(svd_solver="full").fit((x - mean) / sd)
        if float(pca.explained_variance_[-1]) <= 1e-12:
            raise InvalidInput("training features are linearly dependent (singular covariance)", field="data")
        self._pca = pca
        self.features = features
        # fold PCA's own (numerically ~0) centring into the feature centre: one Sub in the graph
        self.center_ = mean + sd * pca.mean_
        self.scale_ = sd
        self.whiten_ = _significant(pca.components_.T / np.sqrt(pca.explained_variance_))
        lead, full = self._parts(x)
        self.c_lead = float(_significant(np.quantile(lead, self.lead_quantile)))
        self.c_full = float(_significant(np.quantile(full, self.full_quantile)))
        train_scores = -np.maximum(lead / self.c_lead, full / self.c_full)
        self.threshold = float(_significant(np.quantile(train_scores, self.threshold_quantile)))
        self.training_data_sha256 = data_sha256(data.loc[:, features])
        self.n_training_rows = len(data)

    def _parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(lead, full)`` statistics via scikit-learn's PCA (the reference the ONNX graph must match)."""
        t = self._pca.transform((x - self.center_ + self.scale_ * self._pca.mean_) / self.scale_)
        w2 = t * t / self._pca.explained_variance_
        return w2[:, : self.n_leading].sum(axis=1), w2.sum(axis=1)

    def statistics(self, data: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """Per-row ``t2_leading`` and ``mahalanobis_d2`` (raw, before calibration) for explanations."""
        self._check_fitted()
        lead, full = self._parts(_matrix(data, self.features).astype(np.float64))
        index = data.index if isinstance(data, pd.DataFrame) else None
        return pd.DataFrame({"t2_leading": lead, "mahalanobis_d2": full}, index=index)

    def _score(self, data: Any) -> np.ndarray:
        lead, full = self._parts(_matrix(data, self.features).astype(np.float64))
        return np.asarray(-np.maximum(lead / self.c_lead, full / self.c_full), dtype=np.float64)

    def _predict(self, data: Any) -> np.ndarray:
        """True where the row is anomalous (score below the calibrated threshold)."""
        return self._score(data) < self.threshold

    def to_onnx(self) -> bytes:
        """Export to ONNX bytes (opset 17, float64 inside, output ``score_samples``)."""
        self._check_fitted()
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        d = len(self.features)
        combine = np.zeros((d, 2), dtype=np.float64)
        combine[: self.n_leading, 0] = 1.0 / self.c_lead
        combine[:, 1] = 1.0 / self.c_full
        combine = _significant(combine)

        def init(name: str, value: np.ndarray) -> onnx.TensorProto:
            return numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float64), name)

        nodes = [
            helper.make_node("Cast", ["X"], ["x64"], to=TensorProto.DOUBLE),
            helper.make_node("Sub", ["x64", "center"], ["xc"]),
            helper.make_node("Mul", ["xc", "inv_scale"], ["z"]),
            helper.make_node("MatMul", ["z", "whiten"], ["w"]),
            helper.make_node("Mul", ["w", "w"], ["w2"]),
            helper.make_node("MatMul", ["w2", "combine"], ["parts"]),
            helper.make_node("ReduceMax", ["parts"], ["worst"], axes=[1], keepdims=0),
            helper.make_node("Neg", ["worst"], ["score_samples"]),
        ]
        graph = helper.make_graph(
            nodes,
            "pca_mahalanobis",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, d])],
            [helper.make_tensor_value_info("score_samples", TensorProto.DOUBLE, [None])],
            initializer=[
                init("center", self.center_),
                init("inv_scale", 1.0 / self.scale_),
                init("whiten", self.whiten_),
                init("combine", combine),
            ],
        )
        model = helper.make_model(graph, producer_name="qcn.models.mspc", opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # readable by any onnxruntime >= 1.10
        onnx.checker.check_model(model)
        return bytes(model.SerializeToString())
