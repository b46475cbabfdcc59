"""Structure learning for process data: tier-ordered sparse non-linear regression scored by BIC.

PC with a partial-correlation test (:mod:`models.causal.structure`, pgmpy) assumes linear-Gaussian
dependence; process mechanisms saturate, switch at thresholds, depend on discrete machines and lots, and
their noise changes with the operating point. This learner uses the tier order as a partial order
of the variables and, for every variable, selects its parents among the variables the order allows by
forward-backward stepwise regression on a non-parametric basis, scored by BIC:

- continuous parent ``u`` (standardised to ``z``): a piecewise-linear spline ``z, max(0, z - k)`` for knots
  ``k`` in ``(-1, 0, 1)`` — monotone or not, saturating or thresholded mechanisms are all captured, and it
  extrapolates linearly. A parent may also enter by its linear term ``z`` alone (1 dof instead of 4) and grow
  into its spline later: a weak, locally linear effect is not priced as a four-column one;
- discrete parent: one indicator per level (the first level is the reference);
- score: ``n_eff log(RSS / n) + c * dof * log(n_eff)`` with ``c = penalty`` (default 1) and ``n_eff`` the
  effective sample size of the current residual (``n (1 - rho) / (1 + rho)``, ``rho`` its lag-1
  autocorrelation): process data are autocorrelated, and with the plain BIC a slowly wandering variable
  picks up every slowly changing label (lot, machine) as a spurious parent; a parent enters when it
  lowers the score most and leaves when removing it lowers the score.

Order inside a rank (tiers sharing a rank, or one tier holding a chain such as setpoint -> actual
temperature, or hardness -> tensile strength): variables are placed one at a time. Exogenous ones first
(R^2 < 0.1 from the variables already placed: setpoints, raw materials), then the others by decreasing
R^2: noise accumulates along a chain, so its upstream member is the one upstream variables explain best.
Required edges are always kept, forbidden ones never considered,
discrete variables are never children (they are exogenous labels: machine, lot, cavity, operator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from models.causal.knowledge import KnownGraph, ProcessKnowledge
from models.errors import InsufficientData

__all__ = ["learn_graph", "spline_basis"]

_KNOTS = (-1.0, 0.0, 1.0)
_MIN_ROWS = 50
_EXOGENOUS_R2 = 0.1


def spline_basis(z: np.ndarray) -> np.ndarray:
    """Piecewise-linear spline of one standardised column (n,) -> (n, 4)."""
    return np.column_stack([z] + [np.maximum(z - k, 0.0) for k in _KNOTS])


def _blocks(data: pd.DataFrame, names: Sequence[str], categorical: set[str]) -> dict[str, np.ndarray]:
    out = {}
    for n in names:
        col = data[n]
        if n in categorical:
            levels = sorted(map(str, col.unique()))
            codes = col.astype(str).to_numpy()
            out[n] = np.column_stack([(codes == lv).astype(float) for lv in levels[1:]]) if len(levels) > 1 else None
        else:
            x = col.to_numpy(dtype=float)
            sd = float(x.std()) or 1.0
            out[n] = spline_basis((x - x.mean()) / sd)
    return {k: v for k, v in out.items() if v is not None}


class _Gram:
    """Centered design of every candidate block, its Gram matrix, and fast RSS of a subset regression."""

    def __init__(self, blocks: dict[str, np.ndarray]) -> None:
        self.cols: dict[str, np.ndarray] = {}
        mats, at = [], 0
        for name, b in blocks.items():
            mats.append(b - b.mean(axis=0))
            self.cols[name] = np.arange(at, at + b.shape[1])
            at += b.shape[1]
        self.f = np.concatenate(mats, axis=1) if mats else np.empty((0, 0))
        self.g = self.f.T @ self.f

    def target(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        yc = y - y.mean()
        return yc, self.f.T @ yc, float(yc @ yc)

    def idx(self, sel: Sequence[str]) -> np.ndarray:
        """Columns of a selection; ``name~`` is the linear term of a continuous block only (1 dof)."""
        return np.concatenate([self.cols[s[:-1]][:1] if s.endswith("~") else self.cols[s] for s in sel])

    def rss(self, h: np.ndarray, yy: float, sel: Sequence[str]) -> tuple[float, int]:
        if not sel:
            return yy, 0
        idx = self.idx(sel)
        gs = self.g[np.ix_(idx, idx)]
        coef = np.linalg.solve(gs + 1e-9 * np.trace(gs) / len(idx) * np.eye(len(idx)), h[idx])
        return max(yy - float(h[idx] @ coef), 1e-300), len(idx)

    def resid(self, yc: np.ndarray, sel: Sequence[str]) -> np.ndarray:
        if not sel:
            return yc
        f = self.f[:, self.idx(sel)]
        coef, *_ = np.linalg.lstsq(f, yc, rcond=None)
        return yc - f @ coef


def _n_eff(r: np.ndarray) -> float:
    """Effective sample size of an AR(1)-like residual series: ``n (1 - rho) / (1 + rho)``."""
    rc = r - r.mean()
    den = float(rc @ rc) or 1.0
    rho = min(max(float(rc[1:] @ rc[:-1]) / den, 0.0), 0.98)
    return max(len(r) * (1 - rho) / (1 + rho), 20.0)


def _select(
    y: np.ndarray, cands: list[str], gram: _Gram, required: set[str], penalty: float, linear: set[str]
) -> list[str]:
    """Stepwise parents of ``y``; a continuous parent enters as a linear term (``name~``, 1 dof) or with
    its full spline (4 dof), whichever the score prefers, and a linear term may grow into its spline."""
    n = len(y)
    yc, h, yy = gram.target(y)
    sel = [c for c in cands if c in required]
    # the effective sample size follows the residual of the current model: a slowly wandering
    # variable's autocorrelation is not evidence for a parent, a parent that explains it is
    n_eff = _n_eff(gram.resid(yc, sel))

    def bic(sel: list[str]) -> float:
        rss, dof = gram.rss(h, yy, sel)
        return n_eff * math.log(rss / n) + penalty * dof * math.log(n_eff)

    def base(s: str) -> str:
        return s[:-1] if s.endswith("~") else s

    best = bic(sel)
    while True:
        have = {base(s) for s in sel}
        moves: list[tuple[float, list[str], str]] = []
        for c in cands:
            if c not in have:
                moves.append((bic([*sel, c]), [*sel, c], c))
                if c in linear:
                    moves.append((bic([*sel, c + "~"]), [*sel, c + "~"], c + "~"))
            elif c + "~" in sel:
                grown = [c if s == c + "~" else s for s in sel]
                moves.append((bic(grown), grown, c))
        if not moves:
            break
        score, new, c = min(moves, key=lambda m: (m[0], m[2]))
        if score >= best:
            break
        sel = new
        n_eff = _n_eff(gram.resid(yc, sel))
        best = bic(sel)
        while True:  # backward: drop a parent whose removal lowers the score
            keep = {*required, base(c)}
            drops = [(bic([s for s in sel if s != d]), d) for d in sel if base(d) not in keep]
            if not drops:
                break
            ds, d = min(drops)
            if ds >= best:
                break
            sel.remove(d)
            best = ds
    return sorted({base(s) for s in sel})


def learn_graph(
    data: pd.DataFrame, knowledge: ProcessKnowledge, *, penalty: float = 1.0, max_rows: int = 4000
) -> KnownGraph:
    """Learn a DAG over ``data``'s columns under ``knowledge`` (see the module docstring)."""
    if len(data) < _MIN_ROWS:
        raise InsufficientData(_MIN_ROWS, len(data), "rows to learn a causal graph")
    names = [str(c) for c in data.columns]
    cats = {n for n in names if n in knowledge.categorical or not pd.api.types.is_numeric_dtype(data[n])}
    if len(data) > max_rows:  # evenly spaced rows keep the time spread
        data = data.iloc[np.linspace(0, len(data) - 1, max_rows).astype(int)]
    blocks = _blocks(data, names, cats)
    gram = _Gram(blocks)
    linear = {n for n in blocks if n not in cats}
    ys = {n: data[n].to_numpy(dtype=float) for n in names if n not in cats}
    required: dict[str, set[str]] = {}
    for u, v in knowledge.required:
        required.setdefault(v, set()).add(u)
    ranks = sorted({knowledge.rank(n) for n in names})
    placed: list[str] = []
    parents: dict[str, list[str]] = {}
    for r in ranks:
        group = [n for n in names if knowledge.rank(n) == r]
        group_cats = [n for n in group if n in cats]
        placed += sorted(group_cats)
        todo = sorted(n for n in group if n not in cats)
        while todo:

            def r2(v: str, placed: list[str] = placed) -> float:
                _, h, yy = gram.target(ys[v])
                rss, _ = gram.rss(h, yy, [u for u in placed if knowledge.allows(u, v) and u in blocks])
                return 1.0 - rss / (yy or 1.0)

            fit = {v: r2(v) for v in todo}
            nxt = min(
                todo,
                key=lambda v: (
                    not required.get(v, set()) <= set(placed),
                    fit[v] >= _EXOGENOUS_R2,
                    -fit[v] if fit[v] >= _EXOGENOUS_R2 else fit[v],
                    v,
                ),
            )
            todo.remove(nxt)
            cands = [u for u in placed if knowledge.allows(u, nxt) and u in blocks]
            parents[nxt] = _select(ys[nxt], cands, gram, required.get(nxt, set()) & set(cands), penalty, linear)
            placed.append(nxt)
    edges = frozenset((u, v) for v, ps in parents.items() for u in ps)
    return KnownGraph(tuple(names), edges, frozenset(), dict(knowledge.tiers), frozenset(cats))
