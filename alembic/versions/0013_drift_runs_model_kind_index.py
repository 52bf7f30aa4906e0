"""drift_runs (model_name, kind, id): a model's newest run of a kind is one index lookup

The overview page (service/dashboard/overview.py) and the progress lines read, per watched model, the
newest run of each kind (`WHERE model_name = ? AND kind = ? ORDER BY id DESC LIMIT 1`). With only
(model_name) indexed that walks every run of the model to find a kind that is rare or absent (an
estimated-performance run among thousands of drift runs); with this index it is a backward range read.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 18:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("drift_runs", schema=None) as batch_op:
        batch_op.create_index("ix_drift_runs_model_kind_id", ["model_name", "kind", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("drift_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_drift_runs_model_kind_id")
