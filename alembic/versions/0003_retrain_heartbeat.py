"""retrain jobs renew a heartbeat while their worker lives

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("retrain_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("heartbeat_at", service.db.tables.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("retrain_jobs", schema=None) as batch_op:
        batch_op.drop_column("heartbeat_at")
