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
                # and sorted when asked, kept up to date from the histories sorted before (not afresh each time)
                ordered = history_series(s, order, tier=tier, ordered=True).ordered
                assert {v: a.tolist() for v, a in ordered.items()} == {v: sorted(x) for v, x in expected.items()}
                assert series.ordered == {}
        for pk in old + new:
            assert _tuples(batch_long(s, pk)) == _expected(s, [pk], None)
        # a caller changing the frame it got does not change what the next caller reads
        first = batch_long(s, old[0])
        first["value"] = -1.0
        assert _tuples(batch_long(s, old[0])) == _expected(s, [old[0]], None)
    engine.dispose()


def test_sorted_history_follows_a_sliding_window_as_a_fresh_sort_would() -> None:
    """The analysis reads its quantiles from each variable's history sorted; consecutive jobs' histories share
    all but a batch or two, so the sorted values are updated from the nearest history sorted before. Windows
    sliding forward, back and jumping, ties across batches, a variable that comes and goes, +-0.0: always
    exactly ``np.sort`` of the joined values."""
    import numpy as np

    from app.analysis.observations import _join, _OrderedHistories, _part

    rng = np.random.default_rng(11)
    parts = {}
    for i in range(80):
        n = int(rng.integers(0, 40))
        variables = rng.choice(["a", "b"] if i % 9 else ["a", "b", "c"], n).tolist()
        values = rng.integers(-3, 4, n).astype(float) / 2  # many ties, and 0.0 next to -0.0
        values[rng.random(n) < 0.1] *= -0.0
        import pandas as pd

        frame = pd.DataFrame({"variable": pd.Series(variables, dtype=object), "value": values})
        parts[f"pk{i}"] = _part(frame, None)
    keys = list(parts)
    cache = _OrderedHistories(keep=3)
    incremental = updated = 0
    starts = [*range(0, 40), *range(40, 20, -1), 5, 60, 61, 7, 7, 30]
    for step, start in enumerate(starts):
        width = 20 + (step % 3)
        window = {k: parts[k] for k in keys[start : start + width] if parts[k].rows}
        values = _join(list(window.values())).values
        kept, sorts = dict(cache._kept), cache.fresh_sorts
        got = cache.sorted(None, window, values)
        incremental += any(len(k[1] & frozenset(window)) >= len(window) - 8 for k in kept)
        updated += len(values) - (cache.fresh_sorts - sorts)
        assert set(got) == set(values)
        for var, arr in values.items():
            assert got[var].tolist() == np.sort(arr).tolist(), (step, var)
    # the update path, not only fresh sorts, was checked
    assert incremental > len(starts) // 2 and updated >= 2 * len(starts)


def test_sorted_histories_kept_are_bounded_by_rows() -> None:
    """The kept histories pin their batches' values: however many part numbers are analysed, they hold at most
    ``max_rows`` history rows (oldest first out), and a history larger than that is sorted but not kept."""
    import numpy as np
    import pandas as pd

    from app.analysis.observations import _join, _OrderedHistories, _part

    def part(n: int, seed: int):
        frame = pd.DataFrame({"variable": pd.Series(["a"] * n, dtype=object),
                              "value": np.random.default_rng(seed).normal(size=n)})  # fmt: skip
        return _part(frame, None)

    cache = _OrderedHistories(keep=16, max_rows=1_000)
    for h in range(10):  # ten part numbers, 300 rows each
        window = {f"h{h}-{i}": part(100, h * 10 + i) for i in range(3)}
        got = cache.sorted(None, window, _join(list(window.values())).values)
        assert got["a"].tolist() == sorted(_join(list(window.values())).values["a"].tolist())
        assert cache._rows == sum(p.rows for ps, _, _ in cache._kept.values() for p in ps.values()) <= 1_000
    assert len(cache._kept) == 3
    big = {"big": part(1_500, 99)}
    assert cache.sorted(None, big, _join(list(big.values())).values)["a"].size == 1_500
    assert len(cache._kept) == 3 and cache._rows == 900
