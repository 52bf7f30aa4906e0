"""The models watched at run time (`PUT /v1/models/{name}/watch`), on top of the configured ones, and
the index that keeps per-model reads of `drift_runs` one lookup each at many models."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from service.db.tables import DriftRun, UTCDateTime


class WatchedModel(SQLModel, table=True):
    """One row per model added by the admin API; deleting the row stops watching it. The configured
    models (DRIFTLOOP_MODEL_NAME, DRIFTLOOP_MODELS, the models file) never need a row."""

    __tablename__ = "watched_models"

    name: str = Field(primary_key=True, max_length=200)
    added_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))


# a model's newest run of a kind (the overview page, the progress lines, the monitor's cold start):
# a backward range read of this index, not a walk over every run of the model (migration 0013)
_R = DriftRun.__table__  # type: ignore[attr-defined]
sa.Index("ix_drift_runs_model_kind_id", _R.c.model_name, _R.c.kind, _R.c.id)
