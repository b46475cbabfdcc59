"""Observations of a batch (quality characteristics and process values) and the history queries over them.

Storage: one :class:`~app.db.Observation` row per value, keyed by batch / sample / variable with its tier
(``quality`` for measured characteristics) and unit; a value that applies to the whole batch has
``sample_id`` NULL. History is always "earlier clean batches": batches whose analysis job is done with
outcome ``clean`` and a job id below the current one (jobs run oldest first), so an anomalous batch
never becomes part of a baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import AnalysisJob, Batch, Observation, insert_rows
from parsers.model import InspectionBatch

if TYPE_CHECKING:  # pandas is imported where frames are built: the upload path only stores rows
    import pandas as pd

__all__ = [
    "batch_long",
    "clean_history_batches",
    "history_long",
    "persist_observations",
    "sample_rows",
]


def persist_observations(*, session: Session, batch: Batch, inspection: InspectionBatch) -> int:
    """Store every measurement and process value of ``inspection`` for ``batch``; returns the row count."""
    rows: list[dict[str, Any]] = [
        {
            "batch_pk": batch.id,
            "sample_id": m.sample_id,
            "variable": m.characteristic,
            "tier": "quality",
            "value": float(m.value),
            "unit": m.unit,
        }
        for m in inspection.measurements
    ]
    rows += [
        {
            "batch_pk": batch.id,
            "sample_id": p.sample_id,
            "variable": p.variable,
            "tier": p.tier,
            "value": float(p.value),
            "unit": p.unit,
        }
        for p in inspection.process
    ]
    insert_rows(session, Observation, rows)
    return len(rows)


def _frame(rows: Sequence[Any]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        [(r.batch_pk, r.sample_id, r.variable, r.tier, r.value, r.unit) for r in rows],
        columns=["batch_pk", "sample_id", "variable", "tier", "value", "unit"],
    )


def batch_long(session: Session, batch_pk: str) -> pd.DataFrame:
    """All observations of one batch in upload order (columns batch_pk, sample_id, variable, tier, value, unit)."""
    rows = session.scalars(select(Observation).where(Observation.batch_pk == batch_pk).order_by(Observation.id))
    return _frame(list(rows))


def clean_history_batches(
    session: Session,
    *,
    before_job_id: int | None,
    limit: int,
    supplier_id: int | None = None,
    part_number: str | None = None,
    profile: str | None = None,
    by_part: bool = True,
) -> list[str]:
    """Ids of earlier clean batches (oldest first, at most the ``limit`` newest), filtered as asked.

    ``by_part``: same supplier and part number (SPC history); otherwise same profile (model training).
    """
    q = (
        select(AnalysisJob.batch_pk)
        .join(Batch, Batch.id == AnalysisJob.batch_pk)
        .where(AnalysisJob.status == "done", AnalysisJob.outcome == "clean")
    )
    if before_job_id is not None:
        q = q.where(AnalysisJob.id < before_job_id)
    if by_part:
        q = q.where(Batch.supplier_id == supplier_id)
        q = q.where(Batch.part_number.is_(None) if part_number is None else Batch.part_number == part_number)
    else:
        q = q.where(AnalysisJob.profile == profile)
    ids = list(session.scalars(q.order_by(AnalysisJob.id.desc()).limit(limit)))
    ids.reverse()
    return ids


def history_long(session: Session, batch_pks: Sequence[str], *, tier: str | None = None) -> pd.DataFrame:
    """Observations of ``batch_pks`` in that (oldest-first) order, optionally only one tier."""
    import pandas as pd

    if not batch_pks:
        return _frame([])
    order = {pk: i for i, pk in enumerate(batch_pks)}
    frames = []
    for start in range(0, len(batch_pks), 500):
        chunk = list(batch_pks[start : start + 500])
        q = select(Observation).where(Observation.batch_pk.in_(chunk))
        if tier is not None:
            q = q.where(Observation.tier == tier)
        frames.append(_frame(list(session.scalars(q.order_by(Observation.id)))))
    df = pd.concat(frames, ignore_index=True)
    df["_order"] = df["batch_pk"].map(order)
    return df.sort_values(["_order"], kind="stable").drop(columns="_order").reset_index(drop=True)


def sample_rows(long: pd.DataFrame, variables: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-sample wide rows (index ``(batch_pk, sample_id)``): quality and per-sample process values,
    with batch-level values (``sample_id`` NULL) broadcast to every sample of their batch.

    Only rows having every one of ``variables`` (default: all variables seen) are kept, in the order the
    samples first appear.
    """
    import pandas as pd

    if long.empty:
        return pd.DataFrame(columns=list(variables or []))
    per_sample = long[long["sample_id"].notna()]
    wide = per_sample.pivot_table(
        index=["batch_pk", "sample_id"], columns="variable", values="value", aggfunc="last", sort=False
    )
    batch_level = long[long["sample_id"].isna()]
    if not batch_level.empty and not wide.empty:
        per_batch = batch_level.pivot_table(index="batch_pk", columns="variable", values="value", aggfunc="last")
        for var in per_batch.columns:
            broadcast = wide.index.get_level_values(0).map(per_batch[var])
            if var in wide.columns:
                wide[var] = wide[var].fillna(pd.Series(broadcast, index=wide.index))
            else:
                wide[var] = broadcast.to_numpy(dtype=float)
    cols = list(variables) if variables is not None else sorted(map(str, wide.columns))
    for c in cols:
        if c not in wide.columns:
            wide[c] = float("nan")
    wide = wide.loc[:, cols].astype(float)
    return wide.dropna(how="any")
