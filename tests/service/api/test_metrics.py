from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.support.core import sample_records


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def _value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float | None:
    found = [v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())]
    return sum(found) if found else None


def test_metrics_count_requests_predictions_and_log_batches(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    with make_client(sqlite_url) as client:
        before = _samples(client.get("/metrics").text)  # the registry is the process's: count deltas
        assert client.post("/v1/predict", json={"instances": sample_records(3)}).status_code == 200
        assert client.post("/v1/predict", json={"features": {}}).status_code == 422
        after = _samples(client.get("/metrics").text)

    def delta(name: str, **labels: str) -> float:
        return (_value(after, name, **labels) or 0.0) - (_value(before, name, **labels) or 0.0)

    requests = "driftloop_requests_total"
    assert delta(requests, model="demo", endpoint="predict", status="200") == 1
    assert delta(requests, model="demo", endpoint="predict", status="422") == 1
    assert delta("driftloop_predictions_total", model="demo", model_version="1") == 3
    assert delta("driftloop_request_latency_seconds_count", model="demo", endpoint="predict") == 2
    assert delta("driftloop_model_batch_rows_sum", model="demo") == 3
    assert delta("driftloop_log_batch_rows_sum", model="demo") == 3
    assert delta("driftloop_log_lag_seconds_count", model="demo") == 1
    assert _value(after, "driftloop_champion_version", model="demo") == 1
    assert _value(after, "driftloop_log_queue_depth", model="demo") == 0


def test_every_driftloop_series_carries_a_model_label(
    make_client: Callable[..., Any], sqlite_url: str
) -> None:
    with make_client(sqlite_url) as client:
        client.post("/v1/predict", json={"instances": sample_records(2)})
        client.post("/invocations", json={"inputs": sample_records(1)})
        client.post("/v1/feedback", json={"prediction_id": "nope", "label": 1})
        client.post("/v1/models/made-up/predict", json={"instances": sample_records(1)})  # 404
        samples = _samples(client.get("/metrics").text)
    ours = [(name, labels) for name, labels, _ in samples if name.startswith("driftloop_")]
    assert len({name.rsplit("_", 1)[0] for name, _ in ours}) >= 7
    assert [s for s in ours if "model" not in s[1]] == []
    # a name the deployment does not serve is not a label value: made-up names cannot grow the series
    # (the registry is the process's: other tests' models may be there too)
    values = {labels["model"] for _, labels in ours}
    assert {"demo", ""} <= values and "made-up" not in values
    unknown = _value(samples, "driftloop_requests_total", model="", endpoint="predict", status="404")
    assert unknown is not None and unknown >= 1
    assert _value(samples, "driftloop_requests_total", model="", endpoint="feedback") is not None


def test_every_metric_driftloop_defines_is_labelled_by_model() -> None:
    """Also the series no request above touched (the scheduled export's): `model` is declared on each."""
    from prometheus_client.metrics import MetricWrapperBase

    import service.metrics as metrics

    defined = {n: m for n, m in vars(metrics).items() if isinstance(m, MetricWrapperBase)}
    assert {"REQUESTS", "PREDICTIONS", "CHAMPION", "EXPORTED_ROWS", "EXPORT_FAILURES"} <= set(defined)
    assert {n: m._labelnames for n, m in defined.items() if "model" not in m._labelnames} == {}
