"""Observations of a batch (quality characteristics and process values) and the history queries over them.

Storage: one :class:`~app.db.Observation` row per value, keyed by batch / sample / variable with its tier
(``quality`` for measured characteristics) and unit; a value that applies to the whole batch has
``sample_id`` NULL. History is always "earlier clean batches": batches whose analysis job is done with
outcome ``clean`` and a job id below the current one (jobs run oldest first), so an anomalous batch
never becomes part of a baseline.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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


_COLUMNS = ["batch_pk", "sample_id", "variable", "tier", "value", "unit"]


def _frame(rows: Sequence[Any]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([tuple(r) for r in rows], columns=_COLUMNS)


def _select_rows(batch_pks: Sequence[str], tier: str | None) -> Any:
    """Plain column rows (no ORM objects: a history is up to ``analysis_history_batches`` x the batch size)."""
    q = select(
        Observation.batch_pk,
        Observation.sample_id,
        Observation.variable,
        Observation.tier,
        Observation.value,
        Observation.unit,
    ).where(Observation.batch_pk.in_(list(batch_pks)))
    if tier is not None:
        q = q.where(Observation.tier == tier)
    return q.order_by(Observation.id)


class _BatchFrames:
    """Per-process cache of each stored batch's observations as a frame, keyed by (batch pk, tier).

    A batch's observations are written once, in its upload transaction, and never change, and batch pks are
    random UUIDs: so a frame read once stays right, and each analysis job reads from the database only the
    batches it has not seen yet instead of its whole SPC history. Bounded by the number of rows it holds
    (least recently used batches leave first).
    """

    def __init__(self, max_rows: int = 2_000_000) -> None:
        self.max_rows = max_rows
        self._frames: OrderedDict[tuple[str, str | None], pd.DataFrame] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def get_many(self, session: Session, batch_pks: Sequence[str], tier: str | None) -> list[pd.DataFrame]:
        """The frames of ``batch_pks`` (same order), loading the missing ones in chunks of 500 batches."""
        with self._lock:
            found = {pk: self._frames.get((pk, tier)) for pk in batch_pks}
            for pk in batch_pks:
                if found[pk] is not None:
                    self._frames.move_to_end((pk, tier))
        missing = [pk for pk in batch_pks if found[pk] is None]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            by_batch: dict[str, list[Any]] = {pk: [] for pk in chunk}
            for row in session.execute(_select_rows(chunk, tier)):
                by_batch[row[0]].append(row)
            for pk, rows in by_batch.items():
                found[pk] = frame = _frame(rows)
                self._put((pk, tier), frame)
        return [f for f in (found[pk] for pk in batch_pks) if f is not None]

    def _put(self, key: tuple[str, str | None], frame: pd.DataFrame) -> None:
        with self._lock:
            if key in self._frames or len(frame) > self.max_rows:
                return
            self._frames[key] = frame
            self._rows += len(frame)
            while self._rows > self.max_rows:
                _, old = self._frames.popitem(last=False)
                self._rows -= len(old)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._rows = 0


_BATCH_FRAMES = _BatchFrames()


def batch_long(session: Session, batch_pk: str) -> pd.DataFrame:
    """All observations of one batch in upload order (columns batch_pk, sample_id, variable, tier, value, unit)."""
    return _BATCH_FRAMES.get_many(session, [batch_pk], None)[0].copy()


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
    frames = [f for f in _BATCH_FRAMES.get_many(session, batch_pks, tier) if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else _frame([])


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
