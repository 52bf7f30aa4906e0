"""Features round-trip through the log on both backends (jsonb on PostgreSQL, text on SQLite): every
feature type comes back as the codec wrote it, as text, through every way the code reads the log."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from service.codec import loads
from service.db.engine import make_engine
from service.db.streaming import dbapi_chunks
from service.serving.store import insert_predictions
from tests.support.prediction_log import P, prediction_row, unique_model

FEATURES: list[dict[str, Any]] = [
    {"f": 1.5, "i": 7, "neg": -3, "s": "north", "b": True, "none": None},
    {"f": 0.30000000000000004, "i": 2**63 - 1, "s": "Zürich ☃ 🚀", "b": False},
    {"big": 1e300, "tiny": 5e-324, "one": 1.0, "exp": 1.5e-7, "zero": 0.0},
    {"quote": 'say "hi"', "slash": "a\\b/c", "tab": "a\tb\nc", "empty": ""},
    {"nan": math.nan, "inf": math.inf, "minus_inf": -math.inf},  # the codec stores null
    {},
]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def test_every_feature_type_comes_back_as_the_codec_wrote_it(engine: sa.Engine) -> None:
    model = unique_model("jsonb")
    rows = [prediction_row(model, datetime.now(UTC), f) for f in FEATURES]
    with engine.begin() as conn:
        insert_predictions(conn, rows=rows)
    expected = [orjson.loads(r["features"]) for r in rows]
    assert expected[4] == {"nan": None, "inf": None, "minus_inf": None}

    order = (P.c.model_name == model, P.c.seq)
    with engine.connect() as conn:
        core = conn.execute(sa.select(P.c.features).where(order[0]).order_by(order[1])).scalars().all()
        text = (
            conn.execute(
                sa.text("SELECT features FROM predictions WHERE model_name = :m ORDER BY seq"), {"m": model}
            )
            .scalars()
            .all()
        )
        result = conn.execution_options(stream_results=True).execute(
            sa.select(P.c.features).where(order[0]).order_by(order[1])
        )
        raw = [r[0] for chunk in dbapi_chunks(result, 2) for r in chunk]  # the window reader's path
        result.close()
    for read in (core, text, raw):
        assert all(isinstance(v, str) for v in read)
        assert [loads(v) for v in read] == expected
    # the types survive, not only the values (1.0 stays a float, 2**63 - 1 an exact integer)
    back = [loads(v) for v in raw]
    assert type(back[2]["one"]) is float and back[1]["i"] == 2**63 - 1 and back[2]["tiny"] == 5e-324


@pytest.mark.postgres
def test_postgresql_refuses_a_row_whose_features_are_not_json(pg_database: str) -> None:
    """jsonb checks the document at insert (a text column took anything); the codec is the one writer."""
    row = prediction_row(unique_model("jsonb"), datetime.now(UTC), {})
    row["features"], row["id"] = "{not json", str(uuid.uuid4())
    engine = make_engine(pg_database)
    with pytest.raises(sa.exc.DataError), engine.begin() as conn:
        insert_predictions(conn, rows=[row])
    engine.dispose()
