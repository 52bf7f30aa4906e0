"""The export's reads: a model's rows in (created_at, id) order, in chunks that are each one short read.

A chunk is the next `chunk_rows` rows of one version after the last row read (a keyset on
`ix_predictions_model_time`), in its own connection: no transaction or snapshot is held across an export,
however long it runs (a held snapshot keeps vacuum from a big log and delays a partition drop). Versions
whose times do not overlap in the range (the usual case: one champion after another) are read one after
the other; overlapping ones (a shadow or canary) are merged by (created_at, id).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from service.db.streaming import dbapi_chunks
from service.db.tables import Feedback, Prediction
from service.lifecycle.log_scan import log_versions

if TYPE_CHECKING:
    from service.lifecycle.export import ExportRequest

P = Prediction.__table__  # type: ignore[attr-defined]
F = Feedback.__table__  # type: ignore[attr-defined]


def where(stmt: sa.Select[Any], request: ExportRequest) -> sa.Select[Any]:
    stmt = stmt.where(P.c.model_name == request.model_name)
    if request.since is not None:
        stmt = stmt.where(P.c.created_at >= request.since)
    if request.until is not None:
        stmt = stmt.where(P.c.created_at < request.until)
    return stmt


def source(request: ExportRequest) -> sa.FromClause:
    on = F.c.prediction_id == P.c.id
    joined: sa.FromClause = P.join(F, on) if request.labeled_only else P.outerjoin(F, on)
    return joined


def select_rows(request: ExportRequest) -> sa.Select[Any]:
    """Row i: 0 id, 1 created_at, 2 model_name, 3 model_version, 4 endpoint, 5 latency_ms, 6 features,
    7 output, 8 probabilities, 9 label, 10 label received_at."""
    columns = (P.c.id, P.c.created_at, P.c.model_name, P.c.model_version, P.c.endpoint, P.c.latency_ms)
    tail = (P.c.features, P.c.output, P.c.probabilities, F.c.label, F.c.received_at)
    stmt = sa.select(*columns, *tail).select_from(source(request))
    return where(stmt, request).order_by(P.c.created_at, P.c.id)


def _edge(conn: sa.Connection, request: ExportRequest, version: str, last: bool) -> datetime | None:
    order = P.c.created_at.desc() if last else P.c.created_at
    stmt = where(sa.select(P.c.created_at), request).where(P.c.model_version == version)
    value: datetime | None = conn.execute(stmt.order_by(order).limit(1)).scalar_one_or_none()
    return value


def version_spans(conn: sa.Connection, request: ExportRequest) -> list[tuple[str, datetime, datetime]]:
    """(version, first, last prediction time) of each version with rows in the range, by first time."""
    spans = []
    for _, version in log_versions(conn, [request.model_name]):
        first = _edge(conn, request, version, last=False)
        last = _edge(conn, request, version, last=True)
        if first is not None and last is not None:
            spans.append((version, first, last))
    return sorted(spans, key=lambda s: s[1])


def version_chunks(
    engine: sa.Engine, request: ExportRequest, version: str, chunk_rows: int
) -> Iterator[list[Any]]:
    after: tuple[datetime, str] | None = None
    while True:
        stmt = select_rows(request).where(P.c.model_version == version)
        if after is not None:
            stmt = stmt.where(
                P.c.created_at >= after[0],
                sa.or_(P.c.created_at > after[0], sa.and_(P.c.created_at == after[0], P.c.id > after[1])),
            )
        with engine.connect() as conn:
            result = conn.execute(stmt.limit(chunk_rows))
            if conn.dialect.name == "postgresql":
                # psycopg already returns aware datetimes: plain DBAPI tuples skip SQLAlchemy's per-row work
                rows = [r for chunk in dbapi_chunks(result, chunk_rows) for r in chunk]
            else:
                rows = [tuple(r) for r in result]
            result.close()
        if rows:
            yield rows
            after = (rows[-1][1], rows[-1][0])
        if len(rows) < chunk_rows:
            return


def _rows(chunks: Iterator[list[Any]]) -> Iterator[Any]:
    for chunk in chunks:
        yield from chunk


def keyset_chunks(engine: sa.Engine, request: ExportRequest, chunk_rows: int) -> Iterator[Sequence[Any]]:
    """The rows `request` selects, in (created_at, id) order, in chunks of at most `chunk_rows`."""
    with engine.connect() as conn:
        spans = version_spans(conn, request)
    if all(b[1] > a[2] for a, b in pairwise(spans)):
        for version, _, _ in spans:
            yield from version_chunks(engine, request, version, chunk_rows)
        return
    streams = [
        (row for chunk in version_chunks(engine, request, v, chunk_rows) for row in chunk)
        for v, _, _ in spans
    ]
    chunk: list[Any] = []
    for row in heapq.merge(*streams, key=lambda r: (r[1], r[0])):
        chunk.append(row)
        if len(chunk) == chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
