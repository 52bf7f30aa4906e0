"""What the dashboard says about the loop itself: whether automation is paused, and the latest
performance evidence in words (test, p-value, effect against the baseline)."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlmodel import Session, col, select

from service.config import Settings
from service.db.tables import DriftRun
from service.monitor import automation


def automation_state(engine: sa.Engine, settings: Settings) -> dict[str, Any]:
    with Session(engine) as session:
        found = automation.current(session, settings.model_name, settings)
    return {
        "state": found.state,
        "reason": found.reason,
        "changed_by": found.changed_by,
        "changed_at": found.changed_at.isoformat() if found.changed_at else None,
        "resumes_at": found.resumes_at.isoformat() if found.resumes_at else None,
    }


def latest_evidence(engine: sa.Engine, *, model_name: str) -> dict[str, Any] | None:
    """The newest performance check of the model: its sentence, and the test's numbers when it had one."""
    stmt = (
        select(DriftRun)
        .where(DriftRun.model_name == model_name, DriftRun.kind == "performance")
        .order_by(col(DriftRun.id).desc())
        .limit(1)
    )
    with Session(engine) as session:
        run = session.exec(stmt).first()
    if run is None:
        return None
    summary = orjson.loads(run.summary)
    evidence = summary.get("evidence") or {}
    keys = ("test", "p_val", "effect", "min_effect", "alpha", "is_decisive", "value", "baseline", "n")
    return {
        "run_id": run.id,
        "is_breach": run.is_breach,
        "message": summary.get("message", ""),
        **{k: evidence.get(k) for k in keys},
    }
