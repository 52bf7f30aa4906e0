"""What a serving benchmark runs on: a registered champion, request bodies, a scratch PostgreSQL database."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import psycopg

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def register_champion(tracking_uri: str, artifact_dir: Path, name: str) -> str:
    """Train the demo pipeline on the built-in generator, register it and alias it `champion`."""
    from retrain.bootstrap import bootstrap_demo
    from retrain.registry import Registry

    artifact_dir.mkdir(parents=True, exist_ok=True)
    info = bootstrap_demo(Registry(tracking_uri, artifact_location=artifact_dir.resolve().as_uri()), name)
    return info.version


def request_bodies(n: int, *, seed: int = 7) -> list[str]:
    """`n` distinct single-row `dataframe_records` bodies drawn from the built-in data generator."""
    from retrain.synthetic import FEATURES, generate

    frame = generate(n, seed=seed)[list(FEATURES)]
    bodies = []
    for record in frame.to_dict(orient="records"):
        bodies.append(
            orjson.dumps({"dataframe_records": [record]}, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        )
    return bodies


def create_pg_database() -> str:
    """A new empty database on the local PostgreSQL; returns its URL."""
    name = f"driftloop_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count_predictions(url: str) -> int:
    """Rows in driftloop's `predictions` table (read directly, not through the service)."""
    import sqlalchemy as sa

    from service.db.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one())
    finally:
        engine.dispose()
