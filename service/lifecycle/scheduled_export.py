"""The scheduled daily export: each complete UTC day of each model, once, to a folder or an fsspec URL.

Layout (Hive-style, readable as one dataset per model with `partitioning="hive"`):
`<export_url>/<model>/date=YYYY-MM-DD/predictions.parquet`, the columns of `driftloop export`.

A scheduler job under the database lease. Per model, the days are exported in order, starting after the
newest one `day_exports` records as done; a day is written to a hidden temporary name and renamed into
place only when complete (a crash leaves at most a `.predictions.parquet.*.tmp` that readers skip and the
next attempt removes), then recorded as done. A failed day (receiver down, unwritable target) is logged,
counted in `driftloop_export_failures_total` and recorded as failed; the model's later days wait and the
next run retries it. A crash between the rename and the record re-exports the day over the same name.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from service.config import Settings
from service.db.tables import utcnow
from service.lifecycle.export_state import day_start, next_day, record_done, record_failure
from service.lifecycle.log_scan import log_versions
from service.metrics import EXPORT_FAILURES, EXPORTED_ROWS, NO_MODEL

log = logging.getLogger("driftloop.export")
FILE_NAME = "predictions.parquet"
CHUNK_ROWS = 20_000  # rows read and written per chunk (bounds memory)


@dataclass
class ScheduledExportReport:
    exported: list[tuple[str, date, int]] = field(default_factory=list)  # model, day, rows
    failed: list[tuple[str, date, str]] = field(default_factory=list)  # model, day, error
    finished: bool = True  # False: stopped by the time budget, the next run continues


def day_folder(root: str, model_name: str, day: date) -> str:
    # a model name may hold "/" or spaces: one path segment whatever it is
    return f"{root.rstrip('/')}/{quote(model_name, safe='')}/date={day.isoformat()}"


def _is_local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _remove_leftovers(fs: Any, folder: str) -> None:
    """Temporary files of an attempt that crashed (never a complete-looking name)."""
    for path in fs.glob(f"{folder}/.{FILE_NAME}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path)


def export_day(engine: sa.Engine, fs: Any, root: str, model_name: str, day: date) -> tuple[int, str]:
    """Write one model-day to its place under `root`; returns (rows, location)."""
    from service.lifecycle.export import ExportRequest, export_parquet

    request = ExportRequest(model_name, since=day_start(day), until=day_start(day + timedelta(days=1)))
    folder = day_folder(root, model_name, day)
    location = f"{folder}/{FILE_NAME}"
    fs.makedirs(folder, exist_ok=True)
    _remove_leftovers(fs, folder)
    if _is_local(fs):  # export_parquet writes a hidden temporary file next to the target and renames it
        return export_parquet(
            engine, request, Path(location), chunk_rows=CHUNK_ROWS, check=False
        ).rows, location
    with tempfile.TemporaryDirectory(prefix="driftloop-export-") as staging:
        local = Path(staging) / FILE_NAME
        rows = export_parquet(engine, request, local, chunk_rows=CHUNK_ROWS, check=False).rows
        tmp = f"{folder}/.{FILE_NAME}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            fs.put_file(str(local), tmp)
            fs.mv(tmp, location)  # an object store's copy appears whole, or not at all
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm(tmp)
            raise
    return rows, location


def _fail(engine: sa.Engine, report: ScheduledExportReport, model: str, day: date, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"
    log.warning("export of %s %s failed (retried next run): %s", model, day, error)
    EXPORT_FAILURES.labels(model=model).inc()
    report.failed.append((model, day, error))
    with engine.begin() as conn:
        record_failure(conn, model, day, error, utcnow())


def run_scheduled_export(
    engine: sa.Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    models: Collection[str] | None = None,
) -> ScheduledExportReport:
    """The scheduler job: the complete days not exported yet of every model (of `models`), oldest first,
    within `export_max_seconds` (checked after each day, so every run makes progress)."""
    report = ScheduledExportReport()
    if not settings.export_url:
        return report
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(settings.export_url)
    except Exception as exc:  # unknown protocol, its package not installed: fix the setting
        log.error("export_url %r cannot be opened: %s", settings.export_url, exc)
        EXPORT_FAILURES.labels(model=NO_MODEL).inc()
        return report
    cutoff = ((now or utcnow()) - timedelta(minutes=settings.export_delay_minutes)).date()
    started = time.monotonic()
    with engine.connect() as conn:
        versions = log_versions(conn, models)
    for model in dict.fromkeys(m for m, _ in versions):
        while True:
            with engine.connect() as conn:
                day = next_day(conn, versions, model, cutoff)
            if day is None:
                break
            try:
                rows, location = export_day(engine, fs, root, model, day)
                location = fs.unstrip_protocol(location)
            except Exception as exc:
                _fail(engine, report, model, day, exc)
                break  # this model's later days wait for this one; other models go on
            with engine.begin() as conn:
                record_done(conn, model, day, rows, location, utcnow())
            EXPORTED_ROWS.labels(model=model).inc(rows)
            report.exported.append((model, day, rows))
            log.info("exported %s %s: %d rows to %s", model, day, rows, location)
            if time.monotonic() - started > settings.export_max_seconds:
                report.finished = False
                return report
    return report
