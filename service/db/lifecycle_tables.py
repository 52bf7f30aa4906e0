"""Tables of the prediction log's lifecycle: daily rollups and retention counters (service/lifecycle/)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.db.tables import _ts


class PredictionRollup(SQLModel, table=True):
    """One model version's traffic on one UTC day; kept after retention deletes the day's rows."""

    __tablename__ = "prediction_rollups"
    __table_args__ = (
        sa.UniqueConstraint("model_name", "model_version", "day", name="uq_prediction_rollups_day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(max_length=200, index=True)
    model_version: str = Field(max_length=50)
    day: date = Field(sa_column=sa.Column(sa.Date, nullable=False, index=True))
    predictions: int = 0
    labeled: int = 0
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_p99: float | None = None
    latency_max: float | None = None
    outputs: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False))
    final: bool = False  # retention deleted rows of the day: never recomputed from what is left
    computed_at: datetime = Field(sa_column=_ts())


class RetentionPurge(SQLModel, table=True):
    """How many of a version's predictions retention deleted (row windows count positions past them)."""

    __tablename__ = "retention_purges"

    model_name: str = Field(primary_key=True, max_length=200)
    model_version: str = Field(primary_key=True, max_length=50)
    rows_deleted: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    labeled_deleted: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    last_created_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    updated_at: datetime = Field(sa_column=_ts())


# the scheduled export's days and the rollup scan's saved progress: registered with the other tables here
# (a module import: it completes whichever of the two modules is imported first)
import service.db.export_tables  # noqa: E402, F401
