"""Schema migrations: the tables match the migrations, and processes starting together on an empty database
(several gateways, a worker) migrate it once without tripping over each other."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from app.db import Base, make_engine, make_session_factory, upgrade
from scripts.demo_data import load_csv
from tests.app.conftest import Gateway
from tests.conftest import ROOT


def _head() -> str:
    """The newest revision in app/migrations/versions (several branches add one each before merging)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "app" / "migrations"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_migrations_build_exactly_the_tables_the_code_uses(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_processes_starting_together_migrate_an_empty_database_once(db_url: str) -> None:
    code = f"from app.db import make_engine, upgrade; upgrade(make_engine({db_url!r}))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert all(rc == 0 for rc, _ in results), [err[-500:] for rc, err in results if rc]
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0018"
    engine.dispose()


def test_the_heads_read_from_the_migration_files_are_alembics() -> None:
    # the gateway's start-up skips Alembic when the database is at this head: it must be Alembic's own
    from app.db import script_heads

    assert script_heads() == {_head()}


def test_a_restart_on_a_migrated_database_does_not_load_alembic(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    code = (
        "import sys; from app.db import make_engine, upgrade\n"
        f"upgrade(make_engine({db_url!r})); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert out.split() == ["False"]


def _migrate(engine, revision: str, *, down: bool = False) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "app" / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def test_observations_stored_one_row_per_value_move_into_packs_and_back(db_url: str) -> None:
    """0015 packs a batch's values into one row: an existing database keeps every value, in upload order, and the
    analysis history reads them; a downgrade gives the one-row-per-value table back."""
    from sqlalchemy import text

    from app.analysis.observations import history_long

    engine = make_engine(db_url)
    _migrate(engine, "0014")
    rows = [
        ("b1", "S1", "thickness", "quality", 85.1, "um"),
        ("b1", None, "roll_pressure", "process", 4.5, "MPa"),
        ("b2", "S9", "thickness", "quality", 84.0, None),
        ("b1", "S2", "thickness", "quality", 85.3, "um"),
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO parties (name, kind, account, created_at)"
                " VALUES ('p', 'supplier', '0x01', CURRENT_TIMESTAMP)"
            )
        )
        for pk in ("b1", "b2", "b3"):
            conn.execute(
                text(
                    "INSERT INTO batches (id, batch_id, supplier_id, idempotency_key, content_sha256, record_count,"
                    " leaf_count, root, report_hash, agreement_id, verdict, supersedes, status, created_at, updated_at)"
                    " VALUES (:pk, :pk, (SELECT id FROM parties), :pk, '0', 1, 1, '0x', '0x', '0x', 0, '0x',"
                    " 'pending', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"pk": pk},
            )
        for r in rows:
            conn.execute(
                text(
                    "INSERT INTO observations (batch_pk, sample_id, variable, tier, value, unit)"
                    " VALUES (:b, :s, :v, :t, :x, :u)"
                ),
                dict(zip("bsvtxu", r, strict=True)),
            )
    upgrade(engine)
    with make_session_factory(engine)() as s:
        got = history_long(s, ["b2", "b1", "b3"])
        assert [tuple(None if v != v else v for v in row) for row in got.itertuples(index=False)] == [
            rows[2],
            rows[0],
            rows[1],
            rows[3],
        ]
        assert s.execute(text("SELECT rows FROM observation_packs WHERE batch_pk = 'b1'")).scalar() == 3
    _migrate(engine, "0014", down=True)
    with engine.connect() as conn:
        back = conn.execute(
            text("SELECT batch_pk, sample_id, variable, tier, value, unit FROM observations ORDER BY batch_pk, id")
        ).all()
    assert [tuple(r) for r in back] == sorted(rows, key=lambda r: r[0])
    engine.dispose()


def test_records_stored_one_row_each_move_into_chunks_and_back(db_url: str) -> None:
    """0016 stores records in chunks: an existing batch's records, leaf values and proofs' inputs read back the
    same (in index order, also past a chunk boundary), and a downgrade gives the one-row-per-record table back."""
    from sqlalchemy import text

    from app.db import RECORDS_PER_CHUNK, Batch
    from app.services.batches import list_records, record_leaves
    from chain.merkle import leaf_hash

    engine = make_engine(db_url)
    _migrate(engine, "0015")
    n = RECORDS_PER_CHUNK + 2
    old = [(i, f'{{"sample":"S{i}","value":{i}}}', "0x" + f"{i:064x}", "0x" + f"{i + 7:064x}") for i in range(n)]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO parties (name, kind, account, created_at)"
                " VALUES ('p', 'supplier', '0x01', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO batches (id, batch_id, supplier_id, idempotency_key, content_sha256, record_count,"
                " leaf_count, root, report_hash, agreement_id, verdict, supersedes, status, created_at, updated_at)"
                " VALUES ('b1', 'b1', (SELECT id FROM parties), 'k', '0', :n, :n, '0x', '0x', '0x', 0, '0x',"
                " 'pending', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"n": n},
        )
        conn.execute(
            text(
                "INSERT INTO records (batch_pk, idx, data, salt, digest, leaf_hash) VALUES ('b1', :i, :d, :s, :g, :h)"
            ),
            [
                {
                    "i": i,
                    "d": d,
                    "s": s,
                    "g": g,
                    "h": "0x" + leaf_hash(bytes.fromhex(s[2:]), bytes.fromhex(g[2:])).hex(),
                }
                for i, d, s, g in reversed(old)  # inserted out of order: the index decides
            ],
        )
    upgrade(engine)
    with make_session_factory(engine)() as s:
        batch = s.get(Batch, "b1")
        got = list_records(session=s, batch=batch, limit=n, offset=0)
        assert [(r.idx, r.data, "0x" + r.salt.hex(), "0x" + r.digest.hex()) for r in got] == old
        tail = list_records(session=s, batch=batch, limit=5, offset=RECORDS_PER_CHUNK - 2)
        assert [r.idx for r in tail] == list(range(RECORDS_PER_CHUNK - 2, n))
        assert record_leaves(session=s, batch=batch) == b"".join(
            bytes.fromhex(salt[2:]) + bytes.fromhex(digest[2:]) for _, _, salt, digest in old
        )
    _migrate(engine, "0015", down=True)
    with engine.connect() as conn:
        back = conn.execute(text("SELECT idx, data, salt, digest, leaf_hash FROM records ORDER BY idx")).all()
    assert [tuple(r[:4]) for r in back] == old
    assert back[3][4] == "0x" + leaf_hash(bytes.fromhex(old[3][2][2:]), bytes.fromhex(old[3][3][2:])).hex()
    engine.dispose()


def test_analysis_jobs_get_their_batchs_supplier_and_part_and_the_history_reads_them(db_url: str) -> None:
    """0017 copies each existing job's batch supplier and part number onto the job; the SPC history of a
    supplier's part (newest earlier clean jobs, oldest first) is what it was, and a downgrade drops the copies."""
    from sqlalchemy import text

    from app.analysis.observations import clean_history_batches

    engine = make_engine(db_url)
    _migrate(engine, "0016")
    batches = [("b1", "s1", "P-1", "clean"), ("b2", "s2", "P-1", "clean"), ("b3", "s1", None, "clean"),
               ("b4", "s1", "P-1", "anomalous"), ("b5", "s1", "P-1", "clean"), ("b6", "s1", "P-1", None)]  # fmt: skip
    with engine.begin() as conn:
        for name in ("s1", "s2"):
            conn.execute(
                text(
                    "INSERT INTO parties (name, kind, account, created_at)"
                    " VALUES (:n, 'supplier', :n, CURRENT_TIMESTAMP)"
                ),
                {"n": name},
            )
        for pk, supplier, part, outcome in batches:
            conn.execute(
                text(
                    "INSERT INTO batches (id, batch_id, supplier_id, idempotency_key, content_sha256, record_count,"
                    " leaf_count, root, report_hash, agreement_id, verdict, supersedes, status, part_number,"
                    " created_at, updated_at) VALUES (:pk, :pk, (SELECT id FROM parties WHERE name = :s), :pk, '0',"
                    " 1, 1, '0x', '0x', '0x', 0, '0x', 'pending', :part, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"pk": pk, "s": supplier, "part": part},
            )
            conn.execute(
                text(
                    "INSERT INTO analysis_jobs (batch_pk, status, outcome, attempts, next_attempt_at, created_at,"
                    " updated_at) VALUES (:pk, :st, :o, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"pk": pk, "st": "done" if outcome else "pending", "o": outcome},
            )
    upgrade(engine)
    with make_session_factory(engine)() as s:
        s1 = s.execute(text("SELECT id FROM parties WHERE name = 's1'")).scalar()
        copied = s.execute(text("SELECT batch_pk, supplier_id, part_number FROM analysis_jobs ORDER BY id")).all()
        assert [(pk, part) for pk, _, part in copied] == [(b[0], b[2]) for b in batches]
        assert [sid == s1 for _, sid, _ in copied] == [b[1] == "s1" for b in batches]
        last = s.execute(text("SELECT id FROM analysis_jobs WHERE batch_pk = 'b6'")).scalar()
        kw = {"before_job_id": last, "limit": 10, "supplier_id": s1}
        assert clean_history_batches(s, part_number="P-1", **kw) == ["b1", "b5"]
        assert clean_history_batches(s, part_number=None, **kw) == ["b3"]
        assert clean_history_batches(s, part_number="P-1", **{**kw, "limit": 1}) == ["b5"]
    _migrate(engine, "0016", down=True)
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("analysis_jobs")}
    assert {"supplier_id", "part_number"}.isdisjoint(columns) and "batch_pk" in columns
    engine.dispose()


def test_an_uploads_large_values_are_stored_lz4_compressed_on_postgresql(gateway: Gateway) -> None:
    """0018: PostgreSQL compresses an upload's records, file, observations and analysis with LZ4 (~5x less
    server CPU than its default pglz); the values read back unchanged. SQLite stores them as before."""
    csv = load_csv(1000, 3)
    resp = gateway.upload("supplier", csv)
    assert resp.status_code == 201, resp.text
    batch = resp.json()["id"]
    gateway.anchor_all()
    sessions = gateway.client.app.state.session_factory  # type: ignore[attr-defined]
    with sessions() as s:
        if s.get_bind().dialect.name != "postgresql":
            assert s.scalar(text("SELECT count(*) FROM record_chunks WHERE batch_pk = :b"), {"b": batch}) == 1
            return
        methods = {
            table: s.scalar(text(f"SELECT pg_column_compression({column}) FROM {table} WHERE {where}"), {"b": batch})
            for table, column, where in [
                ("record_chunks", "data", "batch_pk = :b"),
                ("blobs", "data", "sha256 = (SELECT sha256 FROM batch_files WHERE batch_pk = :b)"),
                ("observation_packs", "data", "batch_pk = :b"),
            ]
        }
        stored = s.scalar(text("SELECT data FROM blobs WHERE sha256 = (SELECT sha256 FROM batch_files "
                               "WHERE batch_pk = :b)"), {"b": batch})  # fmt: skip
    assert methods == {"record_chunks": "lz4", "blobs": "lz4", "observation_packs": "lz4"}
    assert bytes(stored) == csv
    records = gateway.client.get(f"/v1/batches/{batch}/records", headers=gateway.auth("supplier"))
    assert records.status_code == 200 and [r["index"] for r in records.json()] == list(range(1000))
