"""The settled watermark: windows are cut only where no open transaction can still add or remove rows."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from service.db.engine import make_engine
from service.db.tables import DriftRun
from service.monitor import catchup, settled
from service.monitor.windows import F, P, Window, select_window
from service.serving import store

N = 100


@pytest.fixture
def engines(database_url: str) -> Iterator[tuple[sa.Engine, sa.Engine, sa.Engine]]:
    made = (make_engine(database_url), make_engine(database_url), make_engine(database_url))
    yield made
    for e in made:
        e.dispose()


def _rows(model: str, n: int) -> list[dict[str, Any]]:
    return [
        {"id": str(uuid.uuid4()), "model_name": model, "model_version": "1", "features": "{}", "output": "0"}
        for _ in range(n)
    ]


def _mark(
    engine: sa.Engine, model: str, state: dict[str, int], *, kind: str = "drift", wait: float = 0.3
) -> Any:
    with engine.connect() as conn:
        return settled.settled(
            conn, kind="drift", model_name=model, model_version="1", state=state, wait=wait
        )


def _max_seq(engine: sa.Engine, model: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(P.c.seq)).where(P.c.model_name == model)).scalar_one())


@pytest.mark.postgres
def test_a_later_xid_holding_a_lower_seq_holds_the_watermark(pg_database: str) -> None:
    """A gets its xid first, B a later one and a lower `seq`, A commits the higher `seq` while B is open.
    One past the latest completed xid (`pg_snapshot_xmax`) can be B's own xid, so "every xid below xmax has
    ended" holds while B runs: the watermark must stay below B's `seq` until B ends."""
    a_engine, b_engine, reader = (make_engine(pg_database) for _ in range(3))
    model = f"settle-{uuid.uuid4().hex[:8]}"
    with a_engine.begin() as conn:
        store.insert_predictions(conn, rows=_rows(model, 5))
    state: dict[str, int] = {}
    base = _mark(reader, model, state).seq
    assert base == _max_seq(reader, model)
    with a_engine.connect() as a, b_engine.connect() as b:
        store.begin_write(a)  # A: the lower xid
        store.insert_predictions(b, rows=_rows(model, 1))  # B: a higher xid, the lower seq
        store.insert_predictions(a, rows=_rows(model, 1))
        a.commit()
        held = _mark(reader, model, state)
        assert held.seq == base, "the watermark passed an open transaction's seq"
        b.commit()
    assert _mark(reader, model, state).seq == _max_seq(reader, model) == base + 2
    for e in (a_engine, b_engine, reader):
        e.dispose()


def test_rows_stamped_before_the_settled_time_are_committed(engines: tuple[sa.Engine, ...]) -> None:
    """A writer stamps its rows and stays open for a while; the settled time the reader gets once it
    returns covers that stamp only if the rows are visible."""
    writer, reader, _ = engines
    model = f"settle-{uuid.uuid4().hex[:8]}"
    stamped, release = threading.Event(), threading.Event()

    def write() -> None:
        with writer.begin() as conn:
            store.insert_predictions(conn, rows=_rows(model, 3))
            stamped.set()
            release.wait(30)

    t = threading.Thread(target=write)
    t.start()
    assert stamped.wait(30)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    mark = _mark(reader, model, {}, wait=10.0)  # waits for the writer (SQLite: for its write lock)
    with reader.connect() as conn:  # read before anything else can end the writer
        times = list(conn.execute(sa.select(P.c.created_at).where(P.c.model_name == model)).scalars())
    t.join(30)
    assert len(times) == 3, "the settled time passed rows that were not committed"
    assert all(c < mark.until for c in times)


def _label(
    engine: sa.Engine,
    ids: list[str],
    hold: threading.Event | None = None,
    opened: threading.Event | None = None,
    committed: threading.Event | None = None,
) -> None:
    with Session(engine) as session:
        store.record_feedback(session, items=[(pid, 1) for pid in ids])
        if opened is not None:
            opened.set()
        if hold is not None:
            hold.wait(30)
        session.commit()
    if committed is not None:
        committed.set()


def _due(engine: sa.Engine, model: str, frontiers: dict[str, int]) -> list[Window]:
    with engine.connect() as conn:
        return catchup.due_windows(
            conn, kind="performance", model_name=model, model_version="1", mode="rows", rows=N,
            seconds=60.0, now=datetime.now(UTC), limit=10, latest=None, frontiers=frontiers,
        ).windows  # fmt: skip


def _ids(engine: sa.Engine, window: Window) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select_window(window, [F.c.prediction_id])).scalars())


def _check(engine: sa.Engine, checked: dict[str, tuple[Window, list[str]]], due: list[Window]) -> None:
    """Record the due windows as the monitor does (a run whose summary holds the window)."""
    now = datetime.now(UTC)
    with Session(engine) as session:
        for w in due:
            checked[w.key] = (w, _ids(engine, w))
            session.add(
                DriftRun(
                    window_key=w.key, kind=w.kind, model_name=w.model_name, model_version=w.model_version,
                    window_start=now, window_end=now, n_rows=N, status="no_drift",
                    summary=orjson.dumps({"window": w.describe()}).decode(), started_at=now, finished_at=now,
                )
            )  # fmt: skip
        session.commit()


def test_performance_windows_are_cut_by_label_commit_order(
    engines: tuple[sa.Engine, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels from two API processes overlap: A stays open holding low feedback `seq` values while B
    commits higher ones. No performance window is cut through A's hole; once A commits, the windows are
    the labels in final commit order and never change; a corrected label arrives again, in a later one."""
    monkeypatch.setattr(settled, "WAIT_SECONDS", 0.3)
    api_a, api_b, scheduler = engines
    model = f"perf-{uuid.uuid4().hex[:8]}"
    rows = _rows(model, 400)
    with api_a.begin() as conn:
        store.insert_predictions(conn, rows=rows)
    ids = [r["id"] for r in rows]
    _label(api_a, ids[:150])
    frontiers: dict[str, int] = {}
    checked: dict[str, tuple[Window, list[str]]] = {}
    _check(scheduler, checked, _due(scheduler, model, frontiers))
    assert len(checked) == 1
    a_open, a_commit, b_done = threading.Event(), threading.Event(), threading.Event()
    a = threading.Thread(target=_label, args=(api_a, ids[150:250], a_commit, a_open))
    a.start()
    assert a_open.wait(30)
    b = threading.Thread(target=_label, args=(api_b, ids[250:350], None, None, b_done))
    b.start()
    assert b_done.wait(5.0) == (scheduler.dialect.name == "postgresql")  # SQLite: B waits for A's lock
    assert _due(scheduler, model, frontiers) == [], "a window was cut while labels below it were open"
    a_commit.set()
    a.join(30)
    b.join(30)
    _label(api_b, ids[350:400])
    # a corrected label is a new arrival: it leaves block 0 (checked) for the block being filled
    with Session(api_b) as session:
        (outcome,) = store.record_feedback(session, items=[(ids[0], 0)])
        session.commit()
    assert outcome.status == "updated"
    _check(scheduler, checked, _due(scheduler, model, frontiers))
    with scheduler.connect() as conn:
        stmt = (
            sa.select(F.c.prediction_id).join(P, P.c.id == F.c.prediction_id).where(P.c.model_name == model)
        )
        order = list(conn.execute(stmt.order_by(F.c.seq)).scalars())
    assert order[-1] == ids[0] and len(order) == 400
    blocks = sorted(checked.values(), key=lambda c: c[0].index or 0)
    assert [w.index for w, _ in blocks] == [0, 1, 2, 3]
    assert blocks[0][1] == ids[:N]
    assert _ids(scheduler, blocks[0][0]) == ids[1:N]  # its run stands; the corrected label moved on
    for k, (window, got) in enumerate(blocks[1:], start=1):
        assert got == order[k * N - 1 : (k + 1) * N - 1]  # block k follows block 0's last label
        assert _ids(scheduler, window) == got, "a checked window changed after a late commit"
    assert ids[0] not in {pid for _, got in blocks[1:] for pid in got}  # its new arrival waits: 100 rows


def test_a_time_bucket_is_cut_only_once_every_row_stamped_in_it_is_committed(
    engines: tuple[sa.Engine, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer stamps rows in a bucket and stays open past the bucket's end: no check cuts that bucket
    without them (PostgreSQL: the watermark waits; SQLite: the check waits for the write lock)."""
    monkeypatch.setattr(settled, "WAIT_SECONDS", 0.3)
    writer, reader, _ = engines
    model = f"time-{uuid.uuid4().hex[:8]}"
    seconds = 0.5
    with writer.begin() as conn:
        store.insert_predictions(conn, rows=_rows(model, 1))  # the series starts here
    stamped, release = threading.Event(), threading.Event()
    late = _rows(model, 3)

    def write() -> None:
        with writer.begin() as conn:
            store.insert_predictions(conn, rows=late)
            stamped.set()
            release.wait(30)

    t = threading.Thread(target=write)
    t.start()
    assert stamped.wait(30)
    time.sleep(2 * seconds)  # the writer's bucket has ended by every clock
    threading.Timer(0.5, release.set).start()
    frontiers: dict[str, int] = {}

    def due() -> list[Window]:
        with reader.connect() as conn:
            return catchup.due_windows(
                conn, kind="drift", model_name=model, model_version="1", mode="time", rows=N, seconds=seconds,
                now=datetime.now(UTC), limit=20, latest=None, frontiers=frontiers,
            ).windows  # fmt: skip

    def late_rows(windows: list[Window]) -> int:
        with reader.connect() as conn:
            ids = {i for w in windows for i in conn.execute(select_window(w, [P.c.id])).scalars()}
        return len(ids & {r["id"] for r in late})

    cut = due()  # while the writer is open (PostgreSQL), or once it committed (SQLite)
    t.join(30)
    with reader.connect() as conn:
        (stamp,) = conn.execute(sa.select(P.c.created_at).where(P.c.id == late[0]["id"])).scalars().all()
    holding = [w for w in cut if w.start is not None and w.end is not None and w.start <= stamp < w.end]
    assert all(late_rows([w]) == 3 for w in holding), "a bucket was cut without rows stamped in it"
    after = [w for w in due() if w.start is not None and w.end is not None and w.start <= stamp < w.end]
    assert len(after) == 1 and late_rows(after) == 3


@pytest.mark.postgres
def test_a_transaction_open_in_another_database_does_not_hold_the_watermark(pg_database: str) -> None:
    """xids are cluster-wide, rows are not: a writer left open in another database on the same server
    (MLflow's, say) holds no row of this one, so the watermark still advances."""
    from tests.conftest import PG_ADMIN_URL

    engine = make_engine(pg_database)
    model = f"settle-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL) as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")  # an xid older than anything below, left open
        with engine.begin() as conn:
            store.insert_predictions(conn, rows=_rows(model, 4))
        assert _mark(engine, model, {}).seq == _max_seq(engine, model)
        elsewhere.rollback()
    engine.dispose()
