from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import sqlalchemy as sa

from service.db.engine import make_engine
from service.db.leases import advisory_key, hold_lease
from service.db.tables import Lease, utcnow


def test_one_holder_at_a_time_and_release(database_url: str) -> None:
    a, b = make_engine(database_url), make_engine(database_url)  # two "processes"
    name = f"test:{uuid.uuid4().hex}"
    try:
        with hold_lease(a, name, "a", 30) as got_a:
            assert got_a
            with hold_lease(b, name, "b", 30) as got_b:
                assert not got_b
        with hold_lease(b, name, "b", 30) as got_b:
            assert got_b
    finally:
        a.dispose()
        b.dispose()


def test_concurrent_takers_get_it_once(database_url: str) -> None:
    name = f"test:{uuid.uuid4().hex}"
    engines = [make_engine(database_url) for _ in range(4)]
    start = threading.Barrier(4)
    decided = threading.Barrier(5)  # the four takers, each holding its answer, and this thread
    release = threading.Event()
    won: list[str] = []

    def take(i: int) -> None:
        start.wait()
        with hold_lease(engines[i], name, f"h{i}", 30) as got:
            if got:
                won.append(f"h{i}")
            decided.wait(10)  # nobody leaves (nor releases) before every taker has its answer
            if got:
                release.wait(10)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    decided.wait(10)
    assert len(won) == 1, f"taken by {won} at once"
    release.set()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert len(won) == 1


def test_sqlite_expired_lease_is_taken_over(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    table = Lease.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:  # a holder that crashed a minute ago
        conn.execute(
            sa.insert(table).values(name="job:x", holder="dead", expires_at=utcnow() - timedelta(minutes=1))
        )
    with hold_lease(engine, "job:x", "alive", 30) as got:
        assert got
        with engine.connect() as conn:
            assert conn.execute(sa.select(table.c.holder)).scalar_one() == "alive"
    with engine.connect() as conn:  # released: the row is gone
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
    engine.dispose()


def test_postgres_lock_dies_with_its_connection(pg_database: str) -> None:
    """A holder whose server session ends (a crashed process) frees the lock for others."""
    name = f"test:{uuid.uuid4().hex}"
    a, b = make_engine(pg_database), make_engine(pg_database)
    held = hold_lease(a, name, "a", 30)
    assert held.__enter__()
    with b.connect() as conn:
        key = advisory_key(name)
        pids = (
            conn.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = CAST(:c AS oid) AND objid = CAST(:o AS oid) AND objsubid = 1"
                ),
                {"c": (key >> 32) & 0xFFFFFFFF, "o": key & 0xFFFFFFFF},
            )
            .scalars()
            .all()
        )
        assert len(pids) == 1
        conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pids[0]})
    # pg_terminate_backend only signals the backend: give it a moment to exit and drop its locks
    deadline = time.monotonic() + 10
    got = False
    while not got and time.monotonic() < deadline:
        with hold_lease(b, name, "b", 30) as got:
            pass
        if not got:
            time.sleep(0.1)
    assert got
    held.__exit__(None, None, None)  # unlocking on a dead session is logged, not raised
    a.dispose()
    b.dispose()
