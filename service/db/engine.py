"""Engine, sessions and the migration check."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from service.config import get_settings
from service.db.jsonb import jsonb_as_text

VERSION_TABLE = "driftloop_alembic_version"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class DatabaseNotMigrated(RuntimeError):
    """The database schema is missing or older than this code."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (checks, reports) run beside the prediction writer; FULL keeps commits durable.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    connect_args = kwargs.pop("connect_args", {"connect_timeout": 5})
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    sa.event.listen(engine, "connect", jsonb_as_text)  # features are jsonb, read as text (db/jsonb.py)
    return engine


@lru_cache
def get_engine() -> sa.Engine:
    return make_engine(get_settings().resolved_database_url)


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(url: str | None = None) -> None:
    from alembic import command

    command.upgrade(alembic_config(url or get_settings().resolved_database_url), "head")


def ensure_migrated(engine: sa.Engine) -> None:
    """Raise `DatabaseNotMigrated` with the command to run if the schema is not at head."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
    if current != head:
        raise DatabaseNotMigrated(
            f"database {engine.url.render_as_string(hide_password=True)} is at revision {current or 'none'}, "
            f"code needs {head}: run `driftloop db upgrade`"
        )
