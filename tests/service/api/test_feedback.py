from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from service.db.engine import make_engine
from tests.support.core import sample_records


def labels(url: str, ids: list[str]) -> dict[str, str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT prediction_id, label FROM feedback WHERE prediction_id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": ids},
        ).all()
    engine.dispose()
    return dict(rows)


def test_feedback_is_idempotent_and_reports_unknown_ids(
    make_client: Callable[..., Any], database_url: str
) -> None:
    with make_client(database_url) as client:
        preds = client.post("/v1/predict", json={"instances": sample_records(3)}).json()["predictions"]
        ids = [p["prediction_id"] for p in preds]
        unknown = str(uuid.uuid4())
        items = [{"prediction_id": ids[0], "label": 1}, {"prediction_id": ids[1], "label": 0}]
        first = client.post("/v1/feedback", json={"items": [*items, {"prediction_id": unknown, "label": 1}]})
        assert first.status_code == 200, first.text
        body = first.json()
        assert (body["stored"], body["unknown"]) == (2, 1)
        assert body["items"][2] == {"prediction_id": unknown, "status": "unknown_prediction"}
        again = client.post("/v1/feedback", json={"items": items}).json()
        assert (again["stored"], again["unchanged"]) == (0, 2)
        corrected = client.post(
            "/v1/feedback", json={"items": [{"prediction_id": ids[1], "label": 1}]}
        ).json()
        assert corrected["updated"] == 1
    assert labels(database_url, ids) == {ids[0]: "1", ids[1]: "1"}


def test_feedback_validation(make_client: Callable[..., Any], sqlite_url: str) -> None:
    with make_client(sqlite_url) as client:
        r = client.post("/v1/feedback", json={"items": [{"prediction_id": "nope", "label": 1}]})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "items", 0, "prediction_id"]
        assert client.post("/v1/feedback", json={"items": []}).status_code == 422
        r = client.post("/v1/feedback", json={"items": [{"prediction_id": str(uuid.uuid4()), "label": [1]}]})
        assert r.status_code == 422
