"""reference roles (task, target, performance baseline) and the automation pause per model

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.tables

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TS = service.db.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("reference_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("target", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("baseline", sa.Text(), nullable=True))
    op.create_table(
        "automation_states",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("changed_at", UTC_TS, nullable=False),
        sa.PrimaryKeyConstraint("model_name"),
    )


def downgrade() -> None:
    op.drop_table("automation_states")
    with op.batch_alter_table("reference_profiles", schema=None) as batch_op:
        batch_op.drop_column("baseline")
        batch_op.drop_column("target")
        batch_op.drop_column("task")
