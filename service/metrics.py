"""Prometheus metrics. With PROMETHEUS_MULTIPROC_DIR set, /metrics aggregates all uvicorn workers.

Every series carries `model`: the registered model a request, batch or row belongs to, or "" for what
belongs to no one model (a feedback post, an admin call; Prometheus reads "" as the label's absence).
"""

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

NO_MODEL = ""

REQUESTS = Counter("driftloop_requests_total", "HTTP requests", ["model", "endpoint", "status"])
LATENCY = Histogram(
    "driftloop_request_latency_seconds",
    "Request latency, logging included",
    ["model", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PREDICTIONS = Counter("driftloop_predictions_total", "Logged predictions", ["model", "model_version"])
MODEL_BATCH_ROWS = Histogram(
    "driftloop_model_batch_rows",
    "Rows per model call (micro-batching)",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
LOG_BATCH_ROWS = Histogram(
    "driftloop_log_batch_rows",
    "Rows of the model per group commit (one commit holds the rows of every model)",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096),
)
LOG_LAG = Histogram(
    "driftloop_log_lag_seconds",
    "Time from enqueue to commit of the model's oldest row in a group commit",
    ["model"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
LOG_QUEUE = Gauge(
    "driftloop_log_queue_depth",
    "Requests of the model whose rows wait for their group commit",
    ["model"],
    multiprocess_mode="max",
)
CHAMPION = Gauge(
    "driftloop_champion_version", "Version served by this process", ["model"], multiprocess_mode="max"
)

EXPORT_FAILURES = Counter(
    "driftloop_export_failures_total",
    "Scheduled exports of a model's day that failed (target unreachable or unwritable); retried next run",
    ["model"],
)
EXPORTED_ROWS = Counter("driftloop_exported_rows_total", "Rows written by the scheduled export", ["model"])


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
