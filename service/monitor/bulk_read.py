"""A drift window read on PostgreSQL without ORDER BY, giving the ordered reader's result exactly.

The server sends one tab-separated line per row by COPY in table order (a sequential scan of the day
partitions: no merge of per-partition index scans, no per-row Python object): `seq`, the output's text and
one field per profiled feature, taken out of the jsonb server-side (`->>` for a numeric one, `->` for a
categorical one, which keeps a string's quotes and so its JSON type); pyarrow's CSV reader parses runs of
lines in C++ (a third of the bytes of the whole documents, and no JSON parse). A run's columns are typed
as pyarrow's JSON reader types the ordered reader's chunks; a run holding a value it would type otherwise
(a string in a numeric feature, mixed types, a date-like string) is not guessed at. Rows are then regrouped
into the ordered reader's chunks: chunk k holds the rows of ranks k*chunk_rows .. in `seq` order, whose
first `seq` is known up front (the window's range when its seqs are consecutive, else one index-only
query). A chunk is summarized once all its rows are in, sorted by `seq`, and chunks are added in order:
float sums, kept values, category order and the sample are those of the ordered read. A chunk holding a
run that did not parse, or whose runs disagree on a column's type, is read again by the ordered reader for
that chunk's seq range alone.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from detectors.profile import FeatureProfile
from service.db.streaming import copy_lines
from service.monitor.reader import Reading, read_ordered
from service.monitor.windows import P, Window, base_from, window_filter

RUN_BYTES = 4 << 20  # lines parsed per pyarrow call
SEQ_OF_LINE = re.compile(rb"^(\d+)\t", re.MULTILINE)
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
_NULL = "\\N"  # COPY's NULL: a missing key, a JSON null in a numeric feature (`->>`), no output
_DATE_LIKE = re.compile(r"\d{4}-\d\d-\d\d")  # pyarrow's JSON reader reads such strings as timestamps


def columns(features: dict[str, FeatureProfile]) -> list[sa.ColumnElement[Any]]:
    doc = sa.type_coerce(P.c.features, JSONB)
    fields = [doc[n].astext if fp.kind == "numeric" else doc[n] for n, fp in features.items()]
    return [P.c.seq, P.c.output, *fields]


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
    if not reading.features:
        return False  # outputs alone: nothing to gain
    starts = chunk_starts(engine, window, n, chunk_rows)
    if len(starts) != -(-n // chunk_rows):
        return False
    chunks = [_Chunk(min(chunk_rows, n - k * chunk_rows)) for k in range(len(starts))]
    done = 0
    stmt = (
        sa.select(*columns(reading.features)).select_from(base_from(window.kind)).where(window_filter(window))
    )
    for run in copy_lines(engine, stmt, RUN_BYTES):
        parsed = parse_run(run, reading.features)
        if parsed is None:
            seqs = np.array([int(s) for s in SEQ_OF_LINE.findall(run)], dtype=np.int64)
        else:
            table, seqs, outputs = parsed
        where = np.searchsorted(starts, seqs, side="right") - 1
        if seqs.size and where.min() < 0:
            return False
        in_order = bool(np.all(seqs[1:] > seqs[:-1]))  # as the scan mostly reads: slices, no copies
        for k, first, count in zip(*np.unique(where, return_index=True, return_counts=True), strict=True):
            chunk = chunks[k]
            chunk.rows += int(count)
            if chunk.rows > chunk.size:
                return False
            if parsed is None:
                chunk.ordered, chunk.parts = True, []
            elif not chunk.ordered:
                rows = np.arange(first, first + count) if in_order else np.flatnonzero(where == k)
                if in_order:
                    part, out = table.slice(first, count), outputs.slice(first, count)
                else:
                    part, out = table.take(rows), outputs.take(rows)
                chunk.parts.append((part, seqs[rows], out))
        while done < len(chunks) and chunks[done].rows == chunks[done].size:
            finish(engine, window, reading, chunks[done], starts, done, chunk_rows)
            chunks[done].parts = []
            done += 1
    return done == len(chunks)


def parse_run(
    run: bytes, features: dict[str, FeatureProfile]
) -> tuple[pa.Table, np.ndarray, pa.ChunkedArray] | None:
    """A run of lines as (the features' columns, seqs, output texts); None when it holds a value that
    pyarrow's JSON reader would not type as these columns are typed, or a COPY escape other than a
    doubled backslash and NULL (a control character: not in a JSON text)."""
    text = unescape_fields(run)
    if text is None:
        return None
    names = ["s", "o", *(f"f{i}" for i in range(len(features)))]
    kinds = [pa.float64() if fp.kind == "numeric" else pa.string() for fp in features.values()]
    try:
        table = pa_csv.read_csv(
            io.BytesIO(text),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=len(text) + 1),
            parse_options=pa_csv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict(zip(names, [pa.int64(), pa.string(), *kinds], strict=True)),
                null_values=[_NULL],
                strings_can_be_null=True,
            ),
        )
    except _ARROW_ERRORS:
        return None
    if table.column("o").null_count:  # no output: the ordered reader's way
        return None
    out = {}
    for i, (name, fp) in enumerate(features.items()):
        column = table.column(f"f{i}").combine_chunks()
        typed = finite(column) if fp.kind == "numeric" else json_scalars(column)
        if typed is None:
            return None
        out[name] = typed
    return pa.table(out), table.column("s").to_numpy(), table.column("o")


def unescape_fields(run: bytes) -> bytes | None:
    """COPY text-format lines with their doubled backslashes undone (NULL stays `\\N`); None when they
    hold another escape (a tab or a newline in a value)."""
    if b"\\" not in run:
        return run
    if b"\\" in run.replace(b"\\\\", b"").replace(b"\\N", b""):
        return None
    return run.replace(b"\\\\", b"\\")


def finite(values: pa.Array) -> pa.Array | None:
    """A numeric feature's values; None when one is not finite (a string "NaN", a number past float
    range: the JSON reader refuses both)."""
    return values if values.null_count == len(values) or pc.all(pc.is_finite(values)).as_py() else None


def json_scalars(texts: pa.Array) -> pa.Array | None:
    """A categorical feature's JSON texts typed as pyarrow's JSON reader types a column of them: all
    strings, all integers or all booleans (with nulls), all null; None for anything else (mixed types,
    floats, objects, date-like strings). Each distinct text is decoded once, by orjson."""
    encoded = pc.dictionary_encode(texts)
    distinct = encoded.dictionary
    joined = pc.binary_join(pa.ListArray.from_arrays([0, len(distinct)], distinct), ",")[0]
    values = orjson.loads(b"[" + joined.as_buffer().to_pybytes() + b"]")
    kinds = {type(v) for v in values if v is not None}
    kind: pa.DataType
    if not kinds:
        return pa.nulls(len(texts))
    if kinds == {str} and not any(_DATE_LIKE.match(v) for v in values if v is not None):
        kind = pa.string()
    elif kinds == {int} and all(-(2**63) <= v < 2**63 for v in values if v is not None):
        kind = pa.int64()
    elif kinds == {bool}:
        kind = pa.bool_()
    else:
        return None
    return pa.array(values, kind).take(encoded.indices)


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
