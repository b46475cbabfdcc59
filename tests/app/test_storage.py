"""SQLite under concurrent writers: transactions that read and then write (every upload, every job claim) queue
on the write lock instead of failing with "database is locked"; reads see committed data (WAL)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, String, func, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.db import make_engine, make_session_factory


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    who: Mapped[str] = mapped_column(String(20))


def test_concurrent_read_then_write_transactions_never_fail_with_database_locked(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    _Base.metadata.create_all(engine)
    sessions = make_session_factory(engine)
    errors: list[str] = []

    def writer(n: int) -> None:
        for i in range(15):
            try:
                with sessions() as s, s.begin():
                    seen = s.scalar(select(func.count()).select_from(_Row))  # read first ...
                    time.sleep(0.002)  # ... another writer commits meanwhile ...
                    s.add(_Row(who=f"{n}-{i}-{seen}"))  # ... then write: a stale snapshot cannot upgrade
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(_Row)) == 8 * 15
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_analysis_does_not_hold_the_sqlite_write_lock_while_it_computes(gateway: Any, monkeypatch: Any) -> None:
    """Uploads failed with "database is locked" while the worker analysed a backlog: the analysis transaction
    wrote early (autoflush) and then held SQLite's single write lock for the whole computation. Now nothing is
    written until the result is stored, so another writer gets through during the computation."""
    from app.services import analysis

    gw = gateway
    if not gw.settings.db_url.startswith("sqlite"):
        return  # PostgreSQL has row locks; the single write lock is SQLite's
    from scripts.demo_data import make_batch

    batch = make_batch(seed=1, lot_id="LOT-1")
    resp = gw.client.post("/v1/batches", files=batch.files(), headers=gw.auth("supplier"))
    assert resp.status_code == 201, resp.text
    original = analysis._analyse
    probes: list[str] = []

    def analyse_then_probe(*args: Any, **kwargs: Any) -> Any:
        outcome = original(*args, **kwargs)
        other = make_engine(gw.settings.db_url)
        try:
            with other.connect() as conn:
                conn.exec_driver_sql("PRAGMA busy_timeout=300")
                conn.execute(text("UPDATE parties SET name = name WHERE id = -1"))
                conn.commit()
            probes.append("wrote")
        except Exception as exc:
            probes.append(f"{type(exc).__name__}: {exc}")
        finally:
            other.dispose()
        return outcome

    monkeypatch.setattr(analysis, "_analyse", analyse_then_probe)
    gw.anchor_all()
    assert probes == ["wrote"]
    job = gw.client.get(f"/v1/batches/{gw.client.get('/v1/batches', headers=gw.auth('supplier')).json()[0]['id']}"
                        "/analysis", headers=gw.auth("supplier"))  # fmt: skip
    assert job.status_code == 200, job.text
