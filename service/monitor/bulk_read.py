"""A drift window read on PostgreSQL without ORDER BY, giving the ordered reader's result exactly.

The server sends one JSON line per row, `{"s":seq,"o":"<output text>","f":<features>}`, by COPY in table
order (a sequential scan of the day partitions: no merge of per-partition index scans, no per-row Python
object), and pyarrow parses runs of lines in C++. Rows are then regrouped into the ordered reader's chunks:
chunk k holds the rows of ranks k*chunk_rows .. in `seq` order, whose first `seq` is known up front (the
window's range when its seqs are consecutive, else one index-only query). A chunk is summarized once all its
rows are in, sorted by `seq`, and chunks are added in order: float sums, kept values, category order and
the sample are those of the ordered read. A run pyarrow cannot parse, or a chunk whose runs disagree on a
column's type, is read again by the ordered reader for that chunk's seq range alone.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json
import sqlalchemy as sa

from service.db.streaming import copy_lines, unescape
from service.monitor.reader import Reading, read_ordered
from service.monitor.windows import P, Window, base_from, window_filter

LINE: sa.ColumnElement[str] = sa.literal_column(
    """'{"s":' || predictions.seq || ',"o":' || to_json(predictions.output)::text """
    """|| ',"f":' || predictions.features::text || '}'"""
)
RUN_BYTES = 4 << 20  # lines parsed per pyarrow call
SEQ_OF_LINE = re.compile(rb'^\{"s":(\d+),', re.MULTILINE)
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


@dataclass
class _Chunk:
    size: int
    rows: int = 0
    parts: list[tuple[pa.Table, np.ndarray, pa.ChunkedArray]] = field(default_factory=list)
    ordered: bool = False  # read it again in order (a run did not parse, or the parts do not fit)


def chunk_starts(engine: sa.Engine, window: Window, n: int, chunk_rows: int) -> np.ndarray:
    """The `seq` of rank 0, chunk_rows, 2*chunk_rows ... among the window's rows."""
    first, last = window.first_seq, window.last_seq
    if first is not None and last is not None and last - first + 1 == n:  # consecutive: rank = seq - first
        return first + np.arange(0, n, chunk_rows, dtype=np.int64)
    ranked = (
        sa.select(P.c.seq.label("seq"), sa.func.row_number().over(order_by=P.c.seq).label("rn"))
        .select_from(base_from(window.kind))
        .where(window_filter(window))
        .subquery()
    )
    stmt = sa.select(ranked.c.seq).where((ranked.c.rn - 1) % chunk_rows == 0).order_by(ranked.c.seq)
    with engine.connect() as conn:
        return np.array(conn.execute(stmt).scalars().all(), dtype=np.int64)


def read_unordered(engine: sa.Engine, window: Window, reading: Reading, chunk_rows: int) -> bool:
    """Add the window's chunks to `reading` in order; False when the window does not hold the
    `reading.expected_rows` it was counted with (or is an unresolved row block): the caller reads it
    again in order."""
    n = reading.expected_rows
    if window.limit is not None and window.first_seq is None:
        return False  # an OFFSET block: its rows are known only in order
    starts = chunk_starts(engine, window, n, chunk_rows)
    if len(starts) != -(-n // chunk_rows):
        return False
    chunks = [_Chunk(min(chunk_rows, n - k * chunk_rows)) for k in range(len(starts))]
    schema = pa.schema([("s", pa.int64()), ("o", pa.string()), ("f", pa.struct(list(reading.schema)))])
    done = 0
    stmt = sa.select(LINE).select_from(base_from(window.kind)).where(window_filter(window))
    for run in copy_lines(engine, stmt, RUN_BYTES):
        table = parse_run(run, schema)
        if table is None:
            seqs = np.array([int(s) for s in SEQ_OF_LINE.findall(run)], dtype=np.int64)
        else:
            seqs = table.column("s").to_numpy()
        where = np.searchsorted(starts, seqs, side="right") - 1
        if seqs.size and where.min() < 0:
            return False
        in_order = bool(np.all(seqs[1:] > seqs[:-1]))  # as the scan mostly reads: slices, no copies
        for k, first, count in zip(*np.unique(where, return_index=True, return_counts=True), strict=True):
            chunk = chunks[k]
            chunk.rows += int(count)
            if chunk.rows > chunk.size:
                return False
            if table is None:
                chunk.ordered, chunk.parts = True, []
            elif not chunk.ordered:
                rows = np.arange(first, first + count) if in_order else np.flatnonzero(where == k)
                part = table.slice(first, count) if in_order else table.take(rows)
                features = pa.Table.from_struct_array(part.column("f"))
                chunk.parts.append((features, seqs[rows], part.column("o")))
        while done < len(chunks) and chunks[done].rows == chunks[done].size:
            finish(engine, window, reading, chunks[done], starts, done, chunk_rows)
            chunks[done].parts = []
            done += 1
    return done == len(chunks)


def parse_run(run: bytes, schema: pa.Schema) -> pa.Table | None:
    """A run of lines as columns; None when it holds a line that is not an object of an object (or a
    column of mixed types, which the ordered reader's Python path handles)."""
    text = unescape(run)
    if text is None:
        return None
    try:
        table = pa_json.read_json(
            io.BytesIO(text),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(text) + 1),
            parse_options=pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer"),
        )
    except _ARROW_ERRORS:
        return None
    if table.column_names != ["s", "o", "f"] or table.column("f").null_count:
        return None
    return table


def finish(
    engine: sa.Engine,
    window: Window,
    reading: Reading,
    chunk: _Chunk,
    starts: np.ndarray,
    k: int,
    chunk_rows: int,
) -> None:
    """Add chunk `k`, its rows in `seq` order."""
    table = None if chunk.ordered else concat([p[0] for p in chunk.parts])
    if table is None:
        where = P.c.seq >= int(starts[k])
        if k + 1 < len(starts):
            where = sa.and_(where, P.c.seq < int(starts[k + 1]))
        read_ordered(engine, window, reading, chunk_rows, where)
        return
    seqs = np.concatenate([p[1] for p in chunk.parts])
    outputs = pa.chunked_array([c for p in chunk.parts for c in p[2].chunks], pa.string())
    if not np.all(seqs[1:] > seqs[:-1]):
        order = pa.array(np.argsort(seqs, kind="stable"))
        table, outputs = table.take(order), outputs.take(order)
    reading.add(table, outputs)


def concat(tables: list[pa.Table]) -> pa.Table | None:
    """One table of the parts, a column missing or all null in a part being nulls of the others' type;
    None when the parts disagree on a column's type (one parse of all the lines would have failed, or
    typed it otherwise)."""
    types: dict[str, pa.DataType] = {}
    for t in tables:
        for f in t.schema:
            if f.type != pa.null() and types.setdefault(f.name, f.type) != f.type:
                return None
    names = list(dict.fromkeys(n for t in tables for n in t.column_names))
    aligned = []
    for t in tables:
        columns = []
        for name in names:
            kind = types.get(name, pa.null())
            if name in t.column_names:
                columns.append(t.column(name).cast(kind))
            else:
                columns.append(pa.chunked_array([pa.nulls(t.num_rows, kind)]))
        aligned.append(pa.table(columns, names=names))
    return pa.concat_tables(aligned)
