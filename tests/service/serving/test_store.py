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
from service.monitor import catchup, windows
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


def test_overlapping_commits_never_change_a_checked_window(engines: tuple[sa.Engine, ...]) -> None:
    """Two API processes (engines) log overlapping transactions: A inserts, B inserts and commits, then A
    commits. A scheduler checking in between must see only a prefix of the sequence, so the window it
    checked holds the same rows after both commits."""
    api_a, api_b, scheduler = engines
    model = f"seq-{uuid.uuid4().hex[:8]}"
    _log(api_a, _rows(model, 150))  # not yet a window of N
    a_inserted, a_commit = threading.Event(), threading.Event()
    b_committed = threading.Event()
    errors: list[BaseException] = []

    def process_a() -> None:
        try:
            with api_a.begin() as conn:
                store.insert_predictions(conn, rows=_rows(model, 100))
                a_inserted.set()
                a_commit.wait(30)
        except BaseException as exc:  # surfaced by the assertions below
            errors.append(exc)
            a_inserted.set()

    def process_b() -> None:
        try:
            _log(api_b, _rows(model, 100))
        except BaseException as exc:
            errors.append(exc)
        b_committed.set()

    a = threading.Thread(target=process_a)
    a.start()
    assert a_inserted.wait(30) and not errors
    b = threading.Thread(target=process_b)
    b.start()
    b_committed.wait(1.0)  # B's transaction overlaps A's (it commits now unless the sequence orders it)
    frontiers: dict[str, int] = {}
    visible = _visible_seqs(scheduler, model)
    checked = {w.key: (w, _ids(scheduler, w)) for w in _due(scheduler, model, frontiers)}
    a_commit.set()
    a.join(30)
    b.join(30)
    assert not errors, errors
    assert visible == list(range(visible[0], visible[0] + len(visible))), "a reader saw a gap in the sequence"
    for w in _due(scheduler, model, frontiers):  # a window checked before keeps its run (and key)
        checked.setdefault(w.key, (w, _ids(scheduler, w)))
    assert len(checked) == 1  # 350 rows: one complete window of 200
    everything = _visible_seqs(scheduler, model)
    assert len(everything) == 350
    with scheduler.connect() as conn:
        in_order = list(
            conn.execute(
                sa.select(P.c.id).where(P.c.model_name == model).order_by(P.c.seq).limit(N)
            ).scalars()
        )
    for window, ids in checked.values():
        assert len(ids) == N
        assert _ids(scheduler, window) == ids, "a checked window changed after a late commit"
        assert ids == in_order  # block 0 is the first N rows of the final commit order
