"""Schema migrations: the tables match the migrations, and processes starting together on an empty database
(several gateways, a worker) migrate it once without tripping over each other."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.db import Base, make_engine, upgrade
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
        assert MigrationContext.configure(conn).get_current_revision() == "0014"
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
