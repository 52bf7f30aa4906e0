"""feedback.seq: label arrivals in commit order, performance windows are ranges of it

Existing labels are numbered in (received_at, prediction_id) order, the order windows used before.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NUMBERED = (
    "SELECT prediction_id AS pid, row_number() OVER (ORDER BY received_at, prediction_id) AS rn FROM feedback"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    op.execute(f"UPDATE feedback SET seq = o.rn FROM ({_NUMBERED}) AS o WHERE prediction_id = o.pid")
    if postgres:
        # a plain sequence with CACHE 1 (values in time order across sessions); new labels follow the
        # backfilled ones
        op.execute("CREATE SEQUENCE feedback_seq_seq CACHE 1 OWNED BY feedback.seq")
        op.execute("SELECT setval('feedback_seq_seq', coalesce(max(seq), 0) + 1, false) FROM feedback")
        op.execute("ALTER TABLE feedback ALTER COLUMN seq SET DEFAULT nextval('feedback_seq_seq')")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index("ix_feedback_seq", ["seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_seq")
        batch_op.drop_column("seq")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS feedback_seq_seq")
