"""Measure the on-disk cost of one logged prediction in PostgreSQL (the figure in docs/scaling.md).

Usage: `python deploy/measure_row_size.py [ADMIN_URL] [--rows N]`. Creates a scratch database, migrates it,
writes N rows of the built-in demo model's 8 features the way the API does (`insert_predictions` in
group commits of 500) plus one label each, and prints heap, index and total bytes per row.
The scratch database is dropped.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retrain.synthetic import FEATURES, generate  # noqa: E402
from service.db.engine import make_engine, upgrade  # noqa: E402
from service.db.tables import Feedback, utcnow  # noqa: E402
from service.serving.scoring import new_ids  # noqa: E402
from service.serving.store import dumps, insert_predictions  # noqa: E402

GROUP = 500


def prediction_rows(n: int, seed: int = 0) -> list[dict[str, object]]:
    frame = generate(n, seed=seed)
    rng = np.random.default_rng(seed)
    proba = rng.random(n)
    start = utcnow()
    ids = new_ids(n)
    records = frame[list(FEATURES)].to_dict(orient="records")
    return [
        {
            "id": ids[i],
            "created_at": start + timedelta(milliseconds=i),
            "model_name": "driftloop-demo",
            "model_version": "1",
            "features": dumps(records[i]),
            "output": dumps(int(proba[i] > 0.5)),
            "probabilities": dumps([1 - proba[i], proba[i]]),
            "latency_ms": float(rng.uniform(1, 5)),
            "endpoint": "predict",
        }
        for i in range(n)
    ]


def measure(admin_url: str, n: int) -> dict[str, float]:
    name = f"driftloop_rowsize_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        upgrade(url)
        rows = prediction_rows(n)
        for start in range(0, n, GROUP):
            with engine.begin() as conn:  # one group commit
                insert_predictions(conn, rows=rows[start : start + GROUP])
        labels = [{"prediction_id": r["id"], "label": dumps(1), "received_at": utcnow()} for r in rows]
        with engine.begin() as conn:
            conn.execute(sa.insert(Feedback.__table__), labels)  # type: ignore[attr-defined]
        with engine.connect() as conn:
            conn.execute(sa.text("VACUUM ANALYZE predictions"))
            conn.execute(sa.text("VACUUM ANALYZE feedback"))
            feedback = conn.execute(sa.text("SELECT pg_total_relation_size('feedback')")).scalar_one()
            sizes = conn.execute(
                sa.text(
                    "SELECT pg_total_relation_size('predictions'), pg_table_size('predictions'), "
                    "pg_indexes_size('predictions'), count(*) FROM predictions"
                )
            ).one()
            json_bytes = conn.execute(
                sa.text("SELECT avg(octet_length(features) + octet_length(output)) FROM predictions")
            ).scalar_one()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    total, table, indexes, count = sizes
    return {
        "rows": count,
        "total_bytes_per_row": total / count,
        "table_bytes_per_row": table / count,
        "index_bytes_per_row": indexes / count,
        "json_bytes_per_row": float(json_bytes),
        "feedback_bytes_per_label": feedback / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("admin_url", nargs="?", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    for key, value in measure(args.admin_url, args.rows).items():
        print(f"{key:>24}: {value:,.0f}")


if __name__ == "__main__":
    main()
