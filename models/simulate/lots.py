"""Realistic upload files for one batch, generated from the process simulator (clean or with a fault).

Each batch is two files the supplier uploads together (multipart ``files``):

- a measurement CSV in long format ``sample_id,characteristic,value,unit,part_number,lot_id``: the
  simulator's quality variables (for ``electrode_coating``: areal_capacity, adhesion_strength, porosity);
- a process-data CSV ``variable,tier,value,unit,sample_id``: every material / environment / equipment /
  process variable of the same samples.

The default part number ``EC-LINE-1`` is mapped to the ``electrode_coating`` profile by the gateway's
``analysis_profiles`` setting and matches ``app/quality/library/electrode_coating_line.json``.

Example (history then a fault)::

    history = [make_batch(seed=i, lot_id=f"LOT-{i:03d}") for i in range(25)]
    faulty = make_batch(seed=99, lot_id="LOT-099", fault=Fault("mean_shift", "roll_pressure", 6.0))
    faulty.truth["root_cause"]  # 'roll_pressure'

``python scripts/demo_data.py OUT_DIR`` writes the files of a clean history plus one faulty batch; ``qcn demo``
delivers these lots.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from models.causal.constraints import Tier
from models.simulate.processes import get_process
from models.simulate.scm import SCM, Fault

__all__ = ["DEFAULT_PART", "DemoBatch", "make_batch", "make_history"]

DEFAULT_PART = "EC-LINE-1"
DEFAULT_PROCESS = "electrode_coating"
# simulator seeds of history batches start here, fault batches use their own seed
_SEED_BASE = 7000


@dataclass(frozen=True)
class DemoBatch:
    """One batch: the measurement CSV, the process-data CSV, and the ground truth used to make them."""

    lot_id: str
    measurements_csv: bytes
    process_csv: bytes
    truth: dict[str, Any] = field(default_factory=dict)

    def files(self) -> list[tuple[str, tuple[str, bytes, str]]]:
        """Multipart ``files`` for ``POST /v1/batches`` (httpx/requests form)."""
        return [
            ("files", (f"{self.lot_id}_measurements.csv", self.measurements_csv, "text/csv")),
            ("files", (f"{self.lot_id}_process.csv", self.process_csv, "text/csv")),
        ]


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _unit(scm: SCM, name: str) -> str:
    return scm.by_name[name].unit or "1"


def make_batch(
    *,
    seed: int,
    lot_id: str,
    n_samples: int = 10,
    fault: Fault | None = None,
    process: str = DEFAULT_PROCESS,
    part_number: str = DEFAULT_PART,
) -> DemoBatch:
    """Simulate one batch of ``n_samples`` samples (deterministic by ``seed``), optionally with ``fault``.

    The fault applies to every sample from ``fault.onset`` on (a drift ramps over the batch).
    """
    scm = get_process(process)
    df = scm.sample(n_samples, seed=_SEED_BASE + seed, fault=fault)
    chars = scm.characteristics
    ids = [f"{lot_id}-S{i:03d}" for i in range(1, n_samples + 1)]
    m = io.StringIO()
    m.write("sample_id,characteristic,value,unit,part_number,lot_id\n")
    for i, sid in enumerate(ids):
        for c in chars:
            m.write(f"{sid},{c},{_fmt(float(df[c].iloc[i]))},{_unit(scm, c)},{part_number},{lot_id}\n")
    p = io.StringIO()
    p.write("variable,tier,value,unit,sample_id\n")
    for i, sid in enumerate(ids):
        for v in scm.variables:
            tier = scm.by_name[v].tier
            if tier is Tier.QUALITY:
                continue
            p.write(f"{v},{tier.value},{_fmt(float(df[v].iloc[i]))},{_unit(scm, v)},{sid}\n")
    truth: dict[str, Any] = {"process": process, "seed": seed, "n_samples": n_samples, "root_cause": None}
    if fault is not None:
        truth.update(root_cause=fault.variable, fault_kind=fault.kind, magnitude=fault.magnitude)
    return DemoBatch(lot_id, m.getvalue().encode(), p.getvalue().encode(), truth)


def make_history(
    n_batches: int,
    *,
    n_samples: int = 10,
    process: str = DEFAULT_PROCESS,
    part_number: str = DEFAULT_PART,
    prefix: str = "LOT",
) -> list[DemoBatch]:
    """``n_batches`` clean batches with lot ids ``{prefix}-001``... (seeds 1..n)."""
    return [
        make_batch(seed=i, lot_id=f"{prefix}-{i:03d}", n_samples=n_samples, process=process, part_number=part_number)
        for i in range(1, n_batches + 1)
    ]
