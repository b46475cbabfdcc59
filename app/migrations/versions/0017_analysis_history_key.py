"""analysis jobs carry their batch's supplier and part number (the SPC history query reads one index range)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 08:15:00

Each analysis job reads the newest earlier clean jobs of the same supplier and part number. Joined to
``batches`` for those two columns, that query walked every batch of the supplier once per earlier job (seen:
9,300 rows filtered for 79 kept at 158 batches, quadratic in a supplier's batches). The job now holds them,
copied from its batch (which never changes them), under one index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("analysis_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("supplier_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("part_number", sa.String(length=100), nullable=True))
    jobs, batches = sa.table("analysis_jobs", sa.column("batch_pk"), sa.column("supplier_id"),
                             sa.column("part_number")), sa.table("batches", sa.column("id"), sa.column("supplier_id"),
                                                                 sa.column("part_number"))  # fmt: skip
    of_batch = batches.c.id == jobs.c.batch_pk
    op.execute(
        jobs.update().values(
            supplier_id=sa.select(batches.c.supplier_id).where(of_batch).scalar_subquery(),
            part_number=sa.select(batches.c.part_number).where(of_batch).scalar_subquery(),
        )
    )
    with op.batch_alter_table("analysis_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_analysis_jobs_history", ["supplier_id", "part_number", "outcome", "id"])


def downgrade() -> None:
    with op.batch_alter_table("analysis_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_analysis_jobs_history")
        batch_op.drop_column("part_number")
        batch_op.drop_column("supplier_id")
