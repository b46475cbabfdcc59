"""Structure learning for process data: tier-ordered sparse non-linear regression scored by BIC.

PC with a partial-correlation test (:mod:`models.causal.structure`, pgmpy) assumes linear-Gaussian
dependence; process mechanisms saturate, switch at thresholds, depend on discrete machines and lots, and
their noise changes with the operating point. This learner uses the tier order as a partial order
of the variables and, for every variable, selects its parents among the variables the order allows by
forward-backward stepwise regression on a non-parametric basis, scored by BIC:

- continuous parent ``u`` (standardised to ``z``): a piecewise-linear spline ``z, max(0, z - k)`` for knots
  ``k`` in ``(-1, 0, 1)`` — monotone or not, saturating or thresholded mechanisms are all captured, and it
  extrapolates linearly;
- discrete parent: one indicator per level (the first level is the reference);
- score: ``n_eff log(RSS / n) + c * dof * log(n_eff)`` with ``c = penalty`` (default 2) and ``n_eff`` the
  effective sample size of the current residual (``n (1 - rho) / (1 + rho)``, ``rho`` its lag-1
  autocorrelation): process data are autocorrelated, and with the plain BIC a slowly wandering variable
  picks up every slowly changing label (lot, machine) as a spurious parent; a parent enters when it lowers the score most and leaves when removing it lowers the score.

Order inside a rank (variables whose tiers share a rank, or one tier holding a chain such as setpoint ->
actual temperature): variables are placed one at a time, the one explained least (lowest R^2) by the
variables already placed going first — exogenous variables (setpoints, raw materials) are the least
predictable from what precedes them. Required edges are always kept, forbidden ones never considered,
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


def _fit(y: np.ndarray, blocks: list[np.ndarray]) -> tuple[float, int, np.ndarray]:
    if not blocks:
        r = y - y.mean()
        return float(r @ r), 0, r
    f = np.column_stack(blocks)
    f = f - f.mean(axis=0)
    coef, *_ = np.linalg.lstsq(f, y - y.mean(), rcond=None)
    r = y - y.mean() - f @ coef
    return float(r @ r), f.shape[1], r


def _rss(y: np.ndarray, blocks: list[np.ndarray]) -> tuple[float, int]:
    rss, dof, _ = _fit(y, blocks)
    return rss, dof


def _n_eff(r: np.ndarray) -> float:
    """Effective sample size of an AR(1)-like residual series: ``n (1 - rho) / (1 + rho)``."""
    rc = r - r.mean()
    den = float(rc @ rc) or 1.0
    rho = min(max(float(rc[1:] @ rc[:-1]) / den, 0.0), 0.98)
    return max(len(r) * (1 - rho) / (1 + rho), 20.0)


def _select(
    y: np.ndarray, cands: list[str], blocks: dict[str, np.ndarray], required: set[str], penalty: float
) -> list[str]:
    n = len(y)
    sel = [c for c in cands if c in required]
    # the effective sample size follows the residual of the current model: a slowly wandering
    # variable's autocorrelation is not evidence for a parent, a parent that explains it is
    n_eff = _n_eff(_fit(y, [blocks[s] for s in sel])[2])

    def bic(sel: list[str]) -> float:
        rss, dof = _rss(y, [blocks[s] for s in sel])
        return n_eff * math.log(max(rss, 1e-300) / n) + penalty * dof * math.log(n_eff)

    best = bic(sel)
    while True:
        trial = [(bic([*sel, c]), c) for c in cands if c not in sel]
        if not trial:
            break
        score, c = min(trial)
        if score >= best:
            break
        sel.append(c)
        n_eff = _n_eff(_fit(y, [blocks[s] for s in sel])[2])
        best = bic(sel)
        while True:  # backward: drop a parent whose removal lowers the score
            drops = [(bic([s for s in sel if s != d]), d) for d in sel if d not in required and d != c]
            if not drops:
                break
            ds, d = min(drops)
            if ds >= best:
                break
            sel.remove(d)
            best = ds
    return sorted(sel)


def learn_graph(
    data: pd.DataFrame, knowledge: ProcessKnowledge, *, penalty: float = 2.0, max_rows: int = 4000
) -> KnownGraph:
    """Learn a DAG over ``data``'s columns under ``knowledge`` (see the module docstring)."""
    if len(data) < _MIN_ROWS:
        raise InsufficientData(_MIN_ROWS, len(data), "rows to learn a causal graph")
    names = [str(c) for c in data.columns]
    cats = {n for n in names if n in knowledge.categorical or not pd.api.types.is_numeric_dtype(data[n])}
    if len(data) > max_rows:  # evenly spaced rows keep the time spread
        data = data.iloc[np.linspace(0, len(data) - 1, max_rows).astype(int)]
    blocks = _blocks(data, names, cats)
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

            def r2(v: str) -> float:
                y = ys[v]
                allowed = [u for u in placed if knowledge.allows(u, v) and u in blocks]
                rss, _ = _rss(y, [blocks[u] for u in allowed])
                tss = float(((y - y.mean()) ** 2).sum()) or 1.0
                return 1.0 - rss / tss

            nxt = min(todo, key=lambda v: (not required.get(v, set()) <= set(placed), r2(v), v))
            todo.remove(nxt)
            cands = [u for u in placed if knowledge.allows(u, nxt) and u in blocks]
            parents[nxt] = _select(ys[nxt], cands, blocks, required.get(nxt, set()) & set(cands), penalty)
            placed.append(nxt)
    edges = frozenset((u, v) for v, ps in parents.items() for u in ps)
    return KnownGraph(tuple(names), edges, frozenset(), dict(knowledge.tiers), frozenset(cats))
