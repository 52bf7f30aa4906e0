"""models watched at run time (admin API) and the webhook's model filter

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 07:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.db.tables

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TS = service.db.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "watched_models",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("added_at", UTC_TS, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("models", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("models")
    op.drop_table("watched_models")
