"""Migration 0004 numbers the predictions logged before it in the order windows read them then."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alembic import command
from service.db.engine import alembic_config, make_engine, upgrade
from service.serving import store
from tests.conftest import _create_pg_database, _drop_pg_database, pg_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    request.getfixturevalue("pg_database")  # the one PostgreSQL policy (skip, or fail when required)
    name = _create_pg_database()
    yield pg_url(name)
    _drop_pg_database(name)


def test_existing_rows_are_numbered_in_time_order_and_new_rows_follow(fresh_url: str) -> None:
    command.upgrade(alembic_config(fresh_url), "0003")
    engine = make_engine(fresh_url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    # logged out of time order, two rows tied on time (then ordered by id)
    old = [(f"{k:08d}-0000-7000-8000-000000000000", t0 + timedelta(seconds=s)) for k, s in
           [(5, 3), (1, 1), (4, 2), (2, 2), (3, 0)]]  # fmt: skip
    with engine.begin() as conn:
        for pid, created in old:
            conn.execute(
                sa.text(
                    "INSERT INTO predictions (id, created_at, model_name, model_version, features, output, "
                    "latency_ms, endpoint) VALUES (:id, :t, 'm', '1', '{}', '0', 0, 'predict')"
                ),
                {"id": pid, "t": created},
            )
    engine.dispose()
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    new_id = str(uuid.uuid4())
    row = {
        "id": new_id,
        "created_at": t0,
        "model_name": "m",
        "model_version": "1",
        "features": "{}",
        "output": "0",
    }
    with engine.begin() as conn:
        store.insert_predictions(conn, rows=[row])
        got = conn.execute(sa.text("SELECT id, seq FROM predictions ORDER BY seq")).all()
    engine.dispose()
    expected = [pid for pid, _ in sorted(old, key=lambda p: (p[1], p[0]))]
    assert [pid for pid, _ in got] == [*expected, new_id]
    seqs = [seq for _, seq in got]
    assert seqs[:5] == [1, 2, 3, 4, 5] and seqs[5] > 5  # new rows follow (a gap is allowed)
