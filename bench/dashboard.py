"""`python -m bench.dashboard`: the N-model dashboard's latency does not grow with the prediction log.

Two scratch PostgreSQL databases hold the same three models, one with `--small` rows per model, one with
`--large`; each model's log is what the monitor leaves: one scheduled drift run per checked block of 1000
rows (its `seq` range stored as the monitor stores it), a performance run every fifth block, 10 % of the
rows labeled, and 601 rows after the last checked block. The real app (TestClient, no network) answers
`/` (the overview) and `/dashboard/models/{name}` `--requests` times on each; the figures are medians.
The anchor is what a page would cost if it counted a model's log: `count(*)` of one model's rows.
Both databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import sqlalchemy as sa

from bench._fixtures import create_pg_database, drop_pg_database
from bench.retention import FEATURES_SQL

MODELS = ("churn", "fraud", "credit")
BLOCK = 1000
BEGIN = datetime(2026, 1, 1, tzinfo=UTC)
# each checked block's seq and time span, as the monitor stores them
SPANS = """SELECT (rn - 1) / CAST(:b AS bigint) AS k, min(seq), max(seq), min(created_at), max(created_at)
FROM (SELECT seq, created_at, row_number() OVER (ORDER BY seq) AS rn FROM predictions WHERE model_name = :m) s
WHERE rn <= CAST(:n AS bigint) GROUP BY k ORDER BY k"""
RUNS = """INSERT INTO drift_runs (window_key, kind, trigger, model_name, model_version, window_start,
    window_end, n_rows, status, dataset_drift, drift_share, is_breach, summary, started_at, finished_at,
    duration_ms)
VALUES (:key, :kind, 'schedule', :m, '1', :start, :end, :n, 'no_drift', false, 0, false, :summary, :end,
    :end, 1)"""


def populate(url: str, rows: int) -> float:
    """Every model's log and runs; returns seconds taken."""
    from service.db.engine import make_engine, upgrade
    from service.lifecycle import partitions
    from service.monitor.windows import row_block

    started = time.perf_counter()
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        features_type = conn.execute(
            sa.text("SELECT data_type FROM information_schema.columns WHERE table_name = 'predictions' "
                    "AND column_name = 'features'")
        ).scalar_one()  # fmt: skip
    insert = sa.text(
        f"""INSERT INTO predictions (id, created_at, model_name, model_version, features, output,
                                     probabilities, latency_ms, endpoint)
        SELECT md5(:m || i::text), :begin + make_interval(secs => i::double precision), :m, '1',
               CAST({FEATURES_SQL} AS {features_type}), (i % 2)::text,
               format('{{"0":%s,"1":%s}}', 0.4, 0.6), 1.0, 'predict'
        FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS i"""
    )
    blocks = (rows - 601) // BLOCK
    with (
        engine.begin() as conn
    ):  # one partition per UTC day, as the service keeps them (lifecycle/partitions)
        if partitions.is_partitioned(conn):
            for day in range(rows // 86400 + 1):
                partitions.create_day(conn, (BEGIN + timedelta(days=day)).date())
    for m in MODELS:
        for lo in range(0, rows, 500_000):
            with engine.begin() as conn:
                conn.execute(insert, {"m": m, "begin": BEGIN, "lo": lo, "hi": min(rows, lo + 500_000) - 1})
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO feedback (prediction_id, label, received_at) SELECT id, output, "
                        "created_at + interval '1 hour' FROM predictions WHERE model_name = :m "
                        "AND random() < 0.1"), {"m": m}
            )  # fmt: skip
            spans = conn.execute(
                sa.text(SPANS),
                {"b": BLOCK, "m": m, "n": blocks * BLOCK},
            ).all()  # fmt: skip
            runs = []
            for k, first, last, start, end in spans:
                window = {"mode": "rows", "index": k, "first_seq": first, "last_seq": last}
                runs.append(_run(row_block("drift", m, "1", BLOCK, k).key, "drift", m, start, end,
                                 {"window": window}))  # fmt: skip
                if k % 5 == 4:
                    summary = {"metric": "accuracy", "metrics": {"accuracy": 0.8}, "message": "ok"}
                    runs.append(_run(f"performance:{m}:{k}", "performance", m, start, end, summary))
            conn.execute(sa.text(RUNS), runs)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


def _run(
    key: str, kind: str, m: str, start: datetime, end: datetime, summary: dict[str, object]
) -> dict[str, object]:
    return {"key": key, "kind": kind, "m": m, "start": start, "end": end, "n": BLOCK,
            "summary": orjson.dumps(summary).decode()}  # fmt: skip


def measure(urls: dict[str, str], requests: int) -> dict[str, dict[str, float]]:
    """Median ms of the overview, a model page and the anchor count on each database, the databases'
    requests interleaved so that a change of machine load hits both alike."""
    from contextlib import ExitStack

    from fastapi.testclient import TestClient
    from sklearn.dummy import DummyClassifier

    from service.app import create_app
    from service.config import Settings
    from service.db.engine import make_engine
    from service.serving.holder import LoadedModel

    estimator = DummyClassifier().fit([[0.0], [1.0]], [0, 1])

    def fetch(name: str, version: str) -> LoadedModel:
        return LoadedModel(name, version, estimator, (), (0, 1))

    paths = {"overview": "/", "model page": f"/dashboard/models/{MODELS[0]}"}
    count = sa.text("SELECT count(*) FROM predictions WHERE model_name = :m AND model_version = '1'")
    times: dict[str, dict[str, list[float]]] = {label: {} for label in urls}
    with ExitStack() as stack:
        clients, engines = {}, {}
        for label, url in urls.items():
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            settings = Settings(data_dir=Path(tmp), database_url=url, model_name=MODELS[0],
                                models=",".join(MODELS[1:]), embedded_scheduler=False)  # fmt: skip
            app = create_app(settings, loader=(lambda _: "1", fetch))
            clients[label] = stack.enter_context(TestClient(app))
            engines[label] = make_engine(url)
            page = clients[label].get(paths["model page"]).text
            assert "601 / 1000 rows" in page, "the seeded log is not what the page should see"
            for path in paths.values():
                clients[label].get(path)  # warm
        for _ in range(requests):
            for label in urls:
                for key, path in paths.items():
                    t = time.perf_counter()
                    assert clients[label].get(path).status_code == 200
                    times[label].setdefault(key, []).append(1000 * (time.perf_counter() - t))
                with engines[label].connect() as conn:
                    t = time.perf_counter()
                    conn.execute(count, {"m": MODELS[0]})
                    times[label].setdefault("anchor: count(*) of one model", []).append(
                        1000 * (time.perf_counter() - t)
                    )
        for engine in engines.values():
            engine.dispose()
    return {label: {k: statistics.median(v) for k, v in found.items()} for label, found in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20_601, help="rows per model, small log")
    parser.add_argument("--large", type=int, default=1_000_601, help="rows per model, large log")
    parser.add_argument("--requests", type=int, default=25)
    args = parser.parse_args()
    urls: dict[str, str] = {}
    try:
        for label, rows in (("small", args.small), ("large", args.large)):
            urls[label] = create_pg_database()
            took = populate(urls[label], rows)
            print(f"{label}: {rows:,} rows x {len(MODELS)} models populated in {took:.0f} s", flush=True)
        figures = measure(urls, args.requests)
    finally:
        for url in urls.values():
            drop_pg_database(url)
    print(f"\n| median ms | {args.small:,} rows/model | {args.large:,} rows/model | large / small |")
    print("| --- | --- | --- | --- |")
    for key in figures["small"]:
        s, large = figures["small"][key], figures["large"][key]
        print(f"| {key} | {s:.1f} | {large:.1f} | {large / s:.2f} |")


if __name__ == "__main__":
    main()
