"""Prometheus metrics. With PROMETHEUS_MULTIPROC_DIR set, /metrics aggregates all uvicorn workers."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("driftloop_requests_total", "HTTP requests", ["endpoint", "status"])
LATENCY = Histogram(
    "driftloop_request_latency_seconds",
    "Request latency, logging included",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PREDICTIONS = Counter("driftloop_predictions_total", "Logged predictions", ["model_version"])
MODEL_BATCH_ROWS = Histogram(
    "driftloop_model_batch_rows",
    "Rows per model call (micro-batching)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
LOG_BATCH_ROWS = Histogram(
    "driftloop_log_batch_rows",
    "Rows per group commit",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096),
)
LOG_LAG = Histogram(
    "driftloop_log_lag_seconds",
    "Time from enqueue to commit of a prediction log batch",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
LOG_QUEUE = Gauge(
    "driftloop_log_queue_depth", "Prediction log batches waiting for commit", multiprocess_mode="max"
)
CHAMPION = Gauge("driftloop_champion_version", "Version served by this process", multiprocess_mode="max")


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
