"""Structure learning for process data: a greedy additive-model search under the tier partial order,
scored by BIC with AR(1) errors, with edge reversals.

PC with a partial-correlation test (:mod:`models.causal.structure`, pgmpy) assumes linear-Gaussian
dependence; process mechanisms saturate, switch at thresholds, multiply, depend on discrete machines and
lots, their noise changes with the operating point and the rows come in time order. This learner follows
the causal additive model search (CAM: Buehlmann, Peters & Ernest, Ann. Statist. 42 (2014) 2526-2556):

- each variable is regressed on the variables the tiers allow on a non-parametric basis: continuous
  parent ``u`` (standardised to ``z``): a piecewise-linear spline ``z, max(0, z - k)`` for knots ``k`` in
  ``(-1, 0, 1)`` (monotone or not, saturating or thresholded mechanisms; linear extrapolation); it may enter
  by its linear term ``z`` alone (1 dof instead of 4) and grow into its spline later. Discrete parent: one
  indicator per level (the first level is the reference);
- **time order**: errors are AR(1). Each regression is whitened with its residual's lag-1 autocorrelation
  ``rho`` (Cochrane-Orcutt: ``x_t - rho x_{t-1}`` for target and design; ``rho`` re-estimated whenever the
  parent set changes) and scored ``m log(RSS / m) + c * dof * log(m)`` on the ``m = n - 1`` whitened rows
  (``c = penalty``, default 1). Two independent slowly wandering series (room temperature, a tool-age
  ramp) look correlated in levels and do not after whitening; a mechanism ``y = f(x) + e`` holds row by row;
- **multiplicative mechanisms** (power = force x speed, solvent ~ exp(-T/T0) w^2 v, noise proportional to
  the level): a positive variable is modelled as ``log y`` when that fits better, compared on the scale of
  ``y`` (the log model pays its Jacobian ``2 sum log y``): on the log scale such mechanisms are additive;
- **search**: starting from the required edges, the edge (or linear-to-spline growth) that lowers the total
  BIC most is added, over all variables at once, as long as it keeps the graph acyclic; then each variable
  drops parents whose removal lowers its score. Within a rank the tiers leave the direction open, and the
  first-added direction of a near-linear mechanism is arbitrary, so every edge whose reverse the tiers
  allow is tried reversed, both ends re-selecting their parents, and kept reversed when the total BIC drops.

Tiers are a partial order (``rank(u) <= rank(v)``); required edges are always kept, forbidden ones never
considered, discrete variables are never children (they are exogenous labels: machine, lot, cavity,
operator).
"""

from __future__ import annotations

import copy
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
        f1, f0 = self.f[1:], self.f[:-1]  # lagged products: any AR(1) whitening in O(p^2)
        self.g11, self.g10, self.g00 = f1.T @ f1, f1.T @ f0, f0.T @ f0
        self.s1, self.s0 = f1.sum(axis=0), f0.sum(axis=0)

    def whitened(self, yc: np.ndarray, rho: float) -> tuple[_Gram, np.ndarray, float]:
        """Gram matrix, cross products and sum of squares of the (centered) rows 2..n after the AR(1)
        (Cochrane-Orcutt) transform ``x_t - rho x_{t-1}`` of design and target."""
        m = len(yc) - 1
        y1, y0 = yc[1:], yc[:-1]
        f1, f0 = self.f[1:], self.f[:-1]
        s = self.s1 - rho * self.s0
        out = _Gram.__new__(_Gram)
        out.cols = self.cols
        out.g = self.g11 - rho * (self.g10 + self.g10.T) + rho * rho * self.g00 - np.outer(s, s) / m
        yw = y1 - rho * y0
        h = f1.T @ yw - rho * (f0.T @ yw) - s * (float(yw.sum()) / m)
        yy = float(yw @ yw) - float(yw.sum()) ** 2 / m
        return out, h, yy

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


def _rho(r: np.ndarray) -> float:
    """Lag-1 autocorrelation of a residual series, clipped to ``[0, 0.98]``."""
    rc = r - r.mean()
    den = float(rc @ rc) or 1.0
    return min(max(float(rc[1:] @ rc[:-1]) / den, 0.0), 0.98)


class _Target:
    """One variable's regression state during the greedy search: its parents, AR(1) whitening and BIC."""

    def __init__(self, y: np.ndarray, gram: _Gram, sel: list[str], penalty: float, linear: set[str], log: bool) -> None:
        self.log = log
        yt = np.log(y) if log else y
        self.yc = yt - yt.mean()
        self.jacobian = 2 * float(np.log(y[1:]).sum()) if log else 0.0
        self.gram, self.penalty, self.linear = gram, penalty, linear
        self.sel = list(sel)
        self.refit()

    def refit(self) -> None:
        self.g, self.h, self.yy = self.gram.whitened(self.yc, _rho(self.gram.resid(self.yc, self.sel)))
        self.score = self.bic(self.sel)

    def bic(self, sel: list[str]) -> float:
        n = len(self.yc) - 1
        rss, dof = self.g.rss(self.h, self.yy, sel)
        return n * math.log(rss / n) + self.penalty * dof * math.log(n) + self.jacobian

    def best_move(self, cands: list[str], banned: set[str]) -> tuple[float, list[str], str] | None:
        """The addition (``u``, or its linear term ``u~``) or growth ``u~ -> u`` that lowers the BIC most."""
        have = {_base(x) for x in self.sel}
        moves: list[tuple[float, list[str], str]] = []
        for c in cands:
            if c in banned:
                continue
            if c not in have:
                moves.append((self.bic([*self.sel, c]), [*self.sel, c], c))
                if c in self.linear:
                    moves.append((self.bic([*self.sel, c + "~"]), [*self.sel, c + "~"], c))
            elif c + "~" in self.sel:
                grown = [c if x == c + "~" else x for x in self.sel]
                moves.append((self.bic(grown), grown, c))
        if not moves:
            return None
        score, sel, c = min(moves, key=lambda m: (m[0], m[2]))
        return (score - self.score, sel, c) if score < self.score else None

    def prune(self, required: set[str]) -> None:
        """Drop parents whose removal lowers the BIC (one at a time, re-whitening after each)."""
        while True:
            drops = [(self.bic([x for x in self.sel if x != d]), d) for d in self.sel if _base(d) not in required]
            if not drops:
                return
            ds, d = min(drops)
            if ds >= self.score:
                return
            self.sel.remove(d)
            self.refit()

    @property
    def parents(self) -> list[str]:
        return sorted({_base(x) for x in self.sel})


def _base(s: str) -> str:
    return s[:-1] if s.endswith("~") else s


def _reaches(kids: dict[str, set[str]], a: str, b: str) -> bool:
    stack, seen = [a], {a}
    while stack:
        x = stack.pop()
        if x == b:
            return True
        for c in kids.get(x, ()):
            if c not in seen:
                seen.add(c)
                stack.append(c)
    return False


def _grow(t: _Target, cands: list[str], banned: set[str], required: set[str]) -> _Target:
    """Greedy additions to one target until none lowers its BIC, then pruning."""
    while True:
        m = t.best_move(cands, banned)
        if m is None:
            break
        t.sel = m[1]
        t.refit()
    t.prune(required)
    return t


def _reverse(
    targets: dict[str, _Target],
    cands: dict[str, list[str]],
    kids: dict[str, set[str]],
    required: dict[str, set[str]],
    passes: int = 3,
) -> None:
    """Edge reversals that lower the total BIC (the greedy additions orient an edge by the larger single
    gain, which is arbitrary where a mechanism is close to linear); both ends re-select their parents."""
    for _ in range(passes):
        changed = False
        for u, v in sorted((u, v) for v, t in targets.items() for u in t.parents):
            if u not in targets or v not in cands.get(u, ()) or u in required.get(v, set()):
                continue
            if u not in targets[v].parents:  # an earlier reversal of this pass removed it
                continue
            kids[u].discard(v)
            if _reaches(kids, u, v):  # another path u -> ... -> v: v -> u would close a cycle
                kids[u].add(v)
                continue
            old = targets[v].score + targets[u].score
            tv = copy.copy(targets[v])
            tv.sel = [x for x in tv.sel if _base(x) != u]
            tv.refit()
            kids[v].add(u)  # v -> u: nothing below u may become a parent of u, nothing below v of v
            tu = copy.copy(targets[u])
            tu.sel = [*tu.sel, v]
            tu.refit()
            ban_u = {c for c in cands[u] if c != v and _reaches(kids, u, c)}
            _grow(tu, cands[u], ban_u, required.get(u, set()) | {v})
            for c in targets[u].parents:
                if c not in tu.parents:
                    kids[c].discard(u)
            for c in tu.parents:
                kids[c].add(u)
            ban_v = {c for c in cands[v] if _reaches(kids, v, c)} | {u}
            _grow(tv, cands[v], ban_v, required.get(v, set()))
            if tv.score + tu.score < old - 1e-6:
                for c in targets[v].parents:
                    kids[c].discard(v)
                for c in tv.parents:
                    kids[c].add(v)
                targets[u], targets[v] = tu, tv
                changed = True
            else:  # restore the graph of the kept state
                for c in tu.parents:
                    kids[c].discard(u)
                for c in targets[u].parents:
                    kids[c].add(u)
                kids[v].discard(u)
                kids[u].add(v)
        if not changed:
            return


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
    required: dict[str, set[str]] = {}
    for u, v in knowledge.required:
        required.setdefault(v, set()).add(u)
    cands = {v: [u for u in names if u in blocks and knowledge.allows(u, v)] for v in names if v not in cats}
    targets: dict[str, _Target] = {}
    for v, cs in cands.items():
        y = data[v].to_numpy(dtype=float)
        req = sorted(required.get(v, set()) & set(cs))
        pick = _Target(y, gram, req, penalty, linear, log=False)
        if float(np.min(y)) > 0 and float(np.max(y)) > float(np.min(y)):
            # the scale is chosen on the best model over every admissible parent (no acyclicity yet)
            raw = _grow(copy.copy(pick), cs, set(), set(req))
            log = _grow(_Target(y, gram, req, penalty, linear, log=True), cs, set(), set(req))
            if log.score < raw.score:
                pick = _Target(y, gram, req, penalty, linear, log=True)
        targets[v] = pick
    kids: dict[str, set[str]] = {n: set() for n in names}
    for v, t in targets.items():
        for u in t.parents:
            kids[u].add(v)
    banned: dict[str, set[str]] = {v: set() for v in targets}
    best: dict[str, tuple[float, list[str], str] | None] = {
        v: t.best_move(cands[v], banned[v]) for v, t in targets.items()
    }
    while True:
        live = [(m[0], v) for v, m in best.items() if m is not None]
        if not live:
            break
        _, v = min(live)
        _, sel, u = best[v]  # type: ignore[misc]
        if u not in targets[v].parents and _reaches(kids, v, u):  # would close a cycle
            banned[v].add(u)
        else:
            targets[v].sel = sel
            targets[v].refit()
            kids[u].add(v)
        best[v] = targets[v].best_move(cands[v], banned[v])
    for v, t in targets.items():
        t.prune(required.get(v, set()))
    _reverse(targets, cands, kids, required)
    parents = {v: t.parents for v, t in targets.items()}
    edges = frozenset((u, v) for v, ps in parents.items() for u in ps)
    return KnownGraph(tuple(names), edges, frozenset(), dict(knowledge.tiers), frozenset(cats))
