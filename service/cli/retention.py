"""`driftloop retention`: one rollup + retention run now (the scheduler's `retention` job, by hand)."""

from __future__ import annotations

from typing import Annotated

import typer


def retention(
    model: Annotated[
        list[str] | None, typer.Option(help="Only this model (repeatable) [default: every model].")
    ] = None,
) -> None:
    """Roll up complete days, then delete what the retention settings allow (see docs/scaling.md)."""
    from service.db.engine import DatabaseNotMigrated, ensure_migrated, get_engine
    from service.lifecycle.retention import run_retention

    engine = get_engine()
    try:
        ensure_migrated(engine)
    except DatabaseNotMigrated as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from service.config import get_settings  # on use: `driftloop check` shares this command line

    report = run_retention(engine, get_settings(), models=model or None)
    typer.echo(
        f"rolled up {report.rollups} version-days; deleted {report.deleted} predictions "
        f"({report.labeled_deleted} labeled) in {report.batches} batches; {report.runs_marked} runs marked"
        + ("" if report.finished else "; stopped at DRIFTLOOP_RETENTION_MAX_SECONDS, run again to continue")
    )
    if report.partitions_created or report.days_dropped or report.days_replaced or report.days_deferred:
        typer.echo(
            f"day partitions: {len(report.partitions_created)} created ahead, {len(report.days_dropped)} "
            f"dropped, {len(report.days_replaced)} replaced by the rows that stay, "
            f"{len(report.days_deferred)} deferred (lock busy or labels arriving; the next run retries)"
        )
    for name, version in report.held:
        typer.echo(f"kept the labeled rows of {name} version {version} (row windows; see docs/scaling.md)")
