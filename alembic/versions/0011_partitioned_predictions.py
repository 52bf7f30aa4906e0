"""predictions partitioned by UTC day on PostgreSQL, features as jsonb; feedback without a foreign key

PostgreSQL: the table is rebuilt as `PARTITION BY RANGE (created_at)`, its rows copied into one partition
per day they fall on (plus today and the days ahead, and a default partition); the primary key becomes
(id, created_at), `seq` a bigint from the sequence `predictions_seq_seq` (a partitioned table has no
identity before PostgreSQL 17) with a plain index; `features` is cast to jsonb. The copy holds the table
for its duration (about a minute per few million rows): run it with the API stopped.
SQLite: one table as before; the same keys (primary key (id, created_at), a plain index on `seq`).
Both: the feedback table's foreign key to predictions is dropped (the feedback store checks existence).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 08:00:00
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from alembic import op
from service.db.tables import UTCDateTime
from service.lifecycle.partitions import AHEAD_DAYS, DEFAULT, name_of, range_sql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "id, created_at, model_name, model_version, {features}, output, probabilities, latency_ms, endpoint, seq"
)
TABLE = """
CREATE TABLE predictions (
    id VARCHAR(36) NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    model_name VARCHAR(200) NOT NULL,
    model_version VARCHAR(50) NOT NULL,
    features {features} NOT NULL,
    output TEXT NOT NULL,
    probabilities TEXT,
    latency_ms FLOAT NOT NULL,
    endpoint VARCHAR(20) NOT NULL,
    seq BIGINT NOT NULL {seq},
    CONSTRAINT predictions_pkey PRIMARY KEY ({key})
) {partitioning}
"""
FK_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
SQLITE_FK = "fk_feedback_prediction_id_predictions"


def _next_seq(conn: sa.Connection, table: str) -> int:
    """The first `seq` the new table hands out: after every value the old one used or handed out."""
    top = conn.execute(sa.text(f"SELECT coalesce(max(seq), 0) FROM {table}")).scalar_one()
    issued = conn.execute(
        sa.text("SELECT last_value FROM predictions_seq_seq")  # the old identity's (or our) sequence
    ).scalar_one()
    return int(max(top, issued)) + 1


def _pg_upgrade(conn: sa.Connection) -> None:
    for fk in sa.inspect(conn).get_foreign_keys("feedback"):
        if fk["referred_table"] == "predictions":
            op.drop_constraint(fk["name"], "feedback", type_="foreignkey")
    start = _next_seq(conn, "predictions")
    op.execute("ALTER TABLE predictions RENAME TO predictions_unpartitioned")
    op.execute("ALTER TABLE predictions_unpartitioned ALTER COLUMN seq DROP IDENTITY")
    op.execute("ALTER TABLE predictions_unpartitioned DROP CONSTRAINT uq_predictions_seq")
    op.execute("ALTER TABLE predictions_unpartitioned DROP CONSTRAINT predictions_pkey")
    op.execute("DROP INDEX ix_predictions_model_time")
    op.execute("DROP INDEX ix_predictions_model_seq")
    op.execute(f"CREATE SEQUENCE predictions_seq_seq START {start}")
    op.execute(
        TABLE.format(
            features="JSONB", seq="DEFAULT nextval('predictions_seq_seq')", key="id, created_at",
            partitioning="PARTITION BY RANGE (created_at)",
        )
    )  # fmt: skip
    op.execute("ALTER SEQUENCE predictions_seq_seq OWNED BY predictions.seq")
    op.execute(f"CREATE TABLE {DEFAULT} PARTITION OF predictions DEFAULT")
    days: set[date] = set(
        conn.execute(
            sa.text("SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM predictions_unpartitioned")
        ).scalars()
    )
    today = datetime.now(UTC).date()
    days |= {today + timedelta(days=k) for k in range(AHEAD_DAYS + 1)}
    for day in sorted(days):
        op.execute(f'CREATE TABLE "{name_of(day)}" PARTITION OF predictions FOR VALUES {range_sql(day)}')
    op.execute(
        f"INSERT INTO predictions ({COLUMNS.format(features='features')}) "
        f"SELECT {COLUMNS.format(features='features::jsonb')} FROM predictions_unpartitioned"
    )
    op.execute("DROP TABLE predictions_unpartitioned")
    # built after the copy: one sort per index instead of row-by-row maintenance
    op.create_index("ix_predictions_model_time", "predictions", ["model_name", "model_version", "created_at"])
    op.create_index("ix_predictions_model_seq", "predictions", ["model_name", "model_version", "seq"])
    op.create_index("ix_predictions_seq", "predictions", ["seq"])
    op.execute("ANALYZE predictions")


def _pg_downgrade(conn: sa.Connection) -> None:
    start = _next_seq(conn, "predictions")
    op.execute("ALTER TABLE predictions RENAME TO predictions_partitioned")
    op.execute("ALTER TABLE predictions_partitioned ALTER COLUMN seq DROP DEFAULT")
    op.execute("DROP SEQUENCE predictions_seq_seq")
    for index in ("ix_predictions_model_time", "ix_predictions_model_seq", "ix_predictions_seq"):
        op.execute(f"DROP INDEX {index}")
    op.execute("ALTER TABLE predictions_partitioned DROP CONSTRAINT predictions_pkey")
    op.execute(
        TABLE.format(
            features="TEXT", seq=f"GENERATED BY DEFAULT AS IDENTITY (START WITH {start})", key="id",
            partitioning="",
        )
    )  # fmt: skip
    op.execute(
        f"INSERT INTO predictions ({COLUMNS.format(features='features')}) "
        f"SELECT {COLUMNS.format(features='features::text')} FROM predictions_partitioned"
    )
    op.execute("DROP TABLE predictions_partitioned CASCADE")  # with every partition
    op.execute("ALTER TABLE predictions ADD CONSTRAINT uq_predictions_seq UNIQUE (seq)")
    op.create_index("ix_predictions_model_time", "predictions", ["model_name", "model_version", "created_at"])
    op.create_index("ix_predictions_model_seq", "predictions", ["model_name", "model_version", "seq"])
    _restore_feedback_key(conn)


def _restore_feedback_key(conn: sa.Connection) -> None:
    # labels whose prediction is gone (deleted by retention between check and commit) cannot be kept
    op.execute(
        "DELETE FROM feedback WHERE NOT EXISTS "
        "(SELECT 1 FROM predictions p WHERE p.id = feedback.prediction_id)"
    )
    if conn.dialect.name == "postgresql":
        op.create_foreign_key(
            "feedback_prediction_id_fkey", "feedback", "predictions", ["prediction_id"], ["id"]
        )
        return
    with op.batch_alter_table("feedback", naming_convention=FK_NAMES) as batch_op:
        batch_op.create_foreign_key(SQLITE_FK, "predictions", ["prediction_id"], ["id"])


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        _pg_upgrade(conn)
        return
    with op.batch_alter_table("feedback", naming_convention=FK_NAMES) as batch_op:
        batch_op.drop_constraint(SQLITE_FK, type_="foreignkey")
    key = [
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", UTCDateTime(), primary_key=True),
    ]
    with op.batch_alter_table("predictions", recreate="always", reflect_args=key) as batch_op:
        batch_op.drop_constraint("uq_predictions_seq", type_="unique")
        batch_op.create_index("ix_predictions_seq", ["seq"], unique=False)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        _pg_downgrade(conn)
        return
    with op.batch_alter_table("predictions", recreate="always") as batch_op:
        batch_op.drop_index("ix_predictions_seq")
        batch_op.create_primary_key("pk_predictions", ["id"])
        batch_op.create_unique_constraint("uq_predictions_seq", ["seq"])
    _restore_feedback_key(conn)
