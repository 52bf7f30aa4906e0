"""Alembic environment: reads the URL from driftloop's settings; keeps its own version table."""

from __future__ import annotations

from sqlmodel import SQLModel

import service.db.tables  # noqa: F401  (registers the tables)
from alembic import context
from service.config import get_settings
from service.db.engine import VERSION_TABLE, make_engine
from service.lifecycle.partitions import is_partition

config = context.config
target_metadata = SQLModel.metadata


def _include_name(name: str | None, kind: str, _parent: object) -> bool:
    # PostgreSQL's day partitions of `predictions` are made at run time (service/lifecycle/partitions.py)
    return not (kind == "table" and name is not None and is_partition(name))


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
        compare_type=True,
        include_name=_include_name,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=VERSION_TABLE,
            compare_type=True,
            include_name=_include_name,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
