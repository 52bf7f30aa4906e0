"""`make bench-monitor`: a drift check over a window of 1M logged predictions, on SQLite and PostgreSQL.

Rows are logged through the prediction writer's fast path (`repository.insert_predictions`); the check runs
in a fresh process so its peak RSS is the check's (plus the imports, reported separately).

    python -m bench.monitor [--rows 1000000] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MODEL = "bench"
BATCH = 50_000


def fill(url: str, n_rows: int) -> float:
    """Log `n_rows` scored predictions of the demo model (version 1) and its reference; seconds taken."""
    from retrain.bootstrap import build_demo_pipeline
    from retrain.synthetic import FEATURES, TARGET, TIMESTAMP, generate
    from service.codec import dumps
    from service.db.engine import make_engine
    from service.monitor.references import store_reference
    from service.serving import store as repository

    engine = make_engine(url)
    train = generate(4000, seed=0).drop(columns=[TIMESTAMP])
    model = build_demo_pipeline().fit(train[list(FEATURES)], train[TARGET])
    store_reference(engine, model_name=MODEL, model_version="1", data=train, source="bench")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    for offset in range(0, n_rows, BATCH):
        n = min(BATCH, n_rows - offset)
        frame = generate(n, seed=1, offset=offset)[list(FEATURES)]
        preds = model.predict(frame).tolist()
        proba = model.predict_proba(frame)[:, 1].tolist()
        records = frame.astype(object).to_dict(orient="records")
        rows = [
            {
                "id": str(uuid.uuid4()),
                "created_at": t0 + timedelta(milliseconds=offset + i),
                "model_name": MODEL,
                "model_version": "1",
                "features": dumps(records[i]),
                "output": dumps(preds[i]),
                "probabilities": dumps({"0": 1 - proba[i], "1": proba[i]}),
                "latency_ms": 1.0,
                "endpoint": "predict",
            }
            for i in range(n)
        ]
        with engine.begin() as conn:
            repository.insert_predictions(conn, rows=rows)
    engine.dispose()
    return time.perf_counter() - started


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc (VmRSS = now, VmHWM = peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _check(url: str, n_rows: int, out: Any) -> None:
    import gc

    import orjson

    from service.config import Settings
    from service.db.engine import make_engine
    from service.monitor import Monitor
    from service.monitor.windows import row_block

    gc.collect()
    # reset the high-water mark so the peak below is the check's, not the imports'
    Path("/proc/self/clear_refs").write_text("5")
    rss_before = _status_mb("VmRSS")
    settings = Settings(database_url=url, model_name=MODEL, window_rows=n_rows)
    engine = make_engine(url)
    monitor = Monitor(settings, engine, champion_version=lambda _: "1")
    started = time.perf_counter()
    run = monitor.check(row_block("drift", MODEL, "1", n_rows, 0), trigger="manual")
    elapsed = time.perf_counter() - started
    summary = orjson.loads(run.summary)
    out.put(
        {
            "seconds": elapsed,
            "rows": run.n_rows,
            "status": run.status,
            "timings_ms": summary.get("timings_ms"),
            "rss_imports_mb": rss_before,
            "rss_peak_mb": _status_mb("VmHWM"),
        }
    )
    engine.dispose()


def check_in_child(url: str, n_rows: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_check, args=(url, n_rows, queue))
    proc.start()
    result: dict[str, Any] = queue.get(timeout=600)
    proc.join()
    return result


def report(backend: str, fill_s: float, n_rows: int, r: dict[str, Any]) -> None:
    t = r["timings_ms"] or {}
    verdict = "OK" if r["seconds"] < 10 else "OVER 10 s"
    print(
        f"{backend:10s} rows={r['rows']:,} status={r['status']} check={r['seconds']:.2f}s "
        f"(read+summarize {t.get('read', 0) / 1000:.2f}s, decide {t.get('decide', 0) / 1000:.2f}s) "
        f"peak RSS {r['rss_peak_mb']:.0f} MB (before the check {r['rss_imports_mb']:.0f} MB) "
        f"[{verdict}; insert {n_rows / fill_s:,.0f} rows/s]"
    )


def main() -> None:
    from service.db.engine import upgrade

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        fill_s = fill(url, args.rows)
        report("sqlite", fill_s, args.rows, check_in_child(url, args.rows))
    if args.skip_postgres:
        return
    import psycopg

    from bench._fixtures import PG_ADMIN_URL

    name = f"driftloop_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        fill_s = fill(url, args.rows)
        report("postgresql", fill_s, args.rows, check_in_child(url, args.rows))
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
