"""Tables of the scheduled export and of the budgeted rollup scan (service/lifecycle/)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.db.tables import _ts


class DayExport(SQLModel, table=True):
    """One model's UTC day in the export target: `done` once its file is in place, `failed` while its
    last attempt failed (retried at the next run). Days are exported in order, so every day before the
    newest `done` one is exported (or had no rows)."""

    __tablename__ = "day_exports"

    model_name: str = Field(primary_key=True, max_length=200)
    day: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    status: str = Field(max_length=10)  # done | failed
    rows: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    location: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    attempts: int = 0
    last_error: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    updated_at: datetime = Field(sa_column=_ts())


class RollupProgress(SQLModel, table=True):
    """A version-day's rollup stopped by the run's time budget: the accumulated state and the last row
    read, so the next run continues after it instead of starting the day again."""

    __tablename__ = "rollup_progress"

    model_name: str = Field(primary_key=True, max_length=200)
    model_version: str = Field(primary_key=True, max_length=50)
    day: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    after_created_at: datetime = Field(sa_column=_ts())
    after_id: str = Field(max_length=36)
    state: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    updated_at: datetime = Field(sa_column=_ts())
