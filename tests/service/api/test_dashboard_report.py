from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from retrain.synthetic import FEATURES
from tests.support.dashboard_seed import seed


def test_report_html_renders_the_run_window(make_client: Callable[..., Any], database_url: str) -> None:
    model = f"report-{uuid.uuid4().hex[:8]}"  # the PostgreSQL database is shared by the session
    seeded = seed(database_url, model_name=model, runs=2, drift_from=1, window_rows=220)
    run_id = seeded.run_ids[-1]
    with make_client(database_url) as client:
        first = client.get(f"/v1/drift/runs/{run_id}/report.html")
        again = client.get(f"/v1/drift/runs/{run_id}/report.html")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("text/html")
    page = first.text
    assert f"<title>driftloop run {run_id}: {model} v1</title>" in page
    assert "Drifted Columns" in page and all(f'"{f}"' in page for f in FEATURES)
    assert again.status_code == 200 and again.text == page


def test_unknown_bad_and_unreportable_runs(make_client: Callable[..., Any], database_url: str) -> None:
    model = f"noref-{uuid.uuid4().hex[:8]}"
    seeded = seed(database_url, model_name=model, runs=1, window_rows=120, reference=False)
    with make_client(database_url) as client:
        missing = client.get("/v1/drift/runs/987654321/report.html")
        bad = client.get("/v1/drift/runs/zero/report.html")
        negative = client.get("/v1/drift/runs/0/report.html")
        no_reference = client.get(f"/v1/drift/runs/{seeded.run_ids[0]}/report.html")
    assert missing.status_code == 404 and missing.json()["detail"] == "drift run 987654321 not found"
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "run_id"]
    assert negative.status_code == 422
    assert no_reference.status_code == 409
    assert f"no reference profile is stored for model {model!r}" in no_reference.json()["detail"]
