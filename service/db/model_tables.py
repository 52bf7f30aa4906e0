"""The models watched at run time (`PUT /v1/models/{name}/watch`), on top of the configured ones."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.db.tables import UTCDateTime


class WatchedModel(SQLModel, table=True):
    """One row per model added by the admin API; deleting the row stops watching it. The configured
    models (DRIFTLOOP_MODEL_NAME, DRIFTLOOP_MODELS, the models file) never need a row."""

    __tablename__ = "watched_models"

    name: str = Field(primary_key=True, max_length=200)
    added_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
