"""Migration 0011 on a log with rows: PostgreSQL's table becomes day partitions with jsonb features, both
backends lose the feedback foreign key; every row, label and `seq` survives the upgrade and the downgrade."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from alembic import command
from service.codec import dumps
from service.db.engine import alembic_config, make_engine
from service.lifecycle import partitions
from service.serving import store
from tests.conftest import _create_pg_database, _drop_pg_database, pg_url

BEFORE = "0010"
T0 = datetime(2026, 10, 30, 22, tzinfo=UTC)
FEATURES = [
    {"x": 1.5, "n": 3, "city": "Zürich", "flag": True, "missing": None},
    {"x": -0.25, "n": 0, "city": "", "flag": False, "missing": None, "big": 1e300, "tiny": 1e-300},
    {"x": float("nan"), "inf": float("inf"), "text": 'quote " and \\ backslash'},  # the codec writes null
    {},
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    request.getfixturevalue("pg_database")  # the one PostgreSQL policy (skip, or fail when required)
    name = _create_pg_database()
    yield pg_url(name)
    _drop_pg_database(name)


def _rows() -> list[dict[str, object]]:
    # rows on three UTC days, logged out of time order
    return [
        {
            "id": f"{k:08d}-0000-7000-8000-000000000000",
            "created_at": T0 + timedelta(hours=h),
            "model_name": "m",
            "model_version": "1",
            "features": dumps(FEATURES[k % len(FEATURES)]),
            "output": dumps(k % 2),
            "probabilities": None,
            "latency_ms": 1.0,
            "endpoint": "predict",
        }
        for k, h in enumerate([30, 1, 2, 0, 27, 50])
    ]


def _log(engine: sa.Engine) -> list[tuple[str, int, object, datetime]]:
    with engine.connect() as conn:
        got = conn.execute(
            sa.text("SELECT id, seq, features, created_at FROM predictions ORDER BY seq")
        ).all()
    return [(r[0], r[1], orjson.loads(r[2]), r[3]) for r in got]


def _label_sql(conn: sa.Connection) -> str:
    """A raw label insert (labels are numbered in commit order, like predictions, where `seq` exists)."""
    if "seq" in {c["name"] for c in sa.inspect(conn).get_columns("feedback")}:
        return (
            "INSERT INTO feedback (prediction_id, label, received_at, seq) "
            "SELECT :p, '1', :t, coalesce(max(seq), 0) + 1 FROM feedback"
        )
    return "INSERT INTO feedback (prediction_id, label, received_at) VALUES (:p, '1', :t)"


def _insert_label(engine: sa.Engine, pid: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(_label_sql(conn)), {"p": pid, "t": T0})


def test_upgrade_and_downgrade_keep_every_row_label_and_seq(fresh_url: str) -> None:
    cfg = alembic_config(fresh_url)
    command.upgrade(cfg, BEFORE)
    engine = make_engine(fresh_url)
    rows = _rows()
    with engine.begin() as conn:
        store.insert_predictions(conn, rows=rows)
    _insert_label(engine, str(rows[1]["id"]))
    before = _log(engine)
    engine.dispose()

    command.upgrade(cfg, "head")
    engine = make_engine(fresh_url)
    after = _log(engine)
    assert [(pid, seq, feats) for pid, seq, feats, _ in after] == [(p, s, f) for p, s, f, _ in before]
    assert after[0][2] == {"x": 1.5, "n": 3, "city": "Zürich", "flag": True, "missing": None}
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            assert partitions.is_partitioned(conn)
            kind = conn.execute(
                sa.text("SELECT data_type FROM information_schema.columns "
                        "WHERE table_name = 'predictions' AND column_name = 'features'")
            ).scalar_one()  # fmt: skip
            assert kind == "jsonb"
            days = partitions.day_partitions(conn)
            for pid, _seq, _f, created in after:  # every old row sits in its day's partition
                name = days[created.astimezone(UTC).date()]
                found = conn.execute(sa.text(f'SELECT count(*) FROM "{name}" WHERE id = :p'), {"p": pid})
                assert found.scalar_one() == 1
            today = datetime.now(UTC).date()
            assert {today + timedelta(days=k) for k in range(partitions.AHEAD_DAYS + 1)} <= set(days)
    # new rows follow the old sequence; a label needs no foreign key now (the store checks existence)
    new = {**rows[0], "id": str(uuid.uuid4()), "created_at": datetime.now(UTC)}
    with engine.begin() as conn:
        store.insert_predictions(conn, rows=[new])
    assert _log(engine)[-1][:2] == (new["id"], len(rows) + 1)
    _insert_label(engine, "not-a-prediction")
    engine.dispose()

    command.downgrade(cfg, BEFORE)
    engine = make_engine(fresh_url)
    back = _log(engine)
    assert [(p, s, f) for p, s, f, _ in back] == [(p, s, f) for p, s, f, _ in after] + [
        (new["id"], len(rows) + 1, orjson.loads(str(new["features"])))
    ]
    with engine.connect() as conn:
        labels = conn.execute(sa.text("SELECT prediction_id FROM feedback")).scalars().all()
        assert not partitions.is_partitioned(conn)
    assert labels == [rows[1]["id"]]  # the orphan label could not stay under the restored key
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.text(_label_sql(conn)), {"p": "nope", "t": T0})
    newer = {**rows[0], "id": str(uuid.uuid4()), "created_at": datetime.now(UTC)}
    with engine.begin() as conn:
        store.insert_predictions(conn, rows=[newer])
    assert _log(engine)[-1][:2] == (newer["id"], len(rows) + 2)
    engine.dispose()
