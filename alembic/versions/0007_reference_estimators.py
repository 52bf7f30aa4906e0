"""label-free estimators per model version (CBPE / DLE, permutation importance); longer run kinds

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.tables

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TS = service.db.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reference_estimators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=50), nullable=False),
        sa.Column("reference_created_at", UTC_TS, nullable=False),
        sa.Column("holdout_source", sa.String(length=200), nullable=False),
        sa.Column("n_holdout", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_name", "model_version", name="uq_reference_estimators_version"),
    )
    # "estimated_performance" is 21 characters
    with op.batch_alter_table("drift_runs", schema=None) as batch_op:
        batch_op.alter_column("kind", existing_type=sa.String(length=20), type_=sa.String(length=40))
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.alter_column("kind", existing_type=sa.String(length=20), type_=sa.String(length=40))


def downgrade() -> None:
    with op.batch_alter_table("episodes", schema=None) as batch_op:
        batch_op.alter_column("kind", existing_type=sa.String(length=40), type_=sa.String(length=20))
    with op.batch_alter_table("drift_runs", schema=None) as batch_op:
        batch_op.alter_column("kind", existing_type=sa.String(length=40), type_=sa.String(length=20))
    op.drop_table("reference_estimators")
