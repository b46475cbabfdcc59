"""records stored in chunks of 4,096 per row (canonical texts + packed leaf values) instead of one row each

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 04:30:00
"""

import sqlalchemy as sa
from alembic import op

from chain.merkle import leaf_hash

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_PER_CHUNK = 4096  # app.db.RECORDS_PER_CHUNK when this revision was written


def upgrade() -> None:
    chunks = op.create_table(
        "record_chunks",
        sa.Column("batch_pk", sa.String(length=36), nullable=False),
        sa.Column("first", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("leaves", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["batch_pk"], ["batches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("batch_pk", "first"),
    )
    bind = op.get_bind()
    query = sa.text("SELECT idx, data, salt, digest FROM records WHERE batch_pk = :pk ORDER BY idx")
    for batch_pk in bind.execute(sa.text("SELECT DISTINCT batch_pk FROM records")).scalars().all():
        rows = bind.execute(query, {"pk": batch_pk}).all()
        if [r[0] for r in rows] != list(range(len(rows))):
            raise RuntimeError(f"batch {batch_pk}: stored record indexes are not 0..{len(rows) - 1}")
        for start in range(0, len(rows), _PER_CHUNK):
            part = rows[start : start + _PER_CHUNK]
            bind.execute(
                chunks.insert().values(
                    batch_pk=batch_pk,
                    first=start,
                    count=len(part),
                    data="\n".join(r[1] for r in part),
                    leaves=b"".join(bytes.fromhex(r[2][2:]) + bytes.fromhex(r[3][2:]) for r in part),
                )
            )
    op.drop_table("records")


def downgrade() -> None:
    records = op.create_table(
        "records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_pk", sa.String(length=36), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("salt", sa.String(length=66), nullable=False),
        sa.Column("digest", sa.String(length=66), nullable=False),
        sa.Column("leaf_hash", sa.String(length=66), nullable=False),
        sa.ForeignKeyConstraint(["batch_pk"], ["batches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_pk", "idx", name="uq_record_index"),
    )
    bind = op.get_bind()
    query = sa.text("SELECT batch_pk, first, data, leaves FROM record_chunks ORDER BY batch_pk, first")
    for batch_pk, first, data, leaves in bind.execute(query).all():
        values = bytes(leaves)
        rows = []
        for i, text in enumerate(data.split("\n")):
            salt, digest = values[64 * i : 64 * i + 32], values[64 * i + 32 : 64 * i + 64]
            rows.append(
                {
                    "batch_pk": batch_pk,
                    "idx": first + i,
                    "data": text,
                    "salt": "0x" + salt.hex(),
                    "digest": "0x" + digest.hex(),
                    "leaf_hash": "0x" + leaf_hash(salt, digest).hex(),
                }
            )
        bind.execute(records.insert(), rows)
    op.drop_table("record_chunks")
