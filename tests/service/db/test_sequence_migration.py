"""Migrations 0004 and 0010 number the predictions and labels stored before them in the order windows read
them then."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

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


def test_existing_labels_are_numbered_in_arrival_order_and_new_labels_follow(fresh_url: str) -> None:
    """Migration 0010: labels stored before it get `feedback.seq` in (received_at, prediction_id) order, the
    order performance windows used then; a label stored after it, or corrected, takes the next number."""
    command.upgrade(alembic_config(fresh_url), "0009")
    engine = make_engine(fresh_url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [f"{k:08d}-0000-7000-8000-000000000000" for k in range(1, 6)]
    arrived = {ids[0]: 3, ids[1]: 1, ids[2]: 2, ids[3]: 2, ids[4]: 0}  # two tied on time (then by id)
    with engine.begin() as conn:
        for pid in ids:
            conn.execute(
                sa.text(
                    "INSERT INTO predictions (id, seq, created_at, model_name, model_version, features, "
                    "output, latency_ms, endpoint) VALUES (:id, :seq, :t, 'm', '1', '{}', '0', 0, 'predict')"
                ),
                {"id": pid, "seq": ids.index(pid) + 1, "t": t0},
            )
        for pid in ids[:4]:
            conn.execute(
                sa.text("INSERT INTO feedback (prediction_id, label, received_at) VALUES (:p, '1', :t)"),
                {"p": pid, "t": t0 + timedelta(seconds=arrived[pid])},
            )
    engine.dispose()
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    with Session(engine) as session:
        store.record_feedback(session, items=[(ids[4], 1), (ids[1], 0)])  # a new label, a correction
        session.commit()
    with engine.connect() as conn:
        got = conn.execute(sa.text("SELECT prediction_id, seq FROM feedback ORDER BY seq")).all()
    engine.dispose()
    assert [pid for pid, _ in got] == [ids[2], ids[3], ids[0], ids[4], ids[1]]
    seqs = [seq for _, seq in got]
    assert seqs[:3] == [2, 3, 4] and seqs[3] > 4 and seqs[4] > seqs[3]
