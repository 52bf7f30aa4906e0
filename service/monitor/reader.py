"""Stream a window's logged rows from the database in chunks into per-column summaries.

Memory is bounded by the chunk size plus the summaries (cell counts), a fixed-size row sample for the
domain classifier and, only for windows small enough for exact tests, the raw numeric values.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import sqlalchemy as sa

from detectors.profile import FeatureProfile
from detectors.window import (
    CategoricalSummary,
    NumericSummary,
    Summary,
    summarize_categorical,
    summarize_numeric,
)
from service.db.streaming import dbapi_chunks
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
    return pd.Series(values, dtype=object)


def summarize_category_values(values: list[Any]) -> tuple[pd.Series, CategoricalSummary]:
    series = categorical_values(values)
    try:
        return series, summarize_categorical(series)
    except TypeError:
        # lists/dicts are unhashable and not categories of a flat feature: count them as their JSON text
        series = pd.Series(
            [orjson.dumps(v).decode() if isinstance(v, list | dict) else v for v in values], dtype=object
        )
        return series, summarize_categorical(series)


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
    summaries: dict[str, Summary] = field(default_factory=dict)
    sample: dict[str, list[Any]] = field(default_factory=dict)


def stream(engine: sa.Engine, stmt: sa.Select[Any], chunk_rows: int = CHUNK_ROWS) -> Iterator[Sequence[Any]]:
    """Rows in chunks as plain DBAPI tuples (a server-side cursor on PostgreSQL).

    Building SQLAlchemy Row objects costs more than parsing the JSON; the columns read here are untyped
    text, so reading the DBAPI cursor directly loses nothing. The result may hold one row it fetched ahead
    (a buffered server-side cursor); `fetchone` takes it through the public API before the raw reads.
    """
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).execute(stmt)
        try:
            yield from dbapi_chunks(result, chunk_rows)
        finally:
            result.close()


# PostgreSQL reads a drift window with COPY and no ORDER BY (monitor/bulk_read.py); False: always in
# window order (the bench's anchor, and the way every other backend reads)
BULK_READ = True


@dataclass
class Reading:
    """A drift window's summaries being built, chunk by chunk in window order: chunks of `chunk_rows`
    consecutive rows, so that float sums and category order are the same however the rows were read."""

    features: dict[str, FeatureProfile]
    prediction: FeatureProfile | None
    expected_rows: int
    keep: int
    picks: np.ndarray
    schema: pa.Schema
    data: WindowData

    @classmethod
    def start(
        cls,
        features: dict[str, FeatureProfile],
        prediction: FeatureProfile | None,
        *,
        expected_rows: int,
        keep_values_up_to: int,
        sample_rows: int,
        seed: int,
    ) -> Reading:
        picks = np.sort(
            np.random.default_rng(seed + 1).choice(
                expected_rows, min(sample_rows, expected_rows), replace=False
            )
        )
        return cls(
            features,
            prediction,
            expected_rows,
            keep_values_up_to if expected_rows <= keep_values_up_to else 0,
            picks,
            pa.schema([(n, pa.float64()) for n, fp in features.items() if fp.kind == "numeric"]),
            WindowData(sample={name: [] for name in features}),
        )

    def add(self, chunk: list[str] | pa.Table, output_texts: list[str] | pa.ChunkedArray) -> None:
        """The next chunk: its features' JSON texts, or a table of them parsed as `arrow_table` does;
        its outputs' JSON texts (a list, or pyarrow strings: joined without a Python string per row)."""
        data, keep = self.data, self.keep
        start = data.n_rows
        lo, hi = np.searchsorted(self.picks, [start, start + len(output_texts)])
        local = (self.picks[lo:hi] - start).tolist()
        table = chunk if isinstance(chunk, pa.Table) else arrow_table(chunk, self.schema)
        if table is not None:
            _summarize_arrow(data, table, self.features, keep, local)
        else:
            _summarize_python(data, parse_json_column(chunk), self.features, keep, local)
        prediction = self.prediction
        if prediction is not None:
            if isinstance(output_texts, list):
                outputs = parse_json_column(output_texts)
            elif output_texts.null_count:
                outputs = parse_json_column(output_texts.to_pylist())
            else:  # the JSON array text parse_json_column parses, without a Python string per row
                texts = pa.ListArray.from_arrays([0, len(output_texts)], output_texts.combine_chunks())
                outputs = orjson.loads(b"[" + pc.binary_join(texts, ",")[0].as_buffer().to_pybytes() + b"]")
            summary: Summary
            if prediction.kind == "numeric":
                summary = summarize_numeric(prediction, numeric_values(outputs), keep)
            else:
                summary = summarize_category_values(outputs)[1]
            data.summaries[prediction.name] = merge(data.summaries.get(prediction.name), summary)
        data.n_rows += len(output_texts)


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
    sample of `sample_rows` rows (positions in window order, drawn up front from the expected row count).
    The same result on every path (PostgreSQL's unordered COPY or the ordered cursor)."""

    reading = partial(
        Reading.start, features, prediction, expected_rows=expected_rows,
        keep_values_up_to=keep_values_up_to, sample_rows=sample_rows, seed=seed,
    )  # fmt: skip
    if BULK_READ and engine.dialect.name == "postgresql" and expected_rows > 0:
        from service.monitor.bulk_read import read_unordered

        bulk = reading()
        if read_unordered(engine, window, bulk, chunk_rows):
            return bulk.data
    ordered = reading()  # (or again: the window did not hold the rows it was counted with)
    read_ordered(engine, window, ordered, chunk_rows)
    return ordered.data


def read_ordered(
    engine: sa.Engine,
    window: Window,
    reading: Reading,
    chunk_rows: int,
    where: sa.ColumnElement[bool] | None = None,
) -> None:
    """The window's rows (those matching `where`, when given) in window order through a cursor."""
    stmt = select_window(window, [P.c.features, P.c.output])
    for chunk in stream(engine, stmt if where is None else stmt.where(where), chunk_rows):
        reading.add([r[0] for r in chunk], [r[1] for r in chunk])


def arrow_table(texts: list[str], numeric: pa.Schema) -> pa.Table | None:
    """Parse a chunk of JSON objects into columns in C++ (pyarrow); None when the chunk does not fit
    (a non-object row, a column mixing types), and the caller takes the Python path."""
    body = "\n".join(texts).encode()
    try:
        return pa_json.read_json(
            io.BytesIO(body),
            read_options=pa_json.ReadOptions(use_threads=True, block_size=max(1 << 20, len(body) + 1)),
            parse_options=pa_json.ParseOptions(explicit_schema=numeric, unexpected_field_behavior="infer"),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def _summarize_arrow(
    data: WindowData, table: pa.Table, features: dict[str, FeatureProfile], keep: int, local: list[int]
) -> None:
    n = table.num_rows
    for name, fp in features.items():
        summary: Summary
        column = table.column(name) if name in table.column_names else pa.chunked_array([pa.nulls(n)])
        if fp.kind == "numeric":
            values = pc.fill_null(column.cast(pa.float64()), np.nan).to_numpy()
            summary = summarize_numeric(fp, values, keep)
            data.sample[name].extend(values[local].tolist())
        else:
            counts = pc.value_counts(column).to_pylist()
            present = {c["values"]: c["counts"] for c in counts if c["values"] is not None}
            summary = CategoricalSummary(sum(present.values()), column.null_count, present)
            data.sample[name].extend(column.take(pa.array(local, pa.int64())).to_pylist())
        data.summaries[name] = merge(data.summaries.get(name), summary)


def _summarize_python(
    data: WindowData, parsed: list[Any], features: dict[str, FeatureProfile], keep: int, local: list[int]
) -> None:
    rows = [r if isinstance(r, dict) else {} for r in parsed]
    for name, fp in features.items():
        column = [r.get(name) for r in rows]
        summary: Summary
        if fp.kind == "numeric":
            values = numeric_values(column)
            summary = summarize_numeric(fp, values, keep)
            data.sample[name].extend(values[local].tolist())
        else:
            series, summary = summarize_category_values(column)
            data.sample[name].extend(series.to_numpy()[local].tolist())
        data.summaries[name] = merge(data.summaries.get(name), summary)


@dataclass
class LabeledData:
    n_rows: int
    labels: list[Any]
    outputs: list[Any]
    probabilities: list[Any]


def read_labeled_window(engine: sa.Engine, window: Window, chunk_rows: int = CHUNK_ROWS) -> LabeledData:
    """Labels, outputs and probabilities of the window's labeled predictions (no features)."""
    from service.monitor.windows import F

    stmt = select_window(window, [F.c.label, P.c.output, P.c.probabilities])
    out = LabeledData(0, [], [], [])
    for chunk in stream(engine, stmt, chunk_rows):
        out.labels.extend(parse_json_column([r[0] for r in chunk]))
        out.outputs.extend(parse_json_column([r[1] for r in chunk]))
        out.probabilities.extend(parse_json_column([r[2] for r in chunk]))
        out.n_rows += len(chunk)
    return out
