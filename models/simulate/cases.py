"""Labelled root-cause cases: an in-control training set plus anomalous rows with a known cause.

For each case a fault of one kind is injected on one ancestor of a quality characteristic, a faulty
run is simulated, and the faulty row where the characteristic deviates most is kept, provided it is
clearly anomalous (``|z| >= min_z`` against the in-control mean/sd). The fault magnitude starts at a
moderate value and grows (x1.5, bounded) until the fault is visible in the characteristic, so every
case is a real out-of-control event whose true root cause is the faulted variable.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from models.causal.constraints import Tier
from models.errors import InvalidInput
from models.simulate.scm import FAULT_KINDS, SCM, Fault

__all__ = [
    "FaultCase",
    "make_cases",
    "training_data",
]

_ELIGIBLE = {
    "mean_shift": (Tier.MATERIAL, Tier.ENVIRONMENT, Tier.EQUIPMENT, Tier.PROCESS),
    "drift": (Tier.ENVIRONMENT, Tier.EQUIPMENT, Tier.PROCESS),
    "variance": (Tier.MATERIAL, Tier.EQUIPMENT, Tier.PROCESS),
    "stuck_sensor": (Tier.EQUIPMENT,),
    "material_lot": (Tier.MATERIAL,),
}


@dataclass(frozen=True)
class FaultCase:
    """One labelled anomaly: the observed row, the affected characteristic and the true root cause."""

    model: str
    kind: str
    root_cause: str
    characteristic: str
    magnitude: float
    row: dict[str, float]
    z_characteristic: float


def make_cases(scm: SCM, n_cases: int, seed: int, *, min_z: float = 3.5, run_length: int = 240) -> list[FaultCase]:
    """Generate ``n_cases`` labelled cases cycling over the fault kinds (deterministic by ``seed``)."""
    if n_cases < 1:
        raise InvalidInput(f"n_cases must be >= 1, got {n_cases}", field="n_cases")
    rng = np.random.default_rng(seed)
    ref = scm.sample(4000, seed=seed + 7919)
    mean, sd = ref.mean(), ref.std()
    cases: list[FaultCase] = []
    attempts = 0
    kinds = list(FAULT_KINDS)
    while len(cases) < n_cases:
        attempts += 1
        if attempts > 50 * n_cases:
            raise InvalidInput(f"could not build {n_cases} visible fault cases for {scm.name}", field="scm")
        kind = kinds[len(cases) % len(kinds)]
        target = str(rng.choice(scm.characteristics))
        anc = [a for a in nx.ancestors(scm.graph, target) if scm.by_name[a].tier in _ELIGIBLE[kind]]
        if not anc:
            continue
        var = str(rng.choice(sorted(anc)))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        mag = (3.0 if kind == "variance" else 4.0) * (1.0 if kind == "variance" else sign)
        run_seed = int(rng.integers(0, 2**31 - 1))
        onset = run_length // 2
        for _ in range(6):
            df = scm.sample(run_length, seed=run_seed, fault=Fault(kind, var, mag, onset))
            z = ((df[target] - mean[target]) / sd[target]).to_numpy()
            zf = np.abs(z[onset:])
            i = int(np.argmax(zf))
            if zf[i] >= min_z:
                row = df.iloc[onset + i]
                cases.append(
                    FaultCase(
                        scm.name,
                        kind,
                        var,
                        target,
                        float(mag),
                        {k: float(v) for k, v in row.items()},
                        float(z[onset + i]),
                    )
                )
                break
            mag *= 1.5
            if abs(mag) > 12:
                break
    return cases


def training_data(scm: SCM, n: int, seed: int) -> pd.DataFrame:
    """In-control history of ``n`` rows for fitting (deterministic by ``seed``)."""
    return scm.sample(n, seed=seed)
