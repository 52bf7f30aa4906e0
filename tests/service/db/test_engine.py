"""The schema the migrations build is the schema the code declares, and it holds its own invariants."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

from service.db.engine import VERSION_TABLE, make_engine
from service.db.tables import DriftRun, Episode
from service.lifecycle.partitions import is_partition


def test_migrations_build_exactly_the_declared_schema(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, kind, _parent: (
                    not (kind == "table" and (name == VERSION_TABLE or is_partition(name)))
                ),
            },
        )
        diff = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def _run(session: Session, model: str) -> int:
    now = datetime.now(UTC)
    run = DriftRun(
        window_key=f"{model}:1:drift:{now.timestamp()}",
        kind="drift",
        model_name=model,
        model_version="1",
        window_start=now,
        window_end=now,
        n_rows=500,
        status="drift",
        summary="",
        started_at=now,
        finished_at=now,
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    return run.id


def _episode(model: str, run_id: int, kind: str = "drift", status: str = "open") -> Episode:
    return Episode(
        model_name=model,
        kind=kind,
        status=status,
        opened_at=datetime.now(UTC),
        first_run_id=run_id,
        last_run_id=run_id,
    )


def test_at_most_one_open_episode_per_model_and_kind(database_url: str) -> None:
    model = f"db-test-{uuid.uuid4().hex[:8]}"  # the PostgreSQL database is shared by the session's tests
    engine = make_engine(database_url)
    with Session(engine) as session:
        run_id = _run(session, model)
        # closed episodes of the same kind and an open one of another kind do not conflict
        session.add_all([_episode(model, run_id, status="closed"), _episode(model, run_id, status="closed")])
        session.add_all([_episode(model, run_id), _episode(model, run_id, kind="performance")])
        session.add(_episode(f"{model}-other", run_id))  # another model's open drift episode
        session.commit()

        session.add(_episode(model, run_id))
        with pytest.raises(sa.exc.IntegrityError):
            session.commit()
        session.rollback()
        opened = session.exec(
            select(Episode).where(Episode.model_name == model, Episode.status == "open")
        ).all()
    engine.dispose()
    assert sorted(e.kind for e in opened) == ["drift", "performance"]
