"""Root causes of an anomalous batch: fault-shape detectors on each variable's own noise term.

A batch is ``w`` consecutive rows (samples in time order). For every variable ``j`` the model knows its
mechanism ``x_j = f_j(parents) + s_j(parents) * e_j`` (fitted on normal rows: a piecewise-linear spline
in each continuous parent, pairwise products, one indicator per level of a discrete parent; the noise scale
``s_j`` is itself a log-linear function of the parents, so heteroscedastic noise is not mistaken for a
fault). What is attributed to ``j`` is only its standardised noise ``e_j``: what its own mechanism cannot
explain given its parents. A child of a shifted variable follows its parent and keeps a normal ``e``; when
the parent lies outside the training range the child's ``e`` is divided by the extrapolation gap of its
mechanism as well, so a guess is not evidence.

Detectors, each computed per batch on ``e_j`` in time order (on raw readings for ``stuck``):

==============  ==========================================================================================
``level_shift``  ``|mean(e)| sqrt(w)``
``drift``        ``|OLS slope of e on row index| * sqrt(sum (t - t_mean)^2)``
``cusum``        ``max_k |sum_{i<=k} (e_i - mean(e))| / sqrt(w)`` (a change inside the batch)
``variance``     ``log(mean((e - mean(e))^2))``
``outliers``     ``max |e|`` (a few bad samples; also reported per row)
``stuck``        share of consecutive identical readings (run length vs the variable's normal resolution);
                 evidence only when most consecutive pairs repeat (share >= 0.5)
``new_level``    share of rows whose discrete level never occurred in normal operation
==============  ==========================================================================================

Calibration: process data are autocorrelated and wander within normal operation, so no detector is
compared with a textbook null. Each one is evaluated on every window of ``w`` consecutive normal rows
(sizes on a grid, interpolated), and a statistic ``s`` becomes ``z = (s - median) / ((q99 - median) /
2.326)``: ``z = 2.33`` is as unusual as the worst 1 % of normal windows. A variable's evidence is its
largest ``z``; the detector that gave it is the evidence kind.

Ranking: symptom variables (quality outputs) are never candidates. The anomalous outputs are the symptoms
with evidence >= 3 (for an output: its value, or its own noise, is unusual). Among candidates whose own
evidence is >= 3, one with no directed path to any anomalous output is ranked after every one that has
such a path (a change that does not reach the output does not explain it), and one with no path to any
output at all after those; candidates with weaker evidence follow; within each group by evidence. When no
output is anomalous (a stuck sensor, a change that has not reached quality yet) the path to any output
decides. The evidence of a child of a stuck reading counts a quarter: it follows the true value, the model
sees the frozen one. (Evidence first: a learned graph can miss the edge of a weak mechanism, and a strongly
unusual variable must not drop below ordinary ones for that.)

Counterfactual check (for the top candidates): "had ``X`` stayed normal": ``X``'s noise clipped to its
normal spread (1-99 % quantiles of its standardised noise on normal rows; a discrete ``X`` set to its most
frequent level, and on rows with a level never seen, its children's noise clipped the same way: that is
where a new lot's effect shows), descendants recomputed through their mechanisms with their own noise kept
(abduction), on every anomalous row of the outputs ``X`` reaches (a row where one of them lies outside its
normal window: its 0.1-99.9 % range on normal rows, narrowed to its spec if given; rows anomalous only on outputs
``X`` cannot reach are not its to restore). It reports the share of those rows brought back inside with a
95 % Wilson interval. ``confirms``: the check restores at least half of the anomalous rows, decided only
on at least 3 of them (``None`` below: one or two rows, which a normal tail or a small effect of any variable
can explain, do not decide a cause). A candidate whose evidence is a stuck reading gets no check (a measurement fault:
the process did not change).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.base import sha256_json
from models.causal.constraints import Spec
from models.causal.knowledge import KnownGraph, ProcessKnowledge
from models.causal.learn import learn_graph
from models.errors import InsufficientData, InvalidInput, NotFittedError

__all__ = ["DETECTORS", "BatchRanking", "BatchRootCauseModel", "RankedCause"]

DETECTORS: tuple[str, ...] = ("level_shift", "drift", "cusum", "variance", "outliers", "stuck")
_GRID = (8, 12, 16, 20, 25, 30, 40, 50, 65, 80, 100, 130, 160, 200)
_MIN_ROWS = 60
_OUTPUT_Z = 3.0
_STUCK_SHARE = 0.5
_CF_MIN_ROWS = 3
_CF_Q = 0.01
_KNOTS = (-2.0, -1.0, 0.0, 1.0, 2.0)
_TRIU: dict[int, tuple[np.ndarray, np.ndarray]] = {}


@dataclass
class _Mech:
    """Fitted mechanism of one continuous variable."""

    cont: list[int]
    cats: list[tuple[int, np.ndarray]]  # (column in the code matrix, level frequencies)
    mu: np.ndarray
    sd: np.ndarray
    zlo: np.ndarray
    zhi: np.ndarray
    coef: np.ndarray
    intercept: float
    scale_coef: np.ndarray
    scale_intercept: float
    resid_sd: float
    e_lo: float = -3.0
    e_hi: float = 3.0

    def _design(self, xc: np.ndarray, xk: np.ndarray, clip: bool) -> tuple[np.ndarray, np.ndarray]:
        n = xc.shape[0]
        z = (xc[:, self.cont] - self.mu) / self.sd if self.cont else np.empty((n, 0))
        zc = np.clip(z, self.zlo, self.zhi)
        zl = zc if clip else z
        cols = [zl] + [np.maximum(zl - k, 0.0) for k in _KNOTS]
        if zc.shape[1] > 1:
            iu = _TRIU.get(zc.shape[1])
            if iu is None:
                iu = _TRIU.setdefault(zc.shape[1], np.triu_indices(zc.shape[1], 1))
            cols.append(zc[:, iu[0]] * zc[:, iu[1]])
        for col, freq in self.cats:
            codes = xk[:, col]
            hot = np.zeros((n, len(freq) - 1))
            known = codes >= 0
            hot[known] = np.eye(len(freq))[codes[known], 1:]
            hot[~known] = freq[1:]  # a level never seen: the average level
            cols.append(hot)
        scale = [z, np.abs(zc), *cols[-len(self.cats) :]] if self.cats else [z, np.abs(zc)]
        return np.concatenate(cols, axis=1), np.concatenate(scale, axis=1)

    def predict(self, xc: np.ndarray, xk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``f(parents)`` and the per-row noise sd (widened by the extrapolation gap)."""
        f, s = self._design(xc, xk, clip=False)
        pred = f @ self.coef + self.intercept
        sd_row = self.resid_sd * np.clip(np.exp(0.5 * (s @ self.scale_coef + self.scale_intercept)), 0.3, 3.0)
        if self.cont:
            fc, _ = self._design(xc, xk, clip=True)
            gap = pred - (fc @ self.coef + self.intercept)
            sd_row = np.sqrt(sd_row * sd_row + gap * gap)
        return pred, sd_row


def _ridge(f: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    fm, ym = f.mean(axis=0), y.mean()
    fc = f - fm
    a = fc.T @ fc + lam * len(y) * np.eye(f.shape[1])
    coef = np.linalg.solve(a, fc.T @ (y - ym))
    return coef, float(ym - fm @ coef)


def _stats(e: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Detector statistics for windows ``e``/``raw`` of shape (m, w, p) -> (m, len(DETECTORS), p)."""
    w = e.shape[1]
    mean = e.mean(axis=1)
    t = np.arange(w) - (w - 1) / 2.0
    stt = float(t @ t) or 1.0
    slope = np.einsum("t,mtp->mp", t, e) / stt
    dev = e - mean[:, None, :]
    cusum = np.abs(np.cumsum(dev, axis=1)).max(axis=1) / math.sqrt(w)
    var = np.log((dev * dev).mean(axis=1) + 1e-12)
    outl = np.abs(e).max(axis=1)
    stuck = (np.diff(raw, axis=1) == 0).mean(axis=1) if w > 1 else np.zeros_like(mean)
    return np.stack([np.abs(mean) * math.sqrt(w), np.abs(slope) * math.sqrt(stt), cusum, var, outl, stuck], axis=1)


@dataclass(frozen=True)
class RankedCause:
    """One ranked candidate and its evidence."""

    variable: str
    rank: int
    score: float
    evidence: str
    detectors: dict[str, float]
    tier: str | None
    reaches_output: bool
    path: list[str]
    rows_flagged: int
    counterfactual: dict[str, Any] | None = None


@dataclass(frozen=True)
class BatchRanking:
    """Ranked root causes of one batch (JSON-able via :meth:`to_dict`)."""

    causes: list[RankedCause]
    outputs: list[dict[str, Any]]
    rows: int
    anomalous_rows: int
    seconds: float
    model_sha256: str
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def top(self) -> RankedCause | None:
        """Best candidate (None when there is no candidate)."""
        return self.causes[0] if self.causes else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        d = asdict(self)
        d["causes"] = [asdict(c) for c in self.causes]
        return d


class BatchRootCauseModel:
    """Fit on normal rows (time order) with known or learned structure; :meth:`rank` explains a batch."""

    def __init__(self, *, cf_top: int = 3, output_z: float = _OUTPUT_Z) -> None:
        self.cf_top = cf_top
        self.output_z = output_z
        self.fitted = False

    # --- fitting ---------------------------------------------------------------------------------
    def fit(
        self,
        data: pd.DataFrame,
        *,
        knowledge: ProcessKnowledge | None = None,
        graph: KnownGraph | None = None,
        specs: Mapping[str, Spec] | None = None,
        learn_penalty: float = 1.0,
    ) -> BatchRootCauseModel:
        """Fit mechanisms and detector calibration on ``data`` (normal rows, time order).

        ``graph``: a complete known DAG (over the observed variables); without one the structure is learned
        with :func:`models.causal.learn.learn_graph` under ``knowledge``.
        """
        if not isinstance(data, pd.DataFrame):
            raise InvalidInput(f"training data must be a DataFrame, got {type(data).__name__}", field="data")
        if len(data) < _MIN_ROWS:
            raise InsufficientData(_MIN_ROWS, len(data), "normal rows")
        if graph is not None:
            missing = [n for n in graph.nodes if n not in data.columns]
            if missing:
                raise InvalidInput(f"training data lacks graph variable(s) {', '.join(missing[:8])}", field=missing[0])
            if knowledge is None:
                knowledge = ProcessKnowledge.from_graph(graph)
            data = data[list(graph.nodes)]
        elif knowledge is None:
            knowledge = ProcessKnowledge(tiers={str(c): "process" for c in data.columns})
        names = [str(c) for c in data.columns]
        cats = {n for n in names if n in knowledge.categorical or not pd.api.types.is_numeric_dtype(data[n])}
        if graph is not None:
            cats |= set(graph.categorical)
        for n in names:
            if n not in cats and not np.isfinite(data[n].to_numpy(dtype=float)).all():
                raise InvalidInput(f"column {n!r} has missing or non-numeric values", field=n)
        if graph is None:
            graph = learn_graph(data, knowledge, penalty=learn_penalty)
        self.knowledge, self.graph = knowledge, graph
        self.cats = sorted(cats)
        self.conts = [n for n in names if n not in cats]
        self.ci = {n: i for i, n in enumerate(self.conts)}
        self.ki = {n: i for i, n in enumerate(self.cats)}
        self.levels = {n: sorted(map(str, data[n].unique())) for n in self.cats}
        self.specs = dict(specs or {})
        parents: dict[str, list[str]] = {n: [] for n in names}
        for u, v in graph.edges:
            if v in parents and u in parents:
                parents[v].append(u)
        self.parents = {k: sorted(v) for k, v in parents.items()}
        self.order = _topo(names, self.parents)
        self.children: dict[str, list[str]] = {n: [] for n in names}
        for v, ps in self.parents.items():
            for u in ps:
                self.children[u].append(v)
        xc, xk = self._matrices(data)
        self.mechs: dict[str, _Mech] = {}
        e = np.empty_like(xc)
        for n in self.order:
            if n in cats:
                continue
            m = self._fit_mech(n, xc, xk)
            self.mechs[n] = m
            pred, sdr = m.predict(xc, xk)
            e[:, self.ci[n]] = (xc[:, self.ci[n]] - pred) / sdr
        for n, m in self.mechs.items():
            col = e[:, self.ci[n]]
            m.e_lo, m.e_hi = float(np.quantile(col, _CF_Q)), float(np.quantile(col, 1 - _CF_Q))
        self.windows = {
            n: (float(np.quantile(xc[:, i], 0.001)), float(np.quantile(xc[:, i], 0.999))) for n, i in self.ci.items()
        }
        self.modal = {n: int(np.bincount(xk[:, i][xk[:, i] >= 0], minlength=1).argmax()) for n, i in self.ki.items()}
        self._calibrate(e, xc)
        self.sha256 = sha256_json(
            {
                "edges": sorted(map(list, graph.edges)),
                "coef": {n: [round(float(c), 10) for c in m.coef] for n, m in self.mechs.items()},
                "rows": len(data),
            }
        )
        self.fitted = True
        return self

    def _matrices(self, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        missing = [n for n in self.conts + self.cats if n not in data.columns]
        if missing:
            raise InvalidInput(f"batch lacks variable(s) {', '.join(missing[:8])}", field=missing[0])
        try:  # column by column: a DataFrame selection costs more than the whole ranking
            cols = [np.asarray(data[n], dtype=float) for n in self.conts]
            xc = np.column_stack(cols) if cols else np.empty((len(data), 0))
        except (TypeError, ValueError):
            bad = next(n for n in self.conts if not pd.api.types.is_numeric_dtype(data[n]))
            raise InvalidInput(f"column {bad!r} must be numeric", field=bad) from None
        if not np.isfinite(xc).all():
            bad = self.conts[int(np.where(~np.isfinite(xc).all(axis=0))[0][0])]
            raise InvalidInput(f"column {bad!r} has missing or non-finite values", field=bad)
        xk = np.empty((len(data), len(self.cats)), dtype=int)
        for i, n in enumerate(self.cats):
            idx = {lv: j for j, lv in enumerate(self.levels[n])} if hasattr(self, "levels") else {}
            xk[:, i] = [idx.get(str(v), -1) for v in data[n]]
        return xc, xk

    def _fit_mech(self, n: str, xc: np.ndarray, xk: np.ndarray) -> _Mech:
        y = xc[:, self.ci[n]]
        ps = self.parents[n]
        cont = [self.ci[p] for p in ps if p in self.ci]
        cats = []
        for p in ps:
            if p in self.ki:
                codes = xk[:, self.ki[p]]
                cats.append((self.ki[p], np.bincount(codes, minlength=len(self.levels[p])) / len(codes)))
        mu = xc[:, cont].mean(axis=0) if cont else np.empty(0)
        sd = np.maximum(xc[:, cont].std(axis=0), 1e-12) if cont else np.empty(0)
        z = (xc[:, cont] - mu) / sd if cont else np.empty((len(y), 0))
        m = _Mech(
            cont,
            cats,
            mu,
            sd,
            z.min(axis=0),
            z.max(axis=0),
            np.empty(0),
            float(y.mean()),
            np.empty(0),
            0.0,
            float(max(y.std(), 1e-12)),
        )
        f, s = m._design(xc, xk, clip=False)
        if f.shape[1]:
            m.coef, m.intercept = _ridge(f, y, 1e-4)
        else:
            m.coef = np.empty(0)
        r = y - (f @ m.coef + m.intercept)
        m.resid_sd = float(max(r.std(), 1e-12))
        m.scale_coef = np.zeros(s.shape[1])
        if s.shape[1]:
            ly = np.log(r * r / (m.resid_sd**2) + 1e-3)
            m.scale_coef, m.scale_intercept = _ridge(s, ly, 1e-2)
            ratio = np.exp(s @ m.scale_coef + m.scale_intercept)
            m.scale_intercept -= float(np.log(np.mean(r * r / (m.resid_sd**2 * ratio))))
        return m

    def _calibrate(self, e: np.ndarray, xc: np.ndarray) -> None:
        # columns: every variable's own noise, then its standardised value (how far the value itself is
        # from normal: what makes an output anomalous, whatever its parents did)
        self.mu_marg, self.sd_marg = xc.mean(axis=0), np.maximum(xc.std(axis=0), 1e-12)
        e = np.concatenate([e, (xc - self.mu_marg) / self.sd_marg], axis=1)
        xc = np.concatenate([xc, xc], axis=1)
        n = len(e)
        med, scl, grid = [], [], []
        for w in _GRID:
            if w > n // 3:
                break
            m = min(400, n - w + 1)
            starts = np.linspace(0, n - w, m).astype(int)
            idx = starts[:, None] + np.arange(w)
            st = _stats(e[idx], xc[idx])
            md = np.median(st, axis=0)
            q = np.quantile(st, 0.99, axis=0)
            floor = np.full_like(md, 0.05)
            floor[DETECTORS.index("stuck")] = 0.5 / w
            med.append(md)
            scl.append(np.maximum((q - md) / 2.326, floor))
            grid.append(w)
        self.cal_grid = np.array(grid, dtype=float)
        self.cal_med, self.cal_scale = np.array(med), np.array(scl)

    def _cal(self, w: int) -> tuple[np.ndarray, np.ndarray]:
        g = self.cal_grid
        if w <= g[0]:
            return self.cal_med[0], self.cal_scale[0]
        if w >= g[-1]:
            return self.cal_med[-1], self.cal_scale[-1]
        i = int(np.searchsorted(g, w))
        a = (w - g[i - 1]) / (g[i] - g[i - 1])
        return (1 - a) * self.cal_med[i - 1] + a * self.cal_med[i], (1 - a) * self.cal_scale[
            i - 1
        ] + a * self.cal_scale[i]

    # --- scoring ---------------------------------------------------------------------------------
    def residuals(self, xc: np.ndarray, xk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Standardised noise ``e``, raw residual and per-row noise sd of every continuous variable."""
        e = np.empty_like(xc)
        r = np.empty_like(xc)
        s = np.empty_like(xc)
        for n, m in self.mechs.items():
            i = self.ci[n]
            pred, sdr = m.predict(xc, xk)
            r[:, i] = xc[:, i] - pred
            s[:, i] = sdr
            e[:, i] = r[:, i] / sdr
        return e, r, s

    def evidence(self, batch: pd.DataFrame) -> tuple[dict[str, dict[str, float]], np.ndarray, Any]:
        """Calibrated detector scores per variable (``z`` units), the standardised noise and the matrices."""
        if not self.fitted:
            raise NotFittedError("BatchRootCauseModel")
        xc, xk = self._matrices(batch)
        w = len(batch)
        if w < 2:
            raise InsufficientData(2, w, "rows in the batch")
        e, r, s = self.residuals(xc, xk)
        both = np.concatenate([e, (xc - self.mu_marg) / self.sd_marg], axis=1)
        st = _stats(both[None], np.concatenate([xc, xc], axis=1)[None])[0]
        md, sc = self._cal(w)
        z = (st - md) / sc
        # a frozen reading repeats on most consecutive pairs; a quantised variable that repeats a little more
        # often than usual is not frozen (its z can be large when its normal share barely varies)
        k_stuck = DETECTORS.index("stuck")
        z[k_stuck] = np.where(st[k_stuck] >= _STUCK_SHARE, z[k_stuck], np.minimum(z[k_stuck], 0.0))
        ev: dict[str, dict[str, float]] = {}
        p = len(self.conts)
        for n, i in self.ci.items():
            ev[n] = {d: round(float(z[k, i]), 4) for k, d in enumerate(DETECTORS)}
            if self.knowledge.is_symptom(n):
                # an output is anomalous by its value (or its own noise); a candidate only by its own noise
                for k, d in enumerate(DETECTORS):
                    if d != "stuck":
                        ev[n][d] = max(ev[n][d], round(float(z[k, p + i]), 4))
        for n, i in self.ki.items():
            new = float((xk[:, i] < 0).mean())
            ev[n] = {"new_level": 5.0 + 25.0 * new if new > 0 else 0.0}
        return ev, e, (xc, xk, r, s)

    def rank(self, batch: pd.DataFrame, k: int = 5) -> BatchRanking:
        """Ranked root causes of ``batch`` (rows in time order), with counterfactual checks on the top ones."""
        t0 = time.perf_counter()
        ev, e, (xc, xk, _, _) = self.evidence(batch)
        best = {n: max(d.items(), key=lambda kv: kv[1]) for n, d in ev.items()}
        sym = [n for n in best if self.knowledge.is_symptom(n)]
        outputs: list[dict[str, Any]] = [
            {"variable": n, "score": best[n][1], "evidence": best[n][0]}
            for n in sorted(sym, key=lambda n: -best[n][1])
            if best[n][1] >= self.output_z
        ]
        targets = [str(o["variable"]) for o in outputs]
        cands = [n for n in best if not self.knowledge.is_symptom(n)]
        # a frozen reading of a parent makes its children's noise look odd (they follow the true value):
        # their evidence is explained by the stuck sensor and counts a quarter
        stuck = {n for n in cands if best[n][0] == "stuck" and best[n][1] >= self.output_z}
        for c in cands:
            if c not in stuck and stuck & set(self.parents[c]):
                best[c] = (best[c][0], best[c][1] * 0.25)
        to_target = {c: self._path(c, targets) for c in cands}
        by_evidence = sorted(sym, key=lambda n: -best[n][1])
        paths = {c: to_target[c] or self._path(c, by_evidence) for c in cands}
        reach = {c: (not targets) or to_target[c] is not None for c in cands}
        reach_any = {c: paths[c] is not None for c in cands}
        strong = {c: best[c][1] >= self.output_z for c in cands}
        order = sorted(
            cands, key=lambda c: (not strong[c], not (strong[c] and reach[c]), not reach_any[c], -best[c][1], c)
        )[:k]
        anom_rows = self._anomalous_rows(xc)
        causes = []
        for rank, c in enumerate(order, start=1):
            rows = int((np.abs(e[:, self.ci[c]]) > 3.0).sum()) if c in self.ci else int((xk[:, self.ki[c]] < 0).sum())
            cf = self._counterfactual(c, xc, xk, e, stuck=best[c][0] == "stuck") if rank <= self.cf_top else None
            causes.append(
                RankedCause(
                    variable=c,
                    rank=rank,
                    score=round(float(best[c][1]), 4),
                    evidence=best[c][0],
                    detectors=ev[c],
                    tier=self.knowledge.tiers.get(c),
                    reaches_output=bool(to_target[c] is not None),
                    path=paths[c] or [c],
                    rows_flagged=rows,
                    counterfactual=cf,
                )
            )
        return BatchRanking(
            causes=causes,
            outputs=outputs,
            rows=len(batch),
            anomalous_rows=int(anom_rows.sum()),
            seconds=time.perf_counter() - t0,
            model_sha256=self.sha256,
            variables={n: {"score": round(float(v[1]), 4), "evidence": v[0]} for n, v in best.items()},
        )

    def _path(self, c: str, targets: Sequence[str]) -> list[str] | None:
        """Shortest directed path from ``c`` to the first reachable output of ``targets``."""
        if not targets:
            return None
        prev: dict[str, str | None] = {c: None}
        q = deque([c])
        while q:
            u = q.popleft()
            for v in self.children[u]:
                if v not in prev:
                    prev[v] = u
                    q.append(v)
        for t in targets:
            if t in prev and t != c:
                path = [t]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])  # type: ignore[arg-type]
                return path[::-1]
        return None

    # --- counterfactual ----------------------------------------------------------------------------
    def _normal_window(self, n: str) -> tuple[float, float]:
        """Where an output is normal: inside its 0.1-99.9 % range on normal rows and inside its spec (if any).

        A row out of spec is anomalous, and so is one in spec but beyond anything normal operation produced
        (what the SPC verdict flags): "restored" means back inside both.
        """
        lo, hi = self.windows[n]
        spec = self.specs.get(n)
        if spec is not None:
            lo = lo if spec.lsl is None else max(lo, spec.lsl)
            hi = hi if spec.usl is None else min(hi, spec.usl)
        return lo, hi

    def _anomalous_rows(self, xc: np.ndarray, outputs: Sequence[str] | None = None) -> np.ndarray:
        out = np.zeros(xc.shape[0], dtype=bool)
        for n in self.conts if outputs is None else outputs:
            if self.knowledge.is_symptom(n) and n in self.ci:
                lo, hi = self._normal_window(n)
                x = xc[:, self.ci[n]]
                out |= (x < lo) | (x > hi)
        return out

    def counterfactual(self, batch: pd.DataFrame, variable: str) -> dict[str, Any]:
        """ "Had ``variable`` stayed normal", on every anomalous row of ``batch`` (see module docstring)."""
        if variable not in self.ci and variable not in self.ki:
            raise InvalidInput(f"unknown variable {variable!r}", field=variable)
        ev, e, (xc, xk, _, _) = self.evidence(batch)
        kind, score = max(ev[variable].items(), key=lambda kv: kv[1])
        return self._counterfactual(variable, xc, xk, e, stuck=kind == "stuck" and score >= self.output_z)

    def _counterfactual(
        self, c: str, xc: np.ndarray, xk: np.ndarray, e: np.ndarray, stuck: bool = False
    ) -> dict[str, Any]:
        # only the outputs c reaches can be restored by it: rows anomalous elsewhere are not its to explain
        reached = [d for d in self._descendants(c) if self.knowledge.is_symptom(d) and d in self.ci]
        anom = self._anomalous_rows(xc, reached)
        n_anom = int(anom.sum())
        if c in self.ci:
            m = self.mechs[c]
            window: list[Any] = [round(m.e_lo, 4), round(m.e_hi, 4)]
            how = "noise clipped to its normal spread (standardised quantiles 1-99 %)"
        else:
            window = [self.levels[c][self.modal[c]]]
            how = "set to its most frequent normal level"
        if stuck:
            return {
                "variable": c,
                "setting": "not applicable: a frozen reading is a measurement fault, the process did not change",
                "outputs": reached,
                "anomalous_rows": n_anom,
                "restored_rows": 0,
                "restored_fraction": None,
                "interval": None,
                "confirms": None,
            }
        out: dict[str, Any] = {
            "variable": c,
            "setting": how,
            "window": window,
            "outputs": reached,
            "anomalous_rows": n_anom,
        }
        if n_anom == 0:
            return {**out, "restored_rows": 0, "restored_fraction": None, "interval": None, "confirms": None}
        # abduction keeps every variable's standardised noise e (x = f + s e): where the factual parents lay
        # outside the training range, s includes the extrapolation gap, so a guess of f is not kept as noise
        xa, ka, ea = xc[anom].copy(), xk[anom].copy(), e[anom].copy()
        if c in self.ci:
            i = self.ci[c]
            pred, sdr = self.mechs[c].predict(xa, ka)
            xa[:, i] = pred + np.clip(ea[:, i], self.mechs[c].e_lo, self.mechs[c].e_hi) * sdr
        else:
            col = self.ki[c]
            unseen = ka[:, col] < 0
            ka[:, col] = self.modal[c]
            # a level never seen (a new lot): its effect shows as its children's noise; normal = clipped
            for d in self.children[c]:
                if d in self.ci and unseen.any():
                    j, m = self.ci[d], self.mechs[d]
                    ea[unseen, j] = np.clip(ea[unseen, j], m.e_lo, m.e_hi)
        for d in self._descendants(c):
            if d in self.ci:
                pred, sdr = self.mechs[d].predict(xa, ka)
                xa[:, self.ci[d]] = pred + ea[:, self.ci[d]] * sdr
        restored = ~self._anomalous_rows(xa, reached)
        k = int(restored.sum())
        confirms = None if n_anom < _CF_MIN_ROWS else bool(k / n_anom >= 0.5)
        return {
            **out,
            "restored_rows": k,
            "restored_fraction": k / n_anom,
            "interval": _wilson(k, n_anom),
            "confirms": confirms,
        }

    def _descendants(self, c: str) -> list[str]:
        seen: set[str] = set()
        stack = [c]
        while stack:
            for v in self.children[stack.pop()]:
                if v not in seen:
                    seen.add(v)
                    stack.append(v)
        return [n for n in self.order if n in seen]


def _wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [round(max(mid - half, 0.0), 4), round(min(mid + half, 1.0), 4)]


def _topo(names: list[str], parents: Mapping[str, list[str]]) -> list[str]:
    done: list[str] = []
    seen: set[str] = set()
    todo = list(names)
    while todo:
        progressed = False
        for n in list(todo):
            if all(p in seen for p in parents[n]):
                done.append(n)
                seen.add(n)
                todo.remove(n)
                progressed = True
        if not progressed:
            raise InvalidInput("graph has a cycle", field="graph")
    return done
