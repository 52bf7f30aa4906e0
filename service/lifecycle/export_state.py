"""What the scheduled export has done, per model and UTC day (`day_exports`), and what retention must
keep because of it. Database only: retention imports this without the Arrow stack."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from service.config import Settings
from service.db.export_tables import DayExport
from service.lifecycle.log_scan import model_first_time

D = DayExport.__table__  # type: ignore[attr-defined]
DONE, FAILED = "done", "failed"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def last_exported_day(conn: sa.Connection, model_name: str) -> date | None:
    stmt = sa.select(sa.func.max(D.c.day)).where(D.c.model_name == model_name, D.c.status == DONE)
    value = conn.execute(stmt).scalar_one_or_none()
    if isinstance(value, str):  # a bare aggregate skips the column type on SQLite
        value = date.fromisoformat(value)
    return value


def exported_through(conn: sa.Connection, model_name: str) -> datetime | None:
    """The end of the model's newest exported day: every row created before it is in the export target
    (days are exported in order; a day without rows has no file). None: nothing exported yet."""
    last = last_exported_day(conn, model_name)
    return day_start(last + timedelta(days=1)) if last is not None else None


def export_floor(conn: sa.Connection, settings: Settings, model_name: str) -> datetime | None:
    """Retention keeps the model's rows created at or after this time (None: no export configured, no
    constraint): the rows not yet exported."""
    if not settings.export_url:
        return None
    return exported_through(conn, model_name) or EPOCH


def next_day(
    conn: sa.Connection, versions: Collection[tuple[str, str]], model_name: str, cutoff: date
) -> date | None:
    """The model's first day with rows after its last exported one, if it is before `cutoff`."""
    last = last_exported_day(conn, model_name)
    start = day_start(last + timedelta(days=1)) if last is not None else EPOCH
    first = model_first_time(conn, versions, model_name, start)
    if first is None or first.date() >= cutoff:
        return None
    return first.date()


def _upsert(conn: sa.Connection, values: dict[str, Any], update: dict[str, Any]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(D).values(**values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["model_name", "day"], set_=update))


def record_done(
    conn: sa.Connection, model_name: str, day: date, rows: int, location: str, now: datetime
) -> None:
    values = {"status": DONE, "rows": rows, "location": location, "last_error": "", "updated_at": now}
    _upsert(
        conn,
        {"model_name": model_name, "day": day, "attempts": 1, **values},
        {**values, "attempts": D.c.attempts + 1},
    )


def record_failure(conn: sa.Connection, model_name: str, day: date, error: str, now: datetime) -> None:
    """A failed attempt (never over a `done` day: a second scheduler's late failure changes nothing)."""
    values = {"status": FAILED, "last_error": error[:2000], "updated_at": now}
    done = conn.execute(
        sa.select(D.c.status).where(D.c.model_name == model_name, D.c.day == day, D.c.status == DONE)
    ).first()
    if done is None:
        _upsert(
            conn,
            {"model_name": model_name, "day": day, "rows": 0, "location": "", "attempts": 1, **values},
            {**values, "attempts": D.c.attempts + 1},
        )
