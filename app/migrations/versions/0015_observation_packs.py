"""observations packed per batch: one row of columns per batch instead of one row per value

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 04:00:00
"""

import base64
import json
import sys
from array import array
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_COLUMNS = ("sample_id", "variable", "tier", "value", "unit")


def _pack(columns: dict[str, list[Any]]) -> str:
    """app.analysis.observations.pack_columns as of this revision: values as base64 little-endian float64."""
    values = array("d", columns.pop("value"))
    if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
        values.byteswap()
    return json.dumps({**columns, "value_f64": base64.b64encode(values.tobytes()).decode()})


def _unpack(data: str) -> dict[str, list[Any]]:
    columns: dict[str, Any] = json.loads(data)
    values = array("d")
    values.frombytes(base64.b64decode(columns.pop("value_f64")))
    if sys.byteorder != "little":  # pragma: no cover
        values.byteswap()
    columns["value"] = list(values)
    return columns


def _old_batches(bind: Any) -> Iterator[tuple[str, list[Any]]]:
    """The one-row-per-value observations, batch by batch, each batch in insertion (id) order."""
    batch_pks = bind.execute(sa.text("SELECT DISTINCT batch_pk FROM observations")).scalars().all()
    query = sa.text("SELECT sample_id, variable, tier, value, unit FROM observations WHERE batch_pk = :pk ORDER BY id")
    for batch_pk in batch_pks:
        yield batch_pk, bind.execute(query, {"pk": batch_pk}).all()


def upgrade() -> None:
    packs = op.create_table(
        "observation_packs",
        sa.Column("batch_pk", sa.String(length=36), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["batch_pk"], ["batches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("batch_pk"),
    )
    bind = op.get_bind()
    for batch_pk, values in _old_batches(bind):
        columns = {name: [row[i] for row in values] for i, name in enumerate(_COLUMNS)}
        bind.execute(packs.insert().values(batch_pk=batch_pk, rows=len(values), data=_pack(columns)))
    op.drop_index("ix_observations_batch_var", table_name="observations")
    op.drop_table("observations")


def downgrade() -> None:
    observations = op.create_table(
        "observations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
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
    bind = op.get_bind()
    packs = bind.execute(sa.text("SELECT batch_pk, data FROM observation_packs ORDER BY batch_pk")).all()
    for batch_pk, data in packs:
        columns = _unpack(data)
        rows = [
            {"batch_pk": batch_pk, **{name: columns[name][i] for name in _COLUMNS}}
            for i in range(len(columns["value"]))
        ]
        if rows:
            bind.execute(observations.insert(), rows)
    op.drop_table("observation_packs")
