"""One request's path: validate, predict (micro-batched), log (group commit), answer."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from service import metrics
from service.codec import dumps
from service.serving.batcher import MicroBatcher
from service.serving.holder import ModelHolder
from service.serving.log_writer import PredictionLogWriter
from service.serving.records import MAX_ABS_DEFAULT, RecordError, validate_records


@dataclass(frozen=True)
class Scored:
    ids: list[str]
    model_version: str
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None


def new_ids(n: int) -> list[str]:
    """UUIDv7 (RFC 9562): 48-bit millisecond time, a 24-bit counter of the row in its batch, 50 random bits.

    Time-ordered ids append to the primary key index instead of dirtying a random page per row, which
    shortens every group commit. The counter (RFC 9562 section 6.2, method 1) keeps a batch's rows in
    request order: windows are read in (time, id) order, so a drift check sees the same rows in the same
    order every time it reads a window, and its result does not depend on random id bits.

    >>> a, b, c = new_ids(3)
    >>> uuid.UUID(a).version, a < b < c
    (7, True)
    """
    ms = time.time_ns() // 1_000_000
    random = os.urandom(8 * n)
    ids = []
    for i in range(n):
        counter = i & 0xFFFFFF
        r = int.from_bytes(random[8 * i : 8 * i + 8], "big") & ((1 << 50) - 1)
        value = (ms << 80) | (0x7 << 76) | (counter >> 12) << 64 | (0b10 << 62) | (counter & 0xFFF) << 50 | r
        ids.append(str(uuid.UUID(int=value)))
    return ids


class BatchTooLarge(ValueError):
    """More records in one request than the configured limit (the API answers 413)."""


@dataclass(frozen=True)
class Scorer:
    """What scoring one request needs: the served model, its micro-batcher and the log writer."""

    holder: ModelHolder
    batcher: MicroBatcher
    writer: PredictionLogWriter
    max_batch_rows: int
    max_abs_feature: float = MAX_ABS_DEFAULT


def check_batch_size(max_batch_rows: int, n_records: int) -> None:
    if n_records > max_batch_rows:
        raise BatchTooLarge(f"batch of {n_records} records exceeds DRIFTLOOP_MAX_BATCH_ROWS={max_batch_rows}")


def _encoded(rows: list[dict[str, Any]], loc_prefix: tuple[str | int, ...], indexed: bool) -> list[str]:
    encoded = []
    for i, row in enumerate(rows):
        try:
            encoded.append(dumps(row))
        except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
            loc = [*loc_prefix, i] if indexed else list(loc_prefix)
            error = {"loc": loc, "msg": f"record cannot be logged: {exc}", "type": "value_error"}
            raise RecordError([error]) from None
    return encoded


async def score(
    scorer: Scorer,
    records: list[Any],
    *,
    endpoint: str,
    loc_prefix: tuple[str | int, ...],
    indexed: bool = True,
) -> Scored:
    check_batch_size(scorer.max_batch_rows, len(records))
    started = time.perf_counter()
    model = scorer.holder.current
    rows = validate_records(
        records, model.columns, loc_prefix=loc_prefix, indexed=indexed, max_abs=scorer.max_abs_feature
    )
    features = _encoded(rows, loc_prefix, indexed)  # before scoring: what cannot be logged is not scored
    out = await scorer.batcher.predict(rows)
    latency_ms = (time.perf_counter() - started) * 1000.0
    ids = new_ids(len(rows))
    probs = out.probabilities
    # no created_at: the writer stamps it inside its transaction (store.insert_predictions), which is
    # what lets time windows close exactly (monitor/settled.py)
    log_rows = [
        {
            "id": ids[i],
            "model_name": out.model.name,
            "model_version": out.model.version,
            "features": features[i],
            "output": dumps(out.predictions[i]),
            "probabilities": dumps(probs[i]) if probs is not None else None,
            "latency_ms": latency_ms,
            "endpoint": endpoint,
        }
        for i in range(len(rows))
    ]
    await scorer.writer.write(log_rows)
    metrics.PREDICTIONS.labels(out.model.name, out.model.version).inc(len(rows))
    return Scored(ids, out.model.version, out.predictions, probs)
