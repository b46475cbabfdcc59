"""Labelled anomalous batches for the root-cause benchmark.

Each case is a batch of 20-50 consecutive rows of one process with one injected fault on a variable that
is not a quality output (outputs are symptoms), of one of the six kinds in :data:`FAULT_KINDS`, starting
at a random row in the first quarter of the batch. Sizes are in units of the variable's normal spread
(``sd`` of its true value; for ``mechanism`` its noise sd): shift 2.5-4, drift ramps to 3-5, variance x3-5,
a new lot moves its material property by 2.5-4. In ``concurrent_share`` of the cases a harmless variable
(no path to any quality output) changes at the same time: a shift of 3-6 sd or a never-seen level.

``truth`` holds the accepted answers: the faulty variable, and for a material-lot change both the lot
variable and the material property it sets (both name the same physical cause).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.bench.processes import BenchProcess, Fault

__all__ = ["FAULT_KINDS", "Case", "make_cases"]

FAULT_KINDS: tuple[str, ...] = ("mean_shift", "drift", "variance", "stuck", "material_lot", "mechanism")


@dataclass(frozen=True)
class Case:
    """One labelled batch."""

    process: str
    index: int
    kind: str
    root: str
    truth: frozenset[str]
    concurrent: str | None
    batch: pd.DataFrame
    faults: tuple[Fault, ...]


def _eligible(proc: BenchProcess, kind: str) -> list[str]:
    obs = [v for v in proc.vars if v.observed and not v.categorical and v.tier != "quality" and not v.harmless]
    if kind == "material_lot":
        return [proc.lot[0]]
    if kind == "mechanism":
        return [v.name for v in obs if v.parents and v.f is not None]
    if kind == "stuck":
        return [v.name for v in obs]
    return [v.name for v in obs if proc.reaches_quality(v.name)]


def make_cases(
    proc: BenchProcess, n_cases: int, *, seed: int, concurrent_share: float = 0.45, rows: tuple[int, int] = (20, 50)
) -> list[Case]:
    """``n_cases`` labelled batches of ``proc``, fault kinds in rotation, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    cal = proc.calibration
    out = []
    for i in range(n_cases):
        kind = FAULT_KINDS[i % len(FAULT_KINDS)]
        n = int(rng.integers(rows[0], rows[1] + 1))
        onset = 0 if kind in ("drift", "material_lot") else int(rng.integers(0, n // 4 + 1))
        var = str(rng.choice(_eligible(proc, kind)))
        sign = float(rng.choice([-1.0, 1.0]))
        sd = cal[var]["sd"]
        if kind == "mean_shift":
            flt = Fault(kind, var, sign * rng.uniform(2.5, 4.0) * sd, onset)
        elif kind == "drift":
            flt = Fault(kind, var, sign * rng.uniform(3.0, 5.0) * sd, onset)
        elif kind == "variance":
            flt = Fault(kind, var, rng.uniform(3.0, 5.0), onset)
        elif kind == "stuck":
            flt = Fault(kind, var, 0.0, onset)
        elif kind == "material_lot":
            prop = proc.lot[1]
            flt = Fault(kind, var, sign * rng.uniform(2.5, 4.0) * cal[prop]["sd"], 0)
        else:
            noise = max(cal[var]["noise_sd"], 1e-9)
            flt = Fault(kind, var, sign * rng.uniform(2.0, 4.0) * noise, onset, gain=float(rng.uniform(0.5, 1.5)))
        faults = [flt]
        concurrent = None
        if rng.random() < concurrent_share:
            concurrent = str(rng.choice([h for h in proc.harmless if h != var]))
            hv = proc.by_name[concurrent]
            if hv.categorical:
                faults.append(Fault("new_level", concurrent, 0.0, int(rng.integers(0, n // 2))))
            else:
                mag = float(rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 6.0) * cal[concurrent]["sd"])
                faults.append(Fault("mean_shift", concurrent, mag, int(rng.integers(0, n // 2))))
        batch = proc.simulate(n, rng, tuple(faults))
        truth = {var} | ({proc.lot[1]} if kind == "material_lot" else set())
        out.append(Case(proc.name, i, kind, var, frozenset(truth), concurrent, batch, tuple(faults)))
    return out
