"""PostgreSQL: the large columns (records, files, observations, analyses) are compressed with LZ4

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 10:40:00

Every upload writes ~300 KB of text (its canonical records, the file, its observations) that PostgreSQL
compresses when storing it out of line. Its default compressor (pglz) cost ~1.5 ms of server CPU per 220 KB
record chunk; LZ4 costs ~0.3 ms and compresses this text as well or better. Values written before keep their
compression; PostgreSQL reads both. A server without LZ4 (built without it, or older than 14) and SQLite are
left as they are.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

COLUMNS = [
    ("blobs", "data"),
    ("record_chunks", "data"),
    ("batch_files", "parsed_json"),
    ("observation_packs", "data"),
    ("analyses", "document"),
]


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    query = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    return bool(bind.execute(sa.text(query)).scalar())


def _set(method: str) -> None:
    if _lz4_available():
        for table, column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    _set("lz4")


def downgrade() -> None:
    _set("default")
