"""Reading a large result in chunks of plain DBAPI tuples (the window reader and the export share it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa


def dbapi_chunks(result: sa.CursorResult[Any], chunk_rows: int) -> Iterator[list[Any]]:
    """Chunks of at most `chunk_rows` raw tuples, skipping SQLAlchemy's per-row work. A buffered
    server-side cursor may hold a row it fetched ahead: `fetchone` takes it through the public API
    before the raw reads. The caller closes `result`."""
    first = result.fetchone()
    if first is None:
        return
    chunk: list[Any] = [tuple(first)]
    while True:
        more = result.cursor.fetchmany(chunk_rows - len(chunk))
        chunk.extend(more)
        if len(chunk) >= chunk_rows or not more:
            if chunk:
                yield chunk
            if not more:
                return
            chunk = []
