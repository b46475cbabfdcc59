"""The SPC history an analysis reads: exactly the stored observations, in batch order then upload order,
also when most batches come from the per-process cache and only the newest from the database."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

from sqlalchemy import select

from app.analysis.observations import batch_long, history_long, history_series, pack_columns
from app.db import Batch, ObservationPack, Party, make_engine, make_session_factory, upgrade
from models.causal.graph import data_sha256

STORED: dict[str, list[tuple]] = {}  # batch pk -> the rows written for it, in upload order


def _store(session_factory, pks: list[str], rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with session_factory() as s, s.begin():
        party = s.scalars(select(Party).where(Party.name == "history supplier")).first()
        if party is None:
            party = Party(name="history supplier", kind="supplier", account="0x" + "12" * 20)
            s.add(party)
            s.flush()
        for pk in pks:
            s.add(Batch(id=pk, batch_id="0x" + uuid.uuid4().hex * 2, supplier_id=party.id, idempotency_key=pk,
                        content_sha256="0", record_count=1, leaf_count=1, root="0x", report_hash="0x",
                        agreement_id="0x", verdict=0, supersedes="0x", status="pending"))  # fmt: skip
        s.flush()
        by_batch: dict[str, list[tuple]] = {pk: [] for pk in pks}
        for _ in range(rows):
            pk = rng.choice(pks)
            sample, variable = rng.choice([None, "S1", "S2"]), rng.choice("ab")
            tier, unit = rng.choice(["quality", "process"]), rng.choice([None, "mm"])
            by_batch[pk].append((pk, sample, variable, tier, rng.random(), unit))
        for pk, values in by_batch.items():
            STORED[pk] = values
            if values:  # a batch without any value has no pack
                names = ("sample_id", "variable", "tier", "value", "unit")
                columns = {name: [v[i + 1] for v in values] for i, name in enumerate(names)}
                s.add(ObservationPack(batch_pk=pk, rows=len(values), data=pack_columns(columns)))


def _expected(_session, pks: list[str], tier: str | None) -> list[tuple]:
    return [row for pk in pks for row in STORED[pk] if tier is None or row[3] == tier]


def _tuples(df) -> list[tuple]:
    return [tuple(None if v != v else v for v in row) for row in df.itertuples(index=False)]


def test_history_is_the_stored_observations_in_batch_order_cached_or_not(tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    old = [str(uuid.uuid4()) for _ in range(5)]
    _store(sessions, old, 400, seed=1)
    with sessions() as s:
        for tier in (None, "quality"):
            assert _tuples(history_long(s, old, tier=tier)) == _expected(s, old, tier)
    new = [str(uuid.uuid4()) for _ in range(2)]
    _store(sessions, new, 150, seed=2)
    with sessions() as s:
        for order in (old + new, list(reversed(old + new)), new[:1], []):
            for tier in (None, "quality", "process"):
                got = history_long(s, order, tier=tier)
                assert _tuples(got) == _expected(s, order, tier)
                assert list(got.columns) == ["batch_pk", "sample_id", "variable", "tier", "value", "unit"]
                # what the analysis reads, joined from cached per-batch parts: each variable's values in row
                # order and the data hash of the (variable, value) rows
                series, rows = history_series(s, order, tier=tier), _expected(s, order, tier)
                whole_sha = data_sha256(got[["variable", "value"]].reset_index(drop=True)) if rows else None
                assert (series.rows, series.sha256) == (len(rows), whole_sha)
                assert (series.sha256 is None) == (not rows)
                expected = {v: [r[4] for r in rows if r[2] == v] for v in dict.fromkeys(r[2] for r in rows)}
                assert {v: a.tolist() for v, a in series.values.items()} == expected
        for pk in old + new:
            assert _tuples(batch_long(s, pk)) == _expected(s, [pk], None)
        # a caller changing the frame it got does not change what the next caller reads
        first = batch_long(s, old[0])
        first["value"] = -1.0
        assert _tuples(batch_long(s, old[0])) == _expected(s, [old[0]], None)
    engine.dispose()
