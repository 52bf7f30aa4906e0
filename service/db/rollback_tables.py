"""A person's rollback as a recorded intent: committed before either alias moves, ended once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.db.tables import UTCDateTime


class ChampionRollback(SQLModel, table=True):
    """`moving` is committed under the champion lease before `champion` moves back; the end (`rolled_back`
    with its `model.rolled_back` event, or `undone` when nothing moved) is a compare-and-set on it
    (service/retraining/rollback.py). A `moving` row seen by the next holder of the lease is a rollback
    whose process died: it is settled from MLflow's aliases."""

    __tablename__ = "champion_rollbacks"

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(max_length=200, index=True)
    from_version: str | None = Field(default=None, max_length=50)  # the champion rolled back from
    to_version: str = Field(max_length=50)  # previous_champion, the champion restored
    state: str = Field(max_length=20, index=True)  # moving | rolled_back | undone
    note: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    requested_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
