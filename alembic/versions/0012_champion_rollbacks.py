"""champion_rollbacks: a rollback's intent, committed before its alias moves and ended once

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import service.db.tables
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TS = service.db.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "champion_rollbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("from_version", sa.String(length=50), nullable=True),
        sa.Column("to_version", sa.String(length=50), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("requested_at", UTC_TS, nullable=False),
        sa.Column("finished_at", UTC_TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("champion_rollbacks", schema=None) as batch_op:
        batch_op.create_index("ix_champion_rollbacks_model_name", ["model_name"], unique=False)
        batch_op.create_index("ix_champion_rollbacks_state", ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("champion_rollbacks", schema=None) as batch_op:
        batch_op.drop_index("ix_champion_rollbacks_state")
        batch_op.drop_index("ix_champion_rollbacks_model_name")
    op.drop_table("champion_rollbacks")
