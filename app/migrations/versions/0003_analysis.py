"""analysis: observations, analysis jobs, stored analyses, causal model versions

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "observations",
        sa.Column("id", _BIGINT, nullable=False),
        sa.Column("batch_pk", sa.String(length=36), nullable=False),
        sa.Column("sample_id", sa.String(length=200), nullable=True),
        sa.Column("variable", sa.String(length=200), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["batch_pk"], ["batches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_observations_batch_var", "observations", ["batch_pk", "variable"], unique=False)
    op.create_table(
        "analysis_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_pk", sa.String(length=36), nullable=False),
        sa.Column("profile", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_pk"], ["batches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_pk"),
    )
    op.create_index("ix_analysis_jobs_due", "analysis_jobs", ["status", "next_attempt_at"], unique=False)
    op.create_index("ix_analysis_jobs_profile", "analysis_jobs", ["profile"], unique=False)
    op.create_table(
        "analyses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_pk", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("profile", sa.String(length=100), nullable=True),
        sa.Column("anomalous", sa.Boolean(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("root_cause_status", sa.String(length=32), nullable=False),
        sa.Column("top_cause", sa.String(length=200), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("input_sha256", sa.String(length=64), nullable=False),
        sa.Column("graph_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["batch_pk"], ["batches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_pk", "seq", name="uq_analysis_seq"),
    )
    op.create_index("ix_analyses_batch_pk", "analyses", ["batch_pk"], unique=False)
    op.create_table(
        "causal_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile", sa.String(length=100), nullable=False),
        sa.Column("graph_version", sa.Integer(), nullable=False),
        sa.Column("graph_sha256", sa.String(length=64), nullable=False),
        sa.Column("anm_sha256", sa.String(length=64), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("n_batches", sa.Integer(), nullable=False),
        sa.Column("through_job_id", sa.Integer(), nullable=False),
        sa.Column("training_sha256", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("profile", "graph_version", name="uq_causal_model_version"),
    )
    op.create_index("ix_causal_models_profile", "causal_models", ["profile"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_causal_models_profile", table_name="causal_models")
    op.drop_table("causal_models")
    op.drop_index("ix_analyses_batch_pk", table_name="analyses")
    op.drop_table("analyses")
    op.drop_index("ix_analysis_jobs_profile", table_name="analysis_jobs")
    op.drop_index("ix_analysis_jobs_due", table_name="analysis_jobs")
    op.drop_table("analysis_jobs")
    op.drop_index("ix_observations_batch_var", table_name="observations")
    op.drop_table("observations")
