"""`python -m bench.log_commit`: what numbering predictions in commit order costs the group commit.

Three ways to insert a group commit on PostgreSQL: `store.insert_predictions` (the transaction takes its
xid and the database clock first, `seq` from a plain sequence, no lock; readers cut windows below the
settled watermark, service/monitor/settled.py), the transaction-level advisory lock held until commit that
it replaced (overlapping group commits serialize), and a plain INSERT (no commit order at all). This runs
`--writers` threads, each its own engine (as API processes are), doing group commits of `--rows` rows,
the three alternating `--rounds` times, and reports commits/s, rows/s and commit latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bench._fixtures import create_pg_database, drop_pg_database
from service.db.engine import make_engine, upgrade
from service.db.leases import advisory_key
from service.db.tables import Prediction
from service.serving import store

P = Prediction.__table__  # type: ignore[attr-defined]
FEATURES = '{"age": 41.0, "income": 52000.0, "balance": 1200.5, "region": "north", "tenure": 7}'


def _rows(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {"id": str(uuid.uuid4()), "created_at": now, "model_name": "bench", "model_version": "1",
         "features": FEATURES, "output": "1", "probabilities": '{"0": 0.3, "1": 0.7}', "latency_ms": 1.0}
        for _ in range(n)
    ]  # fmt: skip


def _plain(conn: sa.Connection, *, rows: list[dict[str, Any]]) -> None:
    conn.execute(sa.insert(P), rows)  # numbered at insert: commit order not kept


def _advisory_lock(conn: sa.Connection, *, rows: list[dict[str, Any]]) -> None:
    """The scheme before the settled watermark: one lock orders every insert until its commit."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key("predictions.seq")})
    conn.execute(sa.insert(P), rows)


def _run(url: str, insert: Callable[..., None], writers: int, rows: int, seconds: float) -> dict[str, float]:
    engines = [make_engine(url) for _ in range(writers)]
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def work(engine: sa.Engine) -> None:
        mine = []
        while time.monotonic() < stop:
            batch = _rows(rows)
            t0 = time.perf_counter()
            with engine.begin() as conn:
                insert(conn, rows=batch)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "commits_s": len(ms) / seconds,
        "rows_s": len(ms) * rows / seconds,
        "p50_ms": statistics.median(ms),
        "p99_ms": ms[int(0.99 * (len(ms) - 1))],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.log_commit", description=__doc__)
    parser.add_argument("--writers", type=int, default=8, help="concurrent group commits (2 processes x 4)")
    parser.add_argument("--rows", type=int, default=32, help="rows per group commit")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    url = create_pg_database()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        upgrade(url)
        print(f"{args.writers} writers, {args.rows} rows per commit, {args.seconds:g} s per run")
        print("| insert | round | commits/s | rows/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
        for r in range(1, args.rounds + 1):
            variants = (("xid first", store.insert_predictions), ("advisory lock", _advisory_lock),
                        ("plain", _plain))  # fmt: skip
            for label, insert in variants:
                m = _run(url, insert, args.writers, args.rows, args.seconds)
                print(f"| {label} | {r} | {m['commits_s']:.0f} | {m['rows_s']:.0f} "
                      f"| {m['p50_ms']:.2f} | {m['p99_ms']:.2f} |")  # fmt: skip
    finally:
        drop_pg_database(url)


if __name__ == "__main__":
    main()
