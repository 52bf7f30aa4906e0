"""Asking for a retrain by hand (the API, the CLI): one transaction around the single-flight enqueue."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from service.retraining.queue import Enqueued, enqueue


def submit(engine: sa.Engine, *, model_name: str, trigger: str = "manual", **job: Any) -> Enqueued:
    """Queue a job for `model_name`, or return its active job (`created` False)."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return enqueue(session, model_name=model_name, trigger=trigger, **job)
