"""Interventional and counterfactual queries on a fitted additive-noise model, and the safe domain.

- :func:`do_effect`: ``do(X = x)`` -> distribution of a characteristic, sampling every other node's
  noise from its training residuals (independent bootstrap) and propagating through the mechanisms.
- :func:`counterfactual`: abduction-action-prediction for one observed unit: recover its noises, set
  the intervened variables, propagate. A range intervention ``(lo, hi)`` is integrated uniformly over
  a midpoint grid: ``probability`` is the fraction of the range for which the characteristic is in
  spec; ``value`` is the counterfactual at the observed value clipped into the range.
- :func:`safe_domain`: for 2-3 process variables, with the unit's other noises held, whether the
  current combination keeps the characteristic in spec and the signed distance (in training-sd units,
  positive inside) to the spec boundary. Method: grid scan over the box, bisection along the ray to
  every grid point of opposite status, then 5 closest-point (Hasofer-Lind) iterations on the margin
  function from the best crossing; the smallest verified distance wins. Exact for linear boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.causal.anm import AdditiveNoiseModel
from models.causal.constraints import Spec
from models.errors import InvalidInput

__all__ = [
    "CounterfactualResult",
    "InterventionResult",
    "SafeDomainResult",
    "counterfactual",
    "do_effect",
    "safe_domain",
]


@dataclass(frozen=True)
class InterventionResult:
    """Distribution of ``characteristic`` under ``do(interventions)``."""

    characteristic: str
    interventions: dict[str, float]
    mean: float
    std: float
    quantiles: dict[str, float]
    p_in_spec: float | None
    n_samples: int


@dataclass(frozen=True)
class CounterfactualResult:
    """Answer to "had X been x (or within [lo, hi]) for this unit, would T have been in spec?"."""

    characteristic: str
    factual: float
    value: float
    in_spec: bool | None
    probability: float | None
    value_min: float
    value_max: float
    interventions: dict[str, float | tuple[float, float]]


@dataclass(frozen=True)
class SafeDomainResult:
    """Whether the current process point is safe and how far (sd units) it is from the boundary."""

    characteristic: str
    variables: tuple[str, ...]
    current: dict[str, float]
    inside: bool
    distance: float
    boundary_point: dict[str, float] | None
    method: str


def _require_spec(anm: AdditiveNoiseModel, name: str, spec: Spec | None) -> Spec:
    s = anm.spec_for(name, spec)
    if s is None or (s.lsl is None and s.usl is None):
        raise InvalidInput(f"no spec limits for {name!r}: pass spec=Spec(lsl, usl)", field="spec")
    return s


def do_effect(
    anm: AdditiveNoiseModel,
    interventions: Mapping[str, float],
    characteristic: str,
    *,
    n: int = 2000,
    seed: int = 0,
    spec: Spec | None = None,
) -> InterventionResult:
    """Monte-Carlo ``do(interventions)`` effect on ``characteristic`` (deterministic by ``seed``)."""
    anm._check_fitted()
    t = anm.idx(characteristic)
    fixed = {anm.idx(k): float(v) for k, v in interventions.items()}
    if n < 10:
        raise InvalidInput(f"n must be >= 10, got {n}", field="n")
    noise = anm.sample_noise(n, np.random.default_rng(seed))
    y = anm.propagate(noise, fixed)[:, t]
    s = anm.spec_for(characteristic, spec)
    p_in = None if s is None else float(np.mean([s.contains(v) for v in y]))
    qs = np.quantile(y, [0.05, 0.5, 0.95])
    return InterventionResult(
        characteristic,
        {k: float(v) for k, v in interventions.items()},
        float(y.mean()),
        float(y.std()),
        {"q05": float(qs[0]), "q50": float(qs[1]), "q95": float(qs[2])},
        p_in,
        n,
    )


def counterfactual(
    anm: AdditiveNoiseModel,
    observation: Mapping[str, float] | pd.Series,
    interventions: Mapping[str, float | tuple[float, float]],
    characteristic: str,
    *,
    spec: Spec | None = None,
    grid: int = 101,
) -> CounterfactualResult:
    """Abduction-action-prediction for one unit; ranges are integrated uniformly (midpoint grid)."""
    anm._check_fitted()
    t = anm.idx(characteristic)
    if not interventions:
        raise InvalidInput("at least one intervention is needed", field="interventions")
    x = anm.to_vector(observation)[None, :]
    noise = anm.noise_of(x)
    axes: list[np.ndarray] = []
    point: dict[int, float] = {}
    keys = []
    for name, val in interventions.items():
        j = anm.idx(name)
        keys.append(j)
        if isinstance(val, tuple | list):
            lo, hi = float(val[0]), float(val[1])
            if not lo <= hi:
                raise InvalidInput(f"range for {name!r} must have lo <= hi, got {val!r}", field=name)
            axes.append(lo + (np.arange(grid) + 0.5) * (hi - lo) / grid)
            point[j] = min(max(float(x[0, j]), lo), hi)
        else:
            axes.append(np.array([float(val)]))
            point[j] = float(val)
    mesh = np.meshgrid(*axes, indexing="ij")
    combos = np.column_stack([m.ravel() for m in mesh])
    rows = len(combos) + 1
    fixed = {j: np.append(combos[:, i], point[j]) for i, j in enumerate(keys)}
    y = anm.propagate(np.repeat(noise, rows, axis=0), fixed)[:, t]
    s = anm.spec_for(characteristic, spec)
    value = float(y[-1])
    return CounterfactualResult(
        characteristic,
        float(x[0, t]),
        value,
        None if s is None else s.contains(value),
        None if s is None else float(np.mean([s.contains(v) for v in y[:-1]])),
        float(y[:-1].min()),
        float(y[:-1].max()),
        dict(interventions),
    )


def safe_domain(
    anm: AdditiveNoiseModel,
    observation: Mapping[str, float] | pd.Series,
    variables: Sequence[str],
    characteristic: str,
    *,
    spec: Spec | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    grid: int = 41,
) -> SafeDomainResult:
    """Is the unit's current combination of ``variables`` (2-3) inside the in-spec region, and how far
    from its boundary? Distance in training-sd units of the variables, positive inside."""
    anm._check_fitted()
    if not 1 <= len(variables) <= 3:
        raise InvalidInput(f"safe domain needs 1-3 variables, got {len(variables)}", field="variables")
    t = anm.idx(characteristic)
    s = _require_spec(anm, characteristic, spec)
    idx = [anm.idx(v) for v in variables]
    x = anm.to_vector(observation)[None, :]
    noise = anm.noise_of(x)
    sd = anm.std[idx]
    x0 = x[0, idx]
    lohi = []
    for v, j in zip(variables, idx, strict=True):
        if ranges and v in ranges:
            lohi.append((float(ranges[v][0]), float(ranges[v][1])))
        else:
            lohi.append((min(anm.mean[j] - 4 * anm.std[j], x[0, j]), max(anm.mean[j] + 4 * anm.std[j], x[0, j])))

    def margin(points: np.ndarray) -> np.ndarray:
        fixed = {j: points[:, i] for i, j in enumerate(idx)}
        y = anm.propagate(np.repeat(noise, len(points), axis=0), fixed)[:, t]
        return np.array([s.margin(v) for v in y])

    m0 = float(margin(x0[None, :])[0])
    inside = m0 >= 0
    axes = [np.linspace(lo, hi, grid) for lo, hi in lohi]
    pts = np.column_stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])
    mg = margin(pts)
    opposite = pts[(mg >= 0) != inside]
    if len(opposite) == 0:
        return SafeDomainResult(
            characteristic,
            tuple(variables),
            dict(zip(variables, map(float, x0), strict=True)),
            inside,
            math.inf if inside else -math.inf,
            None,
            "grid: no boundary in box",
        )
    # bisection along rays to every opposite grid point (vectorised)
    lo_t, hi_t = np.zeros(len(opposite)), np.ones(len(opposite))
    d = opposite - x0
    for _ in range(30):
        mid = (lo_t + hi_t) / 2
        same = (margin(x0 + mid[:, None] * d) >= 0) == inside
        lo_t = np.where(same, mid, lo_t)
        hi_t = np.where(same, hi_t, mid)
    cross = x0 + hi_t[:, None] * d
    dist = np.linalg.norm((cross - x0) / sd, axis=1)
    best = cross[int(np.argmin(dist))]
    best_d = float(dist.min())
    # closest-point refinement on u = (p - x0)/sd (Hasofer-Lind iteration)
    u = (best - x0) / sd
    h = 1e-4
    for _ in range(5):
        p = x0 + u * sd
        g0 = float(margin(p[None, :])[0])
        steps = p[None, :] + np.diag(h * sd)
        grad = (margin(steps) - g0) / h
        gn = float(grad @ grad)
        if gn == 0:
            break
        u = ((grad @ u - g0) / gn) * grad
        cand = x0 + u * sd
        if abs(float(margin(cand[None, :])[0])) <= 1e-6 * max(1.0, abs(m0)) and np.linalg.norm(u) < best_d:
            best, best_d = cand, float(np.linalg.norm(u))
    return SafeDomainResult(
        characteristic,
        tuple(variables),
        dict(zip(variables, map(float, x0), strict=True)),
        inside,
        best_d if inside else -best_d,
        dict(zip(variables, map(float, best), strict=True)),
        f"grid {grid}^{len(idx)} + ray bisection + Hasofer-Lind refinement",
    )
