"""Stream a window's logged rows from the database in chunks into per-column summaries.

Memory is bounded by the chunk size plus the summaries (cell counts), a fixed-size row sample for the
domain classifier and, only for windows small enough for exact tests, the raw numeric values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa

from detectors.profile import FeatureProfile
from detectors.window import (
    CategoricalSummary,
    NumericSummary,
    Summary,
    summarize_categorical,
    summarize_numeric,
)
from service.monitor.windows import P, Window, select_window

CHUNK_ROWS = 50_000


def parse_json_column(texts: Sequence[str | None]) -> list[Any]:
    """Parse many JSON documents with one orjson call (a JSON array of them)."""
    return orjson.loads("[" + ",".join(t if t is not None else "null" for t in texts) + "]")  # type: ignore[no-any-return]


def numeric_values(values: list[Any]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)  # None -> NaN
    except (TypeError, ValueError):
        # a non-numeric value in a numeric column counts as missing, like a failed cast in a query
        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(np.float64)


def categorical_values(values: list[Any]) -> pd.Series:
    # lists/dicts are unhashable and not categories of a flat feature: keep them as their JSON text
    return pd.Series(
        [orjson.dumps(v).decode() if isinstance(v, list | dict) else v for v in values], dtype=object
    )


def merge(a: Summary | None, b: Summary) -> Summary:
    """Summaries of disjoint chunks add up."""
    if a is None:
        return b
    if isinstance(a, NumericSummary) and isinstance(b, NumericSummary):
        values = None
        if a.values is not None and b.values is not None:
            values = np.concatenate((a.values, b.values))
        return NumericSummary(
            a.n + b.n,
            a.n_missing + b.n_missing,
            a.counts + b.counts,
            a.low_tail + b.low_tail,
            a.high_tail + b.high_tail,
            values,
        )
    assert isinstance(a, CategoricalSummary) and isinstance(b, CategoricalSummary)
    counts = dict(a.counts)
    for k, v in b.counts.items():
        counts[k] = counts.get(k, 0) + v
    return CategoricalSummary(a.n + b.n, a.n_missing + b.n_missing, counts)


@dataclass
class WindowData:
    """What a drift check needs from the window."""

    n_rows: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    summaries: dict[str, Summary] = field(default_factory=dict)
    sample: dict[str, list[Any]] = field(default_factory=dict)


def stream(engine: sa.Engine, stmt: sa.Select[Any], chunk_rows: int = CHUNK_ROWS) -> Iterator[Sequence[Any]]:
    """Rows in chunks (a server-side cursor on PostgreSQL)."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
        yield from result.partitions()


def read_drift_window(
    engine: sa.Engine,
    window: Window,
    *,
    features: dict[str, FeatureProfile],
    prediction: FeatureProfile | None,
    expected_rows: int,
    keep_values_up_to: int,
    sample_rows: int,
    seed: int = 0,
    chunk_rows: int = CHUNK_ROWS,
) -> WindowData:
    """One pass over the window: summaries of every profiled feature (and of the output), plus a uniform
    sample of `sample_rows` rows (positions drawn up front from the expected row count)."""
    keep = keep_values_up_to if expected_rows <= keep_values_up_to else 0
    picks = np.sort(
        np.random.default_rng(seed + 1).choice(expected_rows, min(sample_rows, expected_rows), replace=False)
    )
    data = WindowData(sample={name: [] for name in features})
    stmt = select_window(window, [P.c.features, P.c.output, P.c.created_at])
    for chunk in stream(engine, stmt, chunk_rows):
        start = data.n_rows
        rows = parse_json_column([r[0] for r in chunk])
        rows = [r if isinstance(r, dict) else {} for r in rows]
        lo, hi = np.searchsorted(picks, [start, start + len(chunk)])
        local = (picks[lo:hi] - start).tolist()
        for name, fp in features.items():
            column = [r.get(name) for r in rows]
            summary: Summary
            if fp.kind == "numeric":
                values = numeric_values(column)
                summary = summarize_numeric(fp, values, keep)
                data.sample[name].extend(values[local].tolist())
            else:
                series = categorical_values(column)
                summary = summarize_categorical(series)
                data.sample[name].extend(series.iloc[local].tolist())
            data.summaries[name] = merge(data.summaries.get(name), summary)
        if prediction is not None:
            outputs = parse_json_column([r[1] for r in chunk])
            if prediction.kind == "numeric":
                summary = summarize_numeric(prediction, numeric_values(outputs), keep)
            else:
                summary = summarize_categorical(categorical_values(outputs))
            data.summaries[prediction.name] = merge(data.summaries.get(prediction.name), summary)
        data.first_at = data.first_at or chunk[0][2]
        data.last_at = chunk[-1][2]
        data.n_rows += len(chunk)
    return data


@dataclass
class LabeledData:
    n_rows: int
    first_at: datetime | None
    last_at: datetime | None
    labels: list[Any]
    outputs: list[Any]
    probabilities: list[Any]


def read_labeled_window(engine: sa.Engine, window: Window, chunk_rows: int = CHUNK_ROWS) -> LabeledData:
    """Labels, outputs and probabilities of the window's labeled predictions (no features)."""
    from service.monitor.windows import F

    stmt = select_window(window, [F.c.label, P.c.output, P.c.probabilities, F.c.received_at])
    out = LabeledData(0, None, None, [], [], [])
    for chunk in stream(engine, stmt, chunk_rows):
        out.labels.extend(parse_json_column([r[0] for r in chunk]))
        out.outputs.extend(parse_json_column([r[1] for r in chunk]))
        out.probabilities.extend(parse_json_column([r[2] for r in chunk]))
        out.first_at = out.first_at or chunk[0][3]
        out.last_at = chunk[-1][3]
        out.n_rows += len(chunk)
    return out
