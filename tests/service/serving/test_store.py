"""The prediction log's commit sequence: readers see a prefix of it, so a checked window never changes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from service.db.engine import make_engine
from service.monitor import catchup, settled, windows
from service.monitor.windows import P, Window
from service.serving import store

N = 200


@pytest.fixture
def engines(database_url: str) -> Iterator[tuple[sa.Engine, sa.Engine, sa.Engine]]:
    made = (make_engine(database_url), make_engine(database_url), make_engine(database_url))
    yield made
    for e in made:
        e.dispose()


def _rows(model: str, n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {"id": str(uuid.uuid4()), "created_at": now, "model_name": model, "model_version": "1",
         "features": "{}", "output": "0"}
        for _ in range(n)
    ]  # fmt: skip


def _log(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        store.insert_predictions(conn, rows=rows)


def _due(engine: sa.Engine, model: str, frontiers: dict[str, int]) -> list[Window]:
    with engine.connect() as conn:
        return catchup.due_windows(
            conn, kind="drift", model_name=model, model_version="1", mode="rows", rows=N, seconds=60.0,
            now=datetime.now(UTC), limit=10, latest=None, frontiers=frontiers,
        ).windows  # fmt: skip


def _ids(engine: sa.Engine, window: Window) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(windows.select_window(window, [P.c.id])).scalars())


def _visible_seqs(engine: sa.Engine, model: str) -> list[int]:
    with engine.connect() as conn:
        stmt = sa.select(P.c.seq).where(P.c.model_name == model).order_by(P.c.seq)
        return [int(s) for s in conn.execute(stmt).scalars()]


def test_rows_are_numbered_in_commit_order_and_one_insert_continues_another(
    engines: tuple[sa.Engine, ...],
) -> None:
    model = f"seq-{uuid.uuid4().hex[:8]}"
    first, second = _rows(model, 3), _rows(model, 2)
    with engines[0].begin() as conn:
        store.insert_predictions(conn, rows=first)
        store.insert_predictions(conn, rows=second)  # a batch of several requests in one transaction
    _log(engines[1], _rows(model, 4))
    with engines[2].connect() as conn:
        stmt = sa.select(P.c.id, P.c.seq).where(P.c.model_name == model).order_by(P.c.seq)
        got = conn.execute(stmt).all()
    seqs = [s for _, s in got]
    assert seqs == list(range(seqs[0], seqs[0] + 9))  # dense, in insert order, across engines
    assert [i for i, _ in got[:5]] == [r["id"] for r in first + second]


def test_overlapping_commits_never_change_a_checked_window(
    engines: tuple[sa.Engine, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two API processes (engines) log overlapping transactions: A takes the low `seq` values and stays
    open, B takes higher ones and commits, then A commits. A scheduler checking in between cuts no block
    through A's hole, and the blocks it cuts afterwards are the final commit order."""
    monkeypatch.setattr(settled, "WAIT_SECONDS", 0.3)
    api_a, api_b, scheduler = engines
    model = f"seq-{uuid.uuid4().hex[:8]}"
    _log(api_a, _rows(model, 300))
    frontiers: dict[str, int] = {}
    first = {w.key: (w, _ids(scheduler, w)) for w in _due(scheduler, model, frontiers)}
    assert len(first) == 1  # block 0: the first N of 300 settled rows
    a_inserted, a_commit = threading.Event(), threading.Event()
    b_committed = threading.Event()
    errors: list[BaseException] = []

    def process_a() -> None:
        try:
            with api_a.begin() as conn:
                store.insert_predictions(conn, rows=_rows(model, N))
                a_inserted.set()
                a_commit.wait(30)
        except BaseException as exc:  # surfaced by the assertions below
            errors.append(exc)
            a_inserted.set()

    def process_b() -> None:
        try:
            _log(api_b, _rows(model, N))
        except BaseException as exc:
            errors.append(exc)
        b_committed.set()

    a = threading.Thread(target=process_a)
    a.start()
    assert a_inserted.wait(30) and not errors
    b = threading.Thread(target=process_b)
    b.start()
    # PostgreSQL: B commits above A's open hole; SQLite: B waits for A's write lock
    assert b_committed.wait(5.0) == (scheduler.dialect.name == "postgresql")
    visible = len(_visible_seqs(scheduler, model))
    during = [w for w in _due(scheduler, model, frontiers) if w.key not in first]  # block 0 has no run
    a_commit.set()
    a.join(30)
    b.join(30)
    assert not errors, errors
    assert visible == (500 if scheduler.dialect.name == "postgresql" else 300)
    assert during == [], "a block was cut while a transaction below it was open"
    after = {w.key: (w, _ids(scheduler, w)) for w in _due(scheduler, model, frontiers) if w.key not in first}
    assert len(after) == 2  # 700 rows: blocks 1 and 2, each cut once
    with scheduler.connect() as conn:
        stmt = sa.select(P.c.id).where(P.c.model_name == model).order_by(P.c.seq)
        in_order = list(conn.execute(stmt).scalars())
    checked = {**first, **after}
    for k, (window, ids) in enumerate(sorted(checked.values(), key=lambda c: c[0].index or 0)):
        assert _ids(scheduler, window) == ids, "a checked window changed after a late commit"
        assert ids == in_order[k * N : (k + 1) * N]  # block k is rows kN.. of the final commit order
    assert [w.index for w, _ in checked.values()] == [0, 1, 2]


def test_rows_without_a_time_are_stamped_inside_their_transaction(engines: tuple[sa.Engine, ...]) -> None:
    model = f"seq-{uuid.uuid4().hex[:8]}"
    old = datetime(2026, 1, 1, tzinfo=UTC)
    rows = _rows(model, 2)
    rows[0]["created_at"] = old  # an import keeps its time
    del rows[1]["created_at"]
    before = datetime.now(UTC)
    _log(engines[0], rows)
    with engines[1].connect() as conn:
        stmt = sa.select(P.c.id, P.c.created_at).where(P.c.model_name == model)
        got: dict[str, datetime] = {i: t for i, t in conn.execute(stmt)}
    assert got[rows[0]["id"]] == old
    # the writer's clock (PostgreSQL: the database's, read after the transaction got its xid)
    assert abs((got[rows[1]["id"]] - before).total_seconds()) < 5
