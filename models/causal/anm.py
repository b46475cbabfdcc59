"""Additive-noise model (ANM) on a causal DAG: every node is ``x_j = f_j(parents) + n_j``.

``f_j`` is a polynomial ridge regression on the standardised parents, degree chosen per node by hold-out
validation (25 % of rows): 1 (linear), 2 (squares + pairwise products) or 3 (+ cubes); a higher degree is
kept only if it lowers the validation MSE by more than 2 %. Polynomials evaluate in a few microseconds
with numpy, which is what keeps root-cause ranking in the millisecond range (gradient boosting was
rejected for that reason: ~0.1-0.5 ms per node per call). Root nodes keep their empirical
distribution (mean, sd and the sorted sample); every node stores its residual sd and its residuals
(used to resample noise for ``do()`` queries).

Worked example (linear SCM ``y = 1 + 2 x + n``): the fitted mechanism of ``y`` has slope ~2 on ``x``, its
noise for an observed ``(x=1, y=4)`` is ``4 - (1 + 2) = 1``; setting ``x = 2`` and keeping that noise
gives the counterfactual ``y = 1 + 4 + 1 = 6``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from models.base import AnalysisModel, ModelVersion, sha256_json
from models.causal.constraints import Spec
from models.causal.graph import CausalGraph, data_sha256
from models.errors import InsufficientData, InvalidInput, UnknownVariable

__all__ = ["AdditiveNoiseModel", "Mechanism"]

_MIN_ROWS = 30


def _features(z: np.ndarray, degree: int, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    """Polynomial features of standardised parents ``z`` (rows x k).

    Linear, square and pairwise-product terms use ``z`` as is; only the cubic term uses ``z`` clipped
    to ``[lo, hi]`` (training range + 1 sd), so a cubic does not explode outside the data (a cubic
    fitted on +/-3 sd is meaningless at 8 sd, which is where faults put a parent). Quadratics are
    left unclipped even in degree-3 fits: they extrapolate sanely, and clipping them made a child of
    a far-out parent look like the root cause (plasma: matching-network temperature -> reflected
    power, a quadratic mechanism).
    """
    cols = [z]
    if degree >= 2:
        cols.append(z * z)
        k = z.shape[1]
        if k > 1:
            iu = np.triu_indices(k, 1)
            cols.append(z[:, iu[0]] * z[:, iu[1]])
    if degree >= 3:
        zc = np.clip(z, lo, hi) if lo is not None and hi is not None else z
        cols.append(zc * zc * zc)
    return np.concatenate(cols, axis=1)


@dataclass
class Mechanism:
    """Fitted ``f_j`` of one node (``degree`` 0 = root node: constant mean)."""

    name: str
    parents: tuple[str, ...]
    pidx: np.ndarray
    degree: int
    mu: np.ndarray
    sd: np.ndarray
    coef: np.ndarray
    intercept: float
    resid_sd: float
    val_mse: dict[int, float] = field(default_factory=dict)
    zlo: np.ndarray | None = None
    zhi: np.ndarray | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``f_j`` for each row of the full variable matrix ``x`` (rows x all variables)."""
        if self.degree == 0:
            return np.full(x.shape[0], self.intercept)
        z = (x[:, self.pidx] - self.mu) / self.sd
        return _features(z, self.degree, self.zlo, self.zhi) @ self.coef + self.intercept


def _ridge(f: np.ndarray, y: np.ndarray, lam: float = 1e-3) -> tuple[np.ndarray, float]:
    fm, ym = f.mean(axis=0), y.mean()
    fc = f - fm
    a = fc.T @ fc + lam * len(y) * np.eye(f.shape[1])
    coef = np.linalg.solve(a, fc.T @ (y - ym))
    return coef, float(ym - fm @ coef)


class AdditiveNoiseModel(AnalysisModel):
    """ANM fitted on a :class:`CausalGraph` and in-control data; ``score`` gives standardised residuals."""

    name = "causal_anm"

    def __init__(self, max_degree: int = 3, seed: int = 0) -> None:
        super().__init__()
        self.max_degree = max_degree
        self.seed = seed
        self.graph: CausalGraph | None = None
        self.order: list[str] = []
        self.index: dict[str, int] = {}
        self.mechanisms: list[Mechanism] = []
        self.residuals: np.ndarray = np.empty((0, 0))
        self.mean: np.ndarray = np.empty(0)
        self.std: np.ndarray = np.empty(0)
        self.specs: dict[str, Spec] = {}
        self.nx_graph: nx.DiGraph = nx.DiGraph()
        self.data_sha256 = ""
        self._plans: dict[str, Any] = {}
        self._version: ModelVersion | None = None

    # --- fitting ---------------------------------------------------------------------------------
    def _fit(self, data: Any, **kwargs: Any) -> None:
        graph: CausalGraph | None = kwargs.get("graph")
        if graph is None:
            raise InvalidInput("AdditiveNoiseModel.fit needs graph=CausalGraph", field="graph")
        if not isinstance(data, pd.DataFrame):
            raise InvalidInput(f"data must be a pandas DataFrame, got {type(data).__name__}", field="data")
        for v in graph.variables:
            if v not in data.columns:
                raise InvalidInput(f"data lacks graph variable {v!r}", field=v)
        if len(data) < _MIN_ROWS:
            raise InsufficientData(_MIN_ROWS, len(data), "rows")
        g = graph.to_networkx()
        self.graph, self.nx_graph = graph, g
        self.order = list(nx.lexicographical_topological_sort(g))
        self.index = {n: i for i, n in enumerate(self.order)}
        x = data[self.order].to_numpy(dtype=float)
        if not np.isfinite(x).all():
            bad = self.order[int(np.where(~np.isfinite(x).all(axis=0))[0][0])]
            raise InvalidInput(f"column {bad!r} has missing or infinite values", field=bad)
        self.mean, self.std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-12)
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(len(x))
        n_val = max(len(x) // 4, 5)
        val, tr = perm[:n_val], perm[n_val:]
        self.mechanisms = []
        resid = np.empty_like(x)
        for j, name in enumerate(self.order):
            parents = tuple(sorted(g.predecessors(name), key=self.index.__getitem__))
            y = x[:, j]
            if not parents:
                mech = Mechanism(
                    name,
                    (),
                    np.array([], dtype=int),
                    0,
                    np.empty(0),
                    np.empty(0),
                    np.empty(0),
                    float(y.mean()),
                    float(max(y.std(), 1e-12)),
                )
            else:
                pidx = np.array([self.index[p] for p in parents])
                mu, sd = x[:, pidx].mean(axis=0), np.maximum(x[:, pidx].std(axis=0), 1e-12)
                z = (x[:, pidx] - mu) / sd
                zlo, zhi = z.min(axis=0) - 1.0, z.max(axis=0) + 1.0
                scores: dict[int, float] = {}
                best = 1
                for d in range(1, self.max_degree + 1):
                    f = _features(z, d)
                    if f.shape[1] >= len(tr) // 3:
                        break
                    c, b = _ridge(f[tr], y[tr])
                    scores[d] = float(np.mean((f[val] @ c + b - y[val]) ** 2))
                    if d > 1 and scores[d] < 0.98 * scores[best]:
                        best = d
                c, b = _ridge(_features(z, best), y)
                mech = Mechanism(name, parents, pidx, best, mu, sd, c, b, 1.0, scores, zlo, zhi)
                mech.resid_sd = float(max(np.std(y - mech.predict(x)), 1e-12))
            resid[:, j] = y - mech.predict(x)
            self.mechanisms.append(mech)
        self.residuals = resid
        self.data_sha256 = data_sha256(data[self.order])
        specs = kwargs.get("specs") or {}
        self.specs = {k: v for k, v in specs.items() if k in self.index}
        self._plans = {}
        self._version = None

    # --- helpers used by ranking / interventions -----------------------------------------------------
    def idx(self, name: str) -> int:
        """Column index of ``name``; raises UnknownVariable."""
        try:
            return self.index[name]
        except KeyError:
            raise UnknownVariable(name, known=self.order) from None

    def to_vector(self, row: Mapping[str, float] | pd.Series) -> np.ndarray:
        """Row (dict/Series) -> vector in model order; every model variable must be present."""
        self._check_fitted()
        out = np.empty(len(self.order))
        for i, n in enumerate(self.order):
            if n not in row:
                raise InvalidInput(f"observation lacks variable {n!r}", field=n)
            v = float(row[n])
            if not np.isfinite(v):
                raise InvalidInput(f"observation has non-finite {n!r}", field=n)
            out[i] = v
        return out

    def noise_of(self, x: np.ndarray) -> np.ndarray:
        """Abduction: residual ``x_j - f_j(parents)`` of every node for rows of ``x`` (2-D)."""
        n = np.empty_like(x)
        for j, m in enumerate(self.mechanisms):
            n[:, j] = x[:, j] - m.predict(x)
        return n

    def propagate(
        self,
        noise: np.ndarray,
        fixed: Mapping[int, np.ndarray | float] | None = None,
        nodes: Sequence[int] | None = None,
        base: np.ndarray | None = None,
    ) -> np.ndarray:
        """Prediction: values from noises in topological order; ``fixed`` columns are held (do()).

        ``nodes`` restricts recomputation to those column indices (in topological order); other
        columns are taken from ``base`` (default: zeros).
        """
        x = np.array(base, dtype=float, copy=True) if base is not None else np.zeros_like(noise)
        fixed = fixed or {}
        for j in range(len(self.order)) if nodes is None else nodes:
            if j in fixed:
                x[:, j] = fixed[j]
            else:
                x[:, j] = self.mechanisms[j].predict(x) + noise[:, j]
        return x

    def sample_noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Independent bootstrap of each node's training residuals (n rows)."""
        picks = rng.integers(0, self.residuals.shape[0], size=(n, self.residuals.shape[1]))
        return np.take_along_axis(self.residuals, picks, axis=0)

    def spec_for(self, name: str, spec: Spec | None) -> Spec | None:
        """Explicit spec, else the one the model was fitted with (may be None)."""
        self.idx(name)
        return spec if spec is not None else self.specs.get(name)

    def _score(self, data: Any) -> pd.DataFrame:
        """Standardised residuals ``n_j / resid_sd_j`` for each row of ``data``."""
        if isinstance(data, Mapping | pd.Series):
            data = pd.DataFrame([dict(data)])
        x = np.vstack([self.to_vector(r) for _, r in data.iterrows()])
        sd = np.array([m.resid_sd for m in self.mechanisms])
        return pd.DataFrame(self.noise_of(x) / sd, columns=self.order, index=data.index)

    def version(self) -> ModelVersion:
        """Identity of this fitted model (graph hash + data hash + mechanism parameters)."""
        self._check_fitted()
        assert self.graph is not None
        if self._version is not None:
            return self._version
        params = {
            "graph_sha256": self.graph.sha256,
            "data_sha256": self.data_sha256,
            "max_degree": self.max_degree,
            "seed": self.seed,
            "degrees": {m.name: m.degree for m in self.mechanisms},
        }
        body = {**params, "coef": {m.name: [float(c) for c in m.coef] + [m.intercept] for m in self.mechanisms}}
        version = ModelVersion(name=self.name, version="1", sha256=sha256_json(body), params=params)
        self._version = version
        return version
