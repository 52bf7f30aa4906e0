from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.core import sample_records


def test_metrics_count_requests_predictions_and_log_batches(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    with make_client(sqlite_url) as client:
        assert client.post("/v1/predict", json={"instances": sample_records(3)}).status_code == 200
        assert client.post("/v1/predict", json={"features": {}}).status_code == 422
        text = client.get("/metrics").text
    assert 'driftloop_requests_total{endpoint="predict",status="200"}' in text
    assert 'driftloop_requests_total{endpoint="predict",status="422"}' in text
    assert 'driftloop_predictions_total{model_version="1"}' in text
    assert "driftloop_request_latency_seconds_bucket" in text
    assert "driftloop_log_batch_rows_bucket" in text and "driftloop_log_lag_seconds_bucket" in text
    assert "driftloop_model_batch_rows_bucket" in text
