"""Export a model's logged predictions (and their labels) to one Parquet file, streamed in chunks.

One pass over the database in (created_at, id) order, each chunk one short read (`export_reads`); memory
holds one chunk. Feature values are JSON in the log, so their Arrow types are inferred per chunk
(`arrow_types`): while a chunk fits the file's schema it is appended; when one widens it (a feature first
seen, an integer column that meets a fraction, labels after a run of unlabeled rows) the file so far is
closed as a segment and a new one starts with the wider schema. At the end the segments are copied, row
group by row group, into the final schema (one segment, the common case, is just renamed). Everything is
written to a hidden temporary file next to the target and renamed over it only when complete: a failed
export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from service.db.tables import Feedback, Prediction, ReferenceProfileRow
from service.lifecycle.arrow_types import Inferrer, conform, infer, infer_probabilities, widen_schema
from service.lifecycle.export_reads import keyset_chunks, source, where

P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]
CHUNK_ROWS = 20_000
TIMESTAMP = pa.timestamp("us", tz="UTC")
HEAD = ("prediction_id", "created_at", "model_name", "model_version", "endpoint", "latency_ms")
TAIL = ("output", "probabilities", "label", "label_received_at")
RESERVED = frozenset(HEAD + TAIL)
FEATURE_PREFIX = "feature."  # only for a feature named like one of the columns above


class ExportError(ValueError):
    """The export cannot run as asked (unknown model, empty range, unwritable path)."""


@dataclass(frozen=True)
class ExportRequest:
    model_name: str
    since: datetime | None = None  # inclusive, on created_at
    until: datetime | None = None  # exclusive
    labeled_only: bool = False


@dataclass
class ExportResult:
    path: Path
    rows: int = 0
    segments: int = 0
    columns: list[str] = field(default_factory=list)


def check_request(conn: sa.Connection, request: ExportRequest) -> None:
    """Raise `ExportError` for a request that cannot mean anything."""
    if request.since is not None and request.until is not None and request.since >= request.until:
        raise ExportError(
            f"--since ({request.since.isoformat()}) must be before --until ({request.until.isoformat()})"
        )
    exists = conn.execute(sa.select(P.c.id).where(P.c.model_name == request.model_name).limit(1)).first()
    if exists is None:
        known = conn.execute(sa.select(ReferenceProfileRow.model_name).distinct()).scalars().all()  # type: ignore[call-overload]
        hint = f" (models with a reference: {', '.join(sorted(known))})" if known else ""
        raise ExportError(f"unknown model {request.model_name!r}: it has no logged predictions{hint}")


def count_rows(conn: sa.Connection, request: ExportRequest) -> int:
    return int(
        conn.execute(where(sa.select(sa.func.count()).select_from(source(request)), request)).scalar_one()
    )


def _parse(texts: Sequence[str | None]) -> list[Any]:
    """Many JSON documents in one orjson call."""
    return orjson.loads("[" + ",".join(t if t is not None else "null" for t in texts) + "]")  # type: ignore[no-any-return]


def _parse_features(values: Sequence[Any]) -> list[Any]:
    """Feature objects: JSON text (a text column) or already decoded (jsonb on PostgreSQL, or a JSON
    column type); a features document is always an object, so a string is always its JSON text."""
    if all(v is None or isinstance(v, str) for v in values):
        return _parse(values)
    return [orjson.loads(v) if isinstance(v, str) else v for v in values]


def feature_column(name: str) -> str:
    return FEATURE_PREFIX + name if name in RESERVED else name


def chunk_table(rows: Sequence[Sequence[Any]]) -> pa.Table:
    """One chunk of selected rows as a table with inferred types."""
    arrays: dict[str, pa.Array] = {
        "prediction_id": pa.array([r[0] for r in rows], pa.string()),
        "created_at": pa.array([r[1] for r in rows], TIMESTAMP),
        "model_name": pa.array([r[2] for r in rows], pa.string()),
        "model_version": pa.array([r[3] for r in rows], pa.string()),
        "endpoint": pa.array([r[4] for r in rows], pa.string()),
        "latency_ms": pa.array([r[5] for r in rows], pa.float64()),
    }
    fields = [pa.field(n, a.type) for n, a in arrays.items()]
    features = [f if isinstance(f, dict) else {} for f in _parse_features([r[6] for r in rows])]
    names = list(dict.fromkeys(k for f in features for k in f))
    typed: list[tuple[str, list[Any], Inferrer]] = [
        (feature_column(n), [f.get(n) for f in features], infer) for n in names
    ]
    typed += [
        ("output", _parse([r[7] for r in rows]), infer),
        ("probabilities", _parse([r[8] for r in rows]), infer_probabilities),
        ("label", _parse([r[9] for r in rows]), infer),
    ]
    for name, values, inferrer in typed:
        fld, array = inferrer(name, values)
        fields.append(fld)
        arrays[name] = array
    fields.append(pa.field("label_received_at", TIMESTAMP))
    arrays["label_received_at"] = pa.array([r[10] for r in rows], TIMESTAMP)
    return pa.Table.from_arrays([arrays[f.name] for f in fields], schema=pa.schema(fields))


def column_order(names: list[str]) -> list[str]:
    """Head columns, then the features in first-seen order, then output, probabilities and the label."""
    middle = [n for n in names if n not in RESERVED]
    return [n for n in HEAD if n in names] + middle + [n for n in TAIL if n in names]


def empty_schema() -> pa.Schema:
    head = [pa.field(n, TIMESTAMP if n == "created_at" else pa.string()) for n in HEAD if n != "latency_ms"]
    return pa.schema([*head, pa.field("latency_ms", pa.float64()), pa.field("output", pa.null()),
                      pa.field("probabilities", pa.null()), pa.field("label", pa.null()),
                      pa.field("label_received_at", TIMESTAMP)])  # fmt: skip


def temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")


def claim_temp(target: Path) -> Path:
    """Create the first temporary file next to `target`, or raise `ExportError` naming why it cannot be."""
    if target.is_dir():
        raise ExportError(
            f"{target} is a directory; give a file name such as {target / 'predictions.parquet'}"
        )
    if not target.parent.is_dir():
        raise ExportError(f"folder {target.parent} does not exist")
    tmp = temp_path(target)
    try:
        tmp.open("xb").close()
    except OSError as exc:
        raise ExportError(f"cannot write to {target.parent}: {exc.strerror or exc}") from exc
    if target.exists() and not os.access(target, os.W_OK):
        tmp.unlink()
        raise ExportError(f"cannot replace {target}: not writable")
    return tmp


def file_metadata(request: ExportRequest) -> dict[bytes, bytes]:
    query = {
        "model_name": request.model_name,
        "since": request.since.isoformat() if request.since else None,
        "until": request.until.isoformat() if request.until else None,
        "labeled_only": request.labeled_only,
        "exported_at": datetime.now(UTC).isoformat(),
    }
    return {b"driftloop.export": orjson.dumps(query)}


def export_parquet(
    engine: sa.Engine,
    request: ExportRequest,
    target: Path,
    *,
    chunk_rows: int = CHUNK_ROWS,
    on_rows: Callable[[int], None] | None = None,
    check: bool = True,
) -> ExportResult:
    """Write the rows `request` selects to `target` (replaced only when the export is complete).
    `check=False`: the caller knows the request is valid (the scheduled export's days)."""
    if check:
        with engine.connect() as conn:
            check_request(conn, request)
    first = claim_temp(target)
    segments: list[Path] = [first]
    meta = file_metadata(request)
    result = ExportResult(target)
    schema: pa.Schema | None = None
    writer: pq.ParquetWriter | None = None
    try:
        for rows in keyset_chunks(engine, request, chunk_rows):
            table = chunk_table(rows)
            wider = widen_schema(schema, table.schema, column_order)
            if writer is None or not wider.equals(schema, check_metadata=True):
                if writer is not None:
                    writer.close()
                    segments.append(temp_path(target))
                schema = wider
                writer = pq.ParquetWriter(segments[-1], schema.with_metadata(meta), compression="zstd")
            writer.write_table(conform(table, schema))
            result.rows += len(rows)
            if on_rows is not None:
                on_rows(len(rows))
        if writer is None:
            schema = empty_schema()
            pq.ParquetWriter(first, schema.with_metadata(meta)).close()
        else:
            writer.close()
            writer = None
        assert schema is not None
        result.segments = len(segments)
        if len(segments) > 1:
            merged = temp_path(target)
            _merge(segments, merged, schema.with_metadata(meta))
            segments.append(merged)
        os.replace(segments[-1], target)
        segments.pop()
        result.columns = schema.names
        return result
    finally:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        for path in segments:
            path.unlink(missing_ok=True)


def _merge(segments: list[Path], out: Path, schema: pa.Schema) -> None:
    """Copy every segment into `schema`, one row group at a time (bounded memory)."""
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for path in segments:
            source = pq.ParquetFile(path)
            for i in range(source.num_row_groups):
                writer.write_table(conform(source.read_row_group(i), schema))
