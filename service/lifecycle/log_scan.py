"""Index seeks over the prediction log: its versions and the first row at or after a time, without
scanning the log (on a log of billions of rows a GROUP BY or DISTINCT reads every row).

Both walk `ix_predictions_model_time` (model_name, model_version, created_at): one seek per version.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

import sqlalchemy as sa

from service.db.tables import Prediction

P = Prediction.__table__  # type: ignore[attr-defined]


def log_versions(conn: sa.Connection, models: Collection[str] | None = None) -> list[tuple[str, str]]:
    """Every (model, version) with rows in the log, in order: one index seek per version (a loose scan)."""
    out: list[tuple[str, str]] = []
    key = sa.tuple_(P.c.model_name, P.c.model_version)
    while True:
        stmt = sa.select(P.c.model_name, P.c.model_version).order_by(P.c.model_name, P.c.model_version)
        if out:
            stmt = stmt.where(key > sa.tuple_(sa.literal(out[-1][0]), sa.literal(out[-1][1])))
        found = conn.execute(stmt.limit(1)).first()
        if found is None:
            break
        out.append((found[0], found[1]))
    return [v for v in out if models is None or v[0] in models]


def first_time(conn: sa.Connection, model_name: str, model_version: str, at: datetime) -> datetime | None:
    """The version's first prediction time at or after `at` (one index seek)."""
    stmt = (
        sa.select(P.c.created_at)
        .where(P.c.model_name == model_name, P.c.model_version == model_version, P.c.created_at >= at)
        .order_by(P.c.created_at)
        .limit(1)
    )
    value: datetime | None = conn.execute(stmt).scalar_one_or_none()
    return as_utc(value) if value is not None else None


def model_first_time(
    conn: sa.Connection, versions: Collection[tuple[str, str]], model_name: str, at: datetime
) -> datetime | None:
    """The model's first prediction time at or after `at`, over its `versions`."""
    times = [first_time(conn, m, v, at) for m, v in versions if m == model_name]
    present = [t for t in times if t is not None]
    return min(present) if present else None


def as_utc(value: datetime | str) -> datetime:
    # min/max through a bare aggregate skip the column type on SQLite (text comes back)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


EPOCH_TIME = datetime(1970, 1, 1, tzinfo=UTC)
