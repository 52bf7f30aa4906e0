"""`driftloop export OUT.parquet`: a model's logged predictions (and labels) as one Parquet file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

# `driftloop check` shares this command line: the database and Arrow stack load only when exporting


def parse_time(value: str | None, option: str) -> datetime | None:
    """ISO 8601 date or date-time; a value without a zone is UTC."""
    from service.lifecycle.export import ExportError

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ExportError(
            f"{option} {value!r} is not an ISO 8601 date or date-time (e.g. 2026-12-01T00:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def export(
    out: Annotated[
        Path, typer.Argument(help="Parquet file to write (replaced only when the export is complete).")
    ],
    since: Annotated[
        str | None, typer.Option(help="First prediction time included (ISO 8601; UTC if no zone).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Prediction time where the export stops (excluded).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name [default: DRIFTLOOP_MODEL_NAME].")] = None,
    labeled_only: Annotated[bool, typer.Option(help="Only predictions that have a label.")] = False,
    chunk_rows: Annotated[
        int | None,
        typer.Option(min=100, help="Rows read and written per chunk (bounds memory) [default: 20000]."),
    ] = None,
) -> None:
    """Export logged predictions: features as typed columns, output, probabilities, version, time, label."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from service.db.engine import DatabaseNotMigrated, ensure_migrated, get_engine
    from service.lifecycle.export import (
        CHUNK_ROWS,
        ExportError,
        ExportRequest,
        check_request,
        claim_temp,
        count_rows,
        export_parquet,
    )

    chunk_rows = chunk_rows or CHUNK_ROWS

    from service.config import get_settings  # on use: `driftloop check` shares this command line

    settings = get_settings()
    try:
        request = ExportRequest(
            model_name=model or settings.model_name,
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until"),
            labeled_only=labeled_only,
        )
    except ExportError as exc:
        _fail(str(exc))
    engine = get_engine()
    try:
        ensure_migrated(engine)
        with engine.connect() as conn:
            # bad input is refused before the count (which reads the whole range)
            check_request(conn, request)
            claim_temp(out).unlink()
            total = count_rows(conn, request)
    except (DatabaseNotMigrated, ExportError) as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(f"database unreachable: {exc}", 1)
    console = Console(stderr=True)
    columns = (
        TextColumn("exporting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("export", total=total)
        try:
            result = export_parquet(
                engine,
                request,
                out,
                chunk_rows=chunk_rows,
                on_rows=lambda n: progress.advance(task, n),
                check=False,
            )
        except ExportError as exc:
            progress.stop()
            _fail(str(exc))
    typer.echo(f"wrote {result.rows} rows of {request.model_name} to {out} ({len(result.columns)} columns)")
