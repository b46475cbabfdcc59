"""Observations of a batch (quality characteristics and process values) and the history queries over them.

Storage: one :class:`~app.db.ObservationPack` row per batch holding every value column-wise: sample,
variable, tier (``quality`` for measured characteristics), value and unit; a value that applies to the whole
batch has sample id null. History is always "earlier clean batches": batches whose analysis job is done with
outcome ``clean`` and a job id below the current one (jobs run oldest first), so an anomalous batch
never becomes part of a baseline.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import AnalysisJob, Batch, ObservationPack
from parsers.model import InspectionBatch

if TYPE_CHECKING:  # pandas is imported where frames are built: the upload path only stores rows
    import numpy as np
    import pandas as pd

__all__ = [
    "History",
    "batch_long",
    "clean_history_batches",
    "history_long",
    "history_series",
    "pack_columns",
    "persist_observations",
    "sample_rows",
    "unpack_columns",
]


def pack_columns(columns: dict[str, list[Any]]) -> str:
    """The stored form of a batch's observation columns: JSON text columns, and the values as base64 of
    little-endian float64s under ``value_f64`` (exact, and ~20x cheaper to write and read than JSON numbers)."""
    text = {name: values for name, values in columns.items() if name != "value"}
    raw = array("d", columns["value"])
    if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
        raw.byteswap()
    return json.dumps({**text, "value_f64": base64.b64encode(raw.tobytes()).decode()})


def unpack_columns(data: str) -> dict[str, Any]:
    """Inverse of :func:`pack_columns`: the columns, ``value`` as a float64 array."""
    import numpy as np

    columns: dict[str, Any] = json.loads(data)
    columns["value"] = np.frombuffer(base64.b64decode(columns.pop("value_f64")), dtype="<f8").astype(float)
    return columns


def persist_observations(*, session: Session, batch: Batch, inspection: InspectionBatch) -> int:
    """Store every measurement and process value of ``inspection`` for ``batch``; returns the value count."""
    measurements, process = inspection.measurements, inspection.process

    def column(m_name: str, p_name: str) -> list[Any]:  # each a loop in C: 1,000s of rows per upload
        return list(map(attrgetter(m_name), measurements)) + list(map(attrgetter(p_name), process))

    columns: dict[str, list[Any]] = {
        "sample_id": column("sample_id", "sample_id"),
        "variable": column("characteristic", "variable"),
        "tier": ["quality"] * len(measurements) + [p.tier for p in process],
        "value": column("value", "value"),
        "unit": column("unit", "unit"),
    }
    rows = len(columns["value"])
    session.add(ObservationPack(batch_pk=batch.id, rows=rows, data=pack_columns(columns)))
    return rows


_COLUMNS = ["batch_pk", "sample_id", "variable", "tier", "value", "unit"]


def _empty_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=_COLUMNS, dtype=object).astype({"value": float})


def _unpack(batch_pk: str, data: str | None) -> pd.DataFrame:
    """One batch's frame (columns ``_COLUMNS``, upload order) from its pack."""
    import pandas as pd

    if data is None:
        return _empty_frame()
    columns = unpack_columns(data)
    n = len(columns["value"])
    # text columns as plain objects: a missing sample id (batch-level value) or unit stays None; pandas' default
    # string dtype would turn it into NaN, which no JSON hash of the observations accepts
    return pd.DataFrame(
        {
            name: pd.Series([batch_pk] * n if name == "batch_pk" else columns[name], dtype=object)
            for name in _COLUMNS
            if name != "value"
        }
        | {"value": columns["value"]},
        columns=_COLUMNS,
    )


@dataclass(frozen=True)
class History:
    """An SPC history as the analysis reads it: each variable's values in row order, the row count, and
    ``sha256``, the hash of its ``(variable, value)`` rows (``models.causal.graph.data_sha256`` of those two
    columns; None when there are no rows)."""

    values: dict[str, np.ndarray]
    rows: int
    sha256: str | None
    #: each variable's values sorted ascending (the quantiles :func:`models.verdict.score_batch` reads), when
    #: asked for (``history_series(..., ordered=True)``)
    ordered: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Part:
    """One batch's share of a history (the rows of one tier): what :func:`history_series` joins."""

    rows: int
    values: dict[str, np.ndarray]
    value_bytes: bytes  # the rows' values as little-endian float64
    variable_text: bytes  # the rows' variables joined by U+001F, UTF-8


def _part(frame: pd.DataFrame, tier: str | None) -> _Part:
    import numpy as np

    from models.causal.graph import text_column_bytes

    if tier is not None:
        frame = frame[np.asarray(frame["tier"].to_numpy(dtype=object) == tier, dtype=bool)]
    variables = frame["variable"].to_numpy(dtype=object)
    values = np.ascontiguousarray(frame["value"].to_numpy(dtype="<f8"))
    names = variables.tolist()
    return _Part(
        rows=len(names),
        values={v: values[variables == v] for v in dict.fromkeys(names)},
        value_bytes=values.tobytes(),
        variable_text=text_column_bytes(names),
    )


@dataclass
class _Entry:
    frame: pd.DataFrame
    parts: dict[str | None, _Part] = field(default_factory=dict)  # by tier, made when first asked for

    def part(self, tier: str | None) -> _Part:
        got = self.parts.get(tier)
        if got is None:
            got = self.parts[tier] = _part(self.frame, tier)
        return got


class _BatchFrames:
    """Per-process cache of each stored batch's observations as a frame, keyed by batch pk.

    A batch's observations are written once, in its upload transaction, and never change, and batch pks are
    random UUIDs: so a frame read once stays right, and each analysis job reads from the database only the
    batches it has not seen yet instead of its whole SPC history. Bounded by the number of rows it holds
    (least recently used batches leave first). Callers must not change the frames they get.
    """

    def __init__(self, max_rows: int = 2_000_000) -> None:
        self.max_rows = max_rows
        self._frames: OrderedDict[str, _Entry] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def get_many(self, session: Session, batch_pks: Sequence[str]) -> list[pd.DataFrame]:
        """The frames of ``batch_pks`` (same order), loading the missing ones in chunks of 500 batches."""
        return [e.frame for e in self.entries(session, batch_pks)]

    def entries(self, session: Session, batch_pks: Sequence[str]) -> list[_Entry]:
        """The cache entries of ``batch_pks`` (same order), loading the missing ones in chunks of 500 batches."""
        with self._lock:
            found = {pk: self._frames.get(pk) for pk in batch_pks}
            for pk in batch_pks:
                if found[pk] is not None:
                    self._frames.move_to_end(pk)
        missing = [pk for pk in batch_pks if found[pk] is None]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            packs: dict[str, str | None] = dict.fromkeys(chunk)
            q = select(ObservationPack.batch_pk, ObservationPack.data).where(ObservationPack.batch_pk.in_(chunk))
            packs.update((pk, data) for pk, data in session.execute(q))
            for pk, data in packs.items():
                found[pk] = entry = _Entry(_unpack(pk, data))
                self._put(pk, entry)
        return [e for e in (found[pk] for pk in batch_pks) if e is not None]

    def _put(self, key: str, entry: _Entry) -> None:
        with self._lock:
            if key in self._frames or len(entry.frame) > self.max_rows:
                return
            self._frames[key] = entry
            self._rows += len(entry.frame)
            while self._rows > self.max_rows:
                _, old = self._frames.popitem(last=False)
                self._rows -= len(old.frame)

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._rows = 0


_BATCH_FRAMES = _BatchFrames()


def batch_long(session: Session, batch_pk: str) -> pd.DataFrame:
    """All observations of one batch in upload order (columns batch_pk, sample_id, variable, tier, value, unit)."""
    return _BATCH_FRAMES.get_many(session, [batch_pk])[0].copy()


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
    q = select(AnalysisJob.batch_pk).where(AnalysisJob.status == "done", AnalysisJob.outcome == "clean")
    if before_job_id is not None:
        q = q.where(AnalysisJob.id < before_job_id)
    if by_part:  # the job's own copy of its batch's supplier and part number: one index range, no join
        q = q.where(AnalysisJob.supplier_id == supplier_id)
        q = q.where(
            AnalysisJob.part_number.is_(None) if part_number is None else AnalysisJob.part_number == part_number
        )
    else:
        q = q.where(AnalysisJob.profile == profile)
    ids = list(session.scalars(q.order_by(AnalysisJob.id.desc()).limit(limit)))
    ids.reverse()
    return ids


def history_long(session: Session, batch_pks: Sequence[str], *, tier: str | None = None) -> pd.DataFrame:
    """Observations of ``batch_pks`` in that (oldest-first) order, optionally only one tier."""
    import pandas as pd

    frames = [f for f in _BATCH_FRAMES.get_many(session, batch_pks) if not f.empty]
    if not frames:
        return _empty_frame()
    long = pd.concat(frames, ignore_index=True)
    return long if tier is None else long[long["tier"] == tier].reset_index(drop=True)


def history_series(
    session: Session, batch_pks: Sequence[str], *, tier: str | None = None, ordered: bool = False
) -> History:
    """:func:`history_long` as the analysis reads it (:class:`History`), joined from per-batch parts cached
    with the frames: a job costs in proportion to its own batch, not to its whole history of batches.
    ``ordered``: also each variable's values sorted (``History.ordered``), made from the nearest history
    sorted before (:class:`_OrderedHistories`)."""
    entries = _BATCH_FRAMES.entries(session, batch_pks)
    parts = {pk: e.part(tier) for pk, e in zip(batch_pks, entries, strict=True)}
    keyed = {pk: part for pk, part in parts.items() if part.rows}
    history = _join(list(keyed.values()))
    if not ordered:
        return history
    return History(history.values, history.rows, history.sha256, _ORDERED.sorted(tier, keyed, history.values))


def _join(parts: list[_Part]) -> History:
    import numpy as np

    from models.causal.graph import columns_sha256

    parts = [p for p in parts if p.rows]
    rows = sum(p.rows for p in parts)
    if not rows:
        return History({}, 0, None)
    names = dict.fromkeys(v for p in parts for v in p.values)
    values = {v: np.concatenate([p.values[v] for p in parts if v in p.values]) for v in names}
    # data_sha256 of the joined (variable, value) frame, from the parts' bytes
    sha = columns_sha256(rows, [("value", [p.value_bytes for p in parts]),
                                ("variable", [b"\x1f".join(p.variable_text for p in parts)])])  # fmt: skip
    return History(values, rows, sha)


def _without(ordered: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """``ordered`` (sorted) without the multiset ``drop`` (sorted, every value in ``ordered``): the k-th copy
    of a value in ``drop`` removes its k-th copy in ``ordered``."""
    import numpy as np

    first = np.searchsorted(drop, drop, side="left")  # each value's first position in drop
    at = np.searchsorted(ordered, drop, side="left") + (np.arange(drop.size) - first)
    return np.delete(ordered, at)


def _with(ordered: np.ndarray, add: np.ndarray) -> np.ndarray:
    """``ordered`` (sorted) with the values of ``add`` (sorted) merged in: sorted."""
    import numpy as np

    return np.insert(ordered, np.searchsorted(ordered, add, side="left"), add)


class _OrderedHistories:
    """The sorted values of the last few histories, kept to sort the next one from: consecutive analysis jobs
    of a part number share all of their history but a batch or two, so removing those and merging in the new
    ones (O(n) copies) replaces a sort (O(n log n)) or numpy's multi-index partition of every value.

    The result is the sorted multiset of the history's values, whichever way it was made; a history sharing
    too little with every kept one is sorted afresh. A 0.0 and a -0.0 compare equal, so which of the two
    a position holds may differ from a fresh sort."""

    def __init__(self, keep: int = 16, max_rows: int = 2_000_000) -> None:
        self.keep = keep
        self.max_rows = max_rows  # history rows kept in all (each pins its batches' parts and a sorted copy)
        # (tier, batch pks) -> (the parts by pk, each variable's sorted values, the history's rows)
        self._kept: OrderedDict[tuple[str | None, frozenset[str]], tuple[dict[str, _Part], dict[str, Any], int]]
        self._kept = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()
        self.fresh_sorts = 0  # variables sorted afresh (no kept history near enough)

    def sorted(self, tier: str | None, parts: dict[str, _Part], values: dict[str, np.ndarray]) -> dict[str, Any]:
        """``values`` (the join of ``parts``, by batch pk) with each variable's values sorted ascending."""
        import numpy as np

        key = (tier, frozenset(parts))
        with self._lock:
            near = max((k for k in self._kept if k[0] == tier), key=lambda k: len(k[1] & key[1]), default=None)
            base = self._kept[near] if near is not None else None
        out: dict[str, Any] = {}
        if base is not None and near is not None:
            gone, new = near[1] - key[1], key[1] - near[1]
            if len(gone) + len(new) <= max(8, len(parts) // 4):
                old_parts, old_sorted, _ = base
                for var, arr in values.items():
                    got = old_sorted.get(var)
                    if got is None:
                        continue
                    drop = [old_parts[pk].values[var] for pk in gone if var in old_parts[pk].values]
                    add = [parts[pk].values[var] for pk in new if var in parts[pk].values]
                    if drop:
                        got = _without(got, np.sort(np.concatenate(drop)))
                    if add:
                        got = _with(got, np.sort(np.concatenate(add)))
                    if got.size == arr.size:
                        out[var] = got
        for var, arr in values.items():
            if var not in out:
                out[var] = np.sort(arr)
                self.fresh_sorts += 1
        rows = sum(p.rows for p in parts.values())
        with self._lock:
            if key not in self._kept and rows <= self.max_rows:
                self._kept[key] = (dict(parts), out, rows)
                self._rows += rows
            if key in self._kept:
                self._kept.move_to_end(key)
            while len(self._kept) > self.keep or self._rows > self.max_rows:
                self._rows -= self._kept.popitem(last=False)[1][2]
        return out

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._rows = 0


_ORDERED = _OrderedHistories()


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
