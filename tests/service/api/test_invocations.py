from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from service.db.engine import make_engine
from tests.support.core import FEATURES, sample_records


def count(url: str, endpoint: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.execute(
            sa.text("SELECT count(*) FROM predictions WHERE endpoint = :e"), {"e": endpoint}
        ).scalar()
    engine.dispose()
    return int(n or 0)


def test_all_mlflow_payload_shapes_agree_and_are_logged(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    records = sample_records(5, seed=11)
    columns = list(FEATURES)
    payloads = [
        {"dataframe_records": records},
        {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in records]}},
        {"instances": records},
        {"inputs": {c: [r[c] for r in records] for c in columns}},
        {"inputs": records, "params": {}},
    ]
    with make_client(sqlite_url) as client:
        answers = []
        for payload in payloads:
            r = client.post("/invocations", json=payload)
            assert r.status_code == 200, (payload.keys(), r.text)
            answers.append(r.json()["predictions"])
    assert all(a == answers[0] for a in answers) and len(answers[0]) == 5
    assert count(sqlite_url, "invocations") == 25


def test_invocations_rejects_bad_payloads(make_client: Callable[..., Any], sqlite_url: str) -> None:
    record = sample_records(1)[0]
    with make_client(sqlite_url) as client:
        cases = [
            ({"dataframe_records": [record], "instances": [record]}, "exactly one"),
            ({"records": [record]}, "exactly one"),
            ({"dataframe_split": {"columns": ["age"], "data": [[1, 2]]}}, "list of 1 values"),
            ({"inputs": {"age": [1, 2], "income": [1]}}, "equal length"),
            ({"dataframe_records": [dict(record, region=5)]}, "region"),
            ([record], "JSON object"),
        ]
        for payload, message in cases:
            r = client.post("/invocations", json=payload)
            assert r.status_code == 422 and message in r.text, (payload, r.text)
        r = client.post("/invocations", content=b"a,b\n1,2", headers={"content-type": "text/plain"})
        assert r.status_code == 415
        r = client.post("/invocations", content=b"a,b\n1,2", headers={"content-type": "text/csv"})
        assert r.status_code == 422 and "unknown feature 'a'" in r.text
    assert count(sqlite_url, "invocations") == 0
