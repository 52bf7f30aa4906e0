"""prediction lifecycle: daily rollups, retention purge counters, drift_runs.rows_deleted_at

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.tables

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TS = service.db.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "prediction_rollups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=50), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("predictions", sa.Integer(), nullable=False),
        sa.Column("labeled", sa.Integer(), nullable=False),
        sa.Column("latency_p50", sa.Float(), nullable=True),
        sa.Column("latency_p95", sa.Float(), nullable=True),
        sa.Column("latency_p99", sa.Float(), nullable=True),
        sa.Column("latency_max", sa.Float(), nullable=True),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("computed_at", UTC_TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_name", "model_version", "day", name="uq_prediction_rollups_day"),
    )
    op.create_index("ix_prediction_rollups_model_name", "prediction_rollups", ["model_name"])
    op.create_index("ix_prediction_rollups_day", "prediction_rollups", ["day"])
    op.create_table(
        "retention_purges",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=50), nullable=False),
        sa.Column("rows_deleted", sa.BigInteger(), nullable=False),
        sa.Column("labeled_deleted", sa.BigInteger(), nullable=False),
        sa.Column("last_created_at", UTC_TS, nullable=True),
        sa.Column("updated_at", UTC_TS, nullable=False),
        sa.PrimaryKeyConstraint("model_name", "model_version"),
    )
    with op.batch_alter_table("drift_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rows_deleted_at", UTC_TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drift_runs", schema=None) as batch_op:
        batch_op.drop_column("rows_deleted_at")
    op.drop_table("retention_purges")
    op.drop_index("ix_prediction_rollups_day", table_name="prediction_rollups")
    op.drop_index("ix_prediction_rollups_model_name", table_name="prediction_rollups")
    op.drop_table("prediction_rollups")
