"""The `driftloop` command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from service.cli.check import check
from service.cli.export import export
from service.cli.retention import retention

if TYPE_CHECKING:
    from retrain.registry import Registry
    from service.config import Settings

app = typer.Typer(help="driftloop: serve, watch, alert and retrain an MLflow model.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
reference_app = typer.Typer(help="Drift reference data of a model version.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(reference_app, name="reference")
app.command("check")(check)
app.command("export")(export)
app.command("retention")(retention)


def get_settings() -> Settings:
    """The settings, loaded on use: `driftloop check` needs none (pydantic-settings ~0.1 s of import).
    A bad value is exit 2 naming its variable, not a traceback."""
    from pydantic import ValidationError

    from service.config import get_settings as cached

    try:
        return cached()
    except ValidationError as exc:
        _fail("; ".join(
            f"DRIFTLOOP_{str(e['loc'][0]).upper()}={e['input']!r} is invalid: {e['msg']}"
            for e in exc.errors()
        ))  # fmt: skip


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate driftloop's tables (its own version table: driftloop_alembic_version)."""
    from service.db.engine import upgrade

    url = get_settings().resolved_database_url
    try:
        upgrade(url)
    except Exception as exc:
        _fail(f"migration of {url} failed: {exc}", 1)
    typer.echo("database is at the latest revision")


def _registry() -> Registry:
    from service.runtime import make_registry

    return make_registry(get_settings())


def _check_models_file() -> None:
    """A bad DRIFTLOOP_MODELS / models file: exit 2 naming the model and key, before any work."""
    from service.model_settings import ModelsFileError, load_models

    try:
        load_models(get_settings())
    except ModelsFileError as exc:
        _fail(str(exc))


def _check_metric_setting() -> None:
    """A watched metric that does not fit the champion's task: exit 2 naming the setting, before serving."""
    from service.monitor.tasks import metric_setting_error

    error = metric_setting_error(get_settings(), _registry())
    if error:
        _fail(error)


@app.command()
def bootstrap(
    if_missing: Annotated[
        bool, typer.Option(help="Do nothing when the model already has a champion.")
    ] = False,
    rows: Annotated[int, typer.Option(min=100, help="Training rows from the built-in generator.")] = 5000,
) -> None:
    """Train the built-in demo model, log it to MLflow with its reference data and make it champion."""
    from retrain.bootstrap import bootstrap_demo
    from service.db.engine import ensure_migrated, get_engine
    from service.monitor.references import performance_from_metrics, store_reference

    settings = get_settings()
    registry = _registry()
    if if_missing and registry.champion(settings.model_name) is not None:
        typer.echo(f"'{settings.model_name}' already has a champion; nothing to do")
        return
    info = bootstrap_demo(registry, settings.model_name, n_rows=rows)
    engine = get_engine()
    ensure_migrated(engine)
    data = registry.load_reference(settings.model_name, info.version)
    if data is not None:
        metrics = registry.run_metrics(info.run_id) if info.run_id else {}
        store_reference(
            engine, model_name=settings.model_name, model_version=info.version, data=data, source="bootstrap",
            performance=performance_from_metrics(metrics), task="classification",  # the demo's classifier
            features=[c.name for c in registry.input_schema(settings.model_name, info.version)],
        )  # fmt: skip
    typer.echo(f"registered {settings.model_name} version {info.version} as champion")


def read_table(path: Path) -> object:
    import pandas as pd

    if not path.exists():
        _fail(f"file not found: {path}")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as exc:
        _fail(f"cannot read {path}: {exc}")
    raise AssertionError("unreachable")


@reference_app.command("set")
def reference_set(
    model_version: Annotated[str, typer.Argument(help="Registered version of DRIFTLOOP_MODEL_NAME.")],
    file: Annotated[Path, typer.Argument(help="CSV or Parquet with the model's training data.")],
    target: Annotated[
        str | None,
        typer.Option(help="Target (label) column [default: DRIFTLOOP_TARGET_COLUMN, else target/label/...]."),
    ] = None,
) -> None:
    """Attach reference (training) data to a model version: logged to MLflow and profiled for monitoring.

    Only the model signature's input columns are profiled; the target and any time or id column are kept
    out of the profile. The model's task (classification / regression) is read from the model."""
    import pandas as pd

    from service.db.engine import ensure_migrated, get_engine
    from service.monitor.references import store_reference, target_column
    from service.monitor.tasks import model_task

    settings = get_settings()
    data = read_table(file)
    assert isinstance(data, pd.DataFrame)
    registry = _registry()
    try:
        columns = [c.name for c in registry.input_schema(settings.model_name, model_version)]
    except Exception as exc:
        _fail(f"model {settings.model_name} version {model_version}: {exc}")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        _fail(f"{file} lacks the model's input columns: {', '.join(missing)}")
    try:
        label = target_column(data, target or settings.target_column or None, columns)
    except ValueError as exc:
        named = "--target" if target else "DRIFTLOOP_TARGET_COLUMN"
        _fail(str(exc).replace("DRIFTLOOP_TARGET_COLUMN", named))
    task = model_task(registry, settings.model_name, model_version)
    registry.log_reference(settings.model_name, model_version, data)
    engine = get_engine()
    ensure_migrated(engine)
    store_reference(
        engine,
        model_name=settings.model_name,
        model_version=model_version,
        data=data,
        features=columns,
        source=f"file:{file.name}",
        target=label,
        task=task,
    )
    typer.echo(
        f"reference of {settings.model_name} version {model_version} set from {file} ({len(data)} rows; "
        f"{len(columns)} features profiled, target {label or 'none'}, task {task or 'unknown'})"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind [default: DRIFTLOOP_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind [default: DRIFTLOOP_PORT].")] = None,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve the champion (and, unless DRIFTLOOP_EMBEDDED_SCHEDULER=false, run the scheduler in-process)."""
    import uvicorn

    from service.db.engine import DatabaseNotMigrated, ensure_migrated, get_engine

    _check_models_file()
    _check_metric_setting()
    try:
        ensure_migrated(get_engine())
    except DatabaseNotMigrated as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(f"database unreachable: {exc}", 1)
    settings = get_settings()
    if host is not None or port is not None:
        # The app (and its embedded webhook dispatcher) must know where it listens: never a target.
        os.environ["DRIFTLOOP_HOST"] = host or settings.host
        os.environ["DRIFTLOOP_PORT"] = str(port or settings.port)
        from service.config import get_settings as cached

        cached.cache_clear()
    uvicorn.run(
        "service.app:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


@app.command("scheduler")
def scheduler_command() -> None:
    """Run the scheduled jobs (drift and performance checks, webhooks, retrains) until stopped."""
    import logging

    from service.db.engine import DatabaseNotMigrated
    from service.scheduler import run_scheduler_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _check_models_file()
    _check_metric_setting()
    try:
        run_scheduler_forever(get_settings())
    except DatabaseNotMigrated as exc:
        _fail(str(exc))


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Scratch folder (wiped at start unless --keep).")] = Path(
        "data/demo"
    ),
    port: Annotated[int, typer.Option(help="Port of the demo service.")] = 8000,
    rows: Annotated[int, typer.Option(min=1500, help="Generated rows replayed before the trickle.")] = 3000,
    keep: Annotated[bool, typer.Option(help="Keep the data folder of a previous demo.")] = False,
    exit_when_done: Annotated[bool, typer.Option(help="Stop the service once the loop has closed.")] = False,
) -> None:
    """Watch the whole loop in the terminal: traffic, drift, episode, webhook, retrain, promotion."""
    from service.cli.demo import DemoOptions, run_demo

    options = DemoOptions(data_dir=data_dir, port=port, rows=rows, keep=keep, exit_when_done=exit_when_done)
    try:
        code = run_demo(options)
    except KeyboardInterrupt:
        code = 130
    raise typer.Exit(code)


if __name__ == "__main__":
    app(prog_name="driftloop")
