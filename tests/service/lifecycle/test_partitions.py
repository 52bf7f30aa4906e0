"""PostgreSQL's day partitions: created ahead (taking the default partition's rows of the day), removed
whole by retention when all their rows go, replaced by the rows that stay when most go, and kept (the
delete batches trim them) when few go; a lock retention cannot get defers the day, never blocks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from service.config import Settings
from service.db.engine import make_engine
from service.db.tables import RetrainJob
from service.lifecycle import day_retention, partitions
from service.lifecycle.day_retention import candidates, spans
from service.lifecycle.retention import RetentionReport, plan, run_retention
from service.retraining.training_data import labeled_rows
from service.serving.store import record_feedback
from tests.support.prediction_log import FB, P, insert, prediction_row, unique_model

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(pg_database: str) -> Iterator[sa.Engine]:
    eng = make_engine(pg_database)
    yield eng
    eng.dispose()


def settings(engine: sa.Engine, **overrides: Any) -> Settings:
    url = engine.url.render_as_string(hide_password=False)
    values: dict[str, Any] = {
        "database_url": url, "retention_pause_ms": 0, "retention_rest_ratio": 0, "window_kind": "time",
    }  # fmt: skip
    return Settings(**{**values, **overrides})


def day_rows(model: str, day: date, n: int) -> list[dict[str, Any]]:
    start = partitions.bounds_of(day)[0]
    return [
        prediction_row(model, start + timedelta(minutes=10 * i), {"x": float(i)}, output=i % 2)
        for i in range(n)
    ]


def ids(engine: sa.Engine, model: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(P.c.id).where(P.c.model_name == model)).scalars())


def attached(engine: sa.Engine) -> dict[date, str]:
    with engine.connect() as conn:
        return partitions.day_partitions(conn)


def ensure_days(engine: sa.Engine, *days: date) -> None:
    have = attached(engine)
    for day in days:
        if day not in have:
            with engine.begin() as conn:
                partitions.create_day(conn, day)


def rows_in(engine: sa.Engine, table: str, model: str) -> int:
    with engine.connect() as conn:
        stmt = sa.text(f'SELECT count(*) FROM "{table}" WHERE model_name = :m')
        return int(conn.execute(stmt, {"m": model}).scalar_one())


def test_days_ahead_are_created_once_and_take_the_default_partitions_rows(engine: sa.Engine) -> None:
    model = unique_model("part")
    now = datetime(2031, 3, 4, 15, tzinfo=UTC)  # days no other test uses
    early = day_rows(model, date(2031, 3, 6), 3)
    insert(engine, early)  # before its day's partition exists: in the default partition
    assert rows_in(engine, partitions.DEFAULT, model) == 3

    created = partitions.ensure_partitions(engine, now)

    days = {date(2031, 3, 4) + timedelta(days=k) for k in range(partitions.AHEAD_DAYS + 1)}
    assert days <= set(created) and days <= set(attached(engine))
    assert rows_in(engine, partitions.DEFAULT, model) == 0
    assert rows_in(engine, partitions.name_of(date(2031, 3, 6)), model) == 3
    assert ids(engine, model) == {r["id"] for r in early}
    assert partitions.ensure_partitions(engine, now) == []  # idempotent
    later = day_rows(model, date(2031, 3, 7), 2)
    insert(engine, later)  # routed to its partition
    assert rows_in(engine, partitions.name_of(date(2031, 3, 7)), model) == 2


def test_a_day_whose_rows_all_go_is_dropped_whole(engine: sa.Engine) -> None:
    model, other = unique_model("part"), unique_model("part")
    now = datetime(2030, 6, 15, 12, tzinfo=UTC)
    old_day, young_day = date(2030, 5, 1), date(2030, 6, 14)
    ensure_days(engine, old_day, young_day)
    insert(engine, day_rows(model, old_day, 12) + day_rows(model, young_day, 3))
    report = run_retention(engine, settings(engine), now=now, models=[model])
    assert report.days_dropped == [old_day] and report.batches == 0
    assert report.deleted == 12 and report.per_version == {(model, "1"): 12}
    assert old_day not in attached(engine) and young_day in attached(engine)
    assert len(ids(engine, model)) == 3

    # a day that also holds rows of a model this run does not cover is replaced, never dropped
    day = date(2030, 5, 2)
    ensure_days(engine, day)
    insert(engine, day_rows(model, day, 5) + day_rows(other, day, 2))
    report = run_retention(engine, settings(engine), now=now, models=[model])
    assert report.days_replaced == [day] and rows_in(engine, partitions.name_of(day), other) == 2
    assert rows_in(engine, partitions.name_of(day), model) == 0


@pytest.mark.parametrize("chunk", [50_000, 3])  # one span for the day, or four read step by step
def test_labeled_rows_stay_in_a_replaced_day_and_are_read_as_before(
    engine: sa.Engine, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(day_retention, "CHUNK_ROWS", chunk)
    model = unique_model("part")
    now = datetime(2030, 7, 20, 12, tzinfo=UTC)
    day = date(2030, 6, 1 if chunk > 3 else 2)  # past 30 days, within 180 (a day per case)
    ensure_days(engine, day, date(2030, 7, 19))
    rows = day_rows(model, day, 10)
    labeled = rows[:3]
    insert(engine, rows + day_rows(model, date(2030, 7, 19), 1),
           {r["id"]: (1, r["created_at"] + timedelta(hours=1)) for r in labeled})  # fmt: skip

    report = run_retention(engine, settings(engine), now=now, models=[model])

    assert report.days_replaced == [day] and report.deleted == 7 and report.labeled_deleted == 0
    assert rows_in(engine, partitions.name_of(day), model) == 3  # the replacement holds the labeled rows
    training = labeled_rows(engine, model_name=model, limit=100)
    assert len(training) == 3 and list(training["x"]) == [0.0, 1.0, 2.0]
    with Session(engine) as session:  # a label update still finds its prediction
        outcomes = record_feedback(session, items=[(labeled[0]["id"], 0), (rows[5]["id"], 1)])
        session.commit()
    assert [o.status for o in outcomes] == ["updated", "unknown_prediction"]
    # the next runs do not re-read the kept day until its labeled rows may go
    s = settings(engine)
    assert day not in [
        d for d, _ in candidates(engine, plan(engine, s, now, [(model, "1")], RetentionReport()))
    ]
    # 180 days on, the labeled rows go too: the whole day is dropped with its labels
    later = run_retention(engine, settings(engine), now=now + timedelta(days=181), models=[model])
    assert day in later.days_dropped and later.labeled_deleted == 3
    with engine.connect() as conn:
        left = conn.execute(
            sa.select(FB.c.prediction_id).where(FB.c.prediction_id.in_([r["id"] for r in labeled]))
        )
        assert left.all() == []


def test_a_day_where_few_rows_go_is_left_to_the_batches(engine: sa.Engine) -> None:
    model = unique_model("part")
    now = datetime(2030, 9, 20, 12, tzinfo=UTC)
    day = date(2030, 8, 1)
    ensure_days(engine, day)
    rows = day_rows(model, day, 10)
    insert(
        engine,
        rows + day_rows(model, date(2030, 9, 19), 1),
        {r["id"]: (1, r["created_at"]) for r in rows[:8]},
    )
    report = run_retention(engine, settings(engine), now=now, models=[model])
    assert report.days_replaced == report.days_dropped == [] and report.batches == 1 and report.deleted == 2
    assert day in attached(engine) and rows_in(engine, partitions.name_of(day), model) == 8


@pytest.mark.parametrize("chunk", [50_000, 5])
def test_a_retrain_jobs_window_keeps_its_rows_in_a_replaced_day(
    engine: sa.Engine, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(day_retention, "CHUNK_ROWS", chunk)
    model = unique_model("part")
    now = datetime(2030, 12, 20, 12, tzinfo=UTC)
    day = date(2030, 1, 10 if chunk > 5 else 11)  # past 180 days: only the job keeps its labeled rows
    ensure_days(engine, day)
    rows = day_rows(model, day, 12)
    insert(
        engine,
        rows + day_rows(model, date(2030, 12, 19), 1),
        {r["id"]: (1, r["created_at"]) for r in rows[6:]},
    )
    with Session(engine) as session:
        job = RetrainJob(model_name=model, status="succeeded", trigger="episode", created_at=now,
                         window_start=rows[6]["created_at"], finished_at=now - timedelta(days=1))  # fmt: skip
        session.add(job)
        session.commit()
    report = run_retention(engine, settings(engine), now=now, models=[model])
    assert report.days_replaced == [day] and report.deleted == 6
    assert ids(engine, model) >= {r["id"] for r in rows[6:]}


def test_a_lock_retention_cannot_get_defers_the_day(engine: sa.Engine) -> None:
    model = unique_model("part")
    now = datetime(2030, 11, 20, 12, tzinfo=UTC)
    day = date(2030, 10, 1)
    ensure_days(engine, day)
    insert(engine, day_rows(model, day, 4) + day_rows(model, date(2030, 11, 19), 1))
    partitions.ensure_partitions(engine, now)
    with engine.connect() as reader:  # a long read of the log holds its lock on the table
        reader.execute(sa.select(sa.func.count()).select_from(P)).scalar_one()
        report = run_retention(engine, settings(engine), now=now, models=[model])
        assert report.days_deferred == [day] and not report.finished and report.deleted == 0
        assert day in attached(engine)
        reader.rollback()
    with engine.connect() as conn:  # no replacement table was left behind
        leftovers = conn.execute(sa.text("SELECT relname FROM pg_class WHERE relname LIKE :p"),
                                 {"p": partitions.name_of(day) + "_k%"}).all()  # fmt: skip
    assert leftovers == []
    report = run_retention(engine, settings(engine), now=now, models=[model])
    assert report.days_dropped == [day] and len(ids(engine, model)) == 1


def test_spans_cut_a_day_so_every_row_is_in_exactly_one(engine: sa.Engine) -> None:
    model = unique_model("part")
    day = date(2030, 4, 3)
    ensure_days(engine, day)
    rows = day_rows(model, day, 10)
    insert(engine, rows)
    part = partitions.table_of(partitions.name_of(day))
    with engine.connect() as conn:
        cut = spans(conn, part, rows=3)
    start = partitions.bounds_of(day)[0]
    late = [  # written after the cut, outside its ids: in the open first and last spans
        prediction_row(model, start, {"x": 0.0}, row_id=k * 36) for k in ("0", "f")
    ]
    insert(engine, late)
    with engine.connect() as conn:
        got = [set(conn.execute(sa.select(part.c.id).where(*s.rows(part.c.id))).scalars()) for s in cut]
    assert [len(g) for g in got] == [4, 3, 3, 2]
    assert late[0]["id"] in got[0] and late[1]["id"] in got[-1]
    assert set().union(*got) == {r["id"] for r in rows + late}
