"""lab certificates, parsed report leaves and signature verdicts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 17:56:16.939797
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("report_record_idx", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("signature_verdict", sa.String(length=32), nullable=True))

    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.add_column(sa.Column("certificate_pem", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("certificate_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_parties_certificate_sha256"), ["certificate_sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("parties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parties_certificate_sha256"))
        batch_op.drop_column("certificate_sha256")
        batch_op.drop_column("certificate_pem")

    with op.batch_alter_table("batch_files", schema=None) as batch_op:
        batch_op.drop_column("signature_verdict")
        batch_op.drop_column("report_record_idx")
