"""Reading a large result in chunks of plain DBAPI tuples (the window reader and the export share it)."""

from __future__ import annotations

import contextlib
import queue
import select
import threading
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


def copy_lines(engine: sa.Engine, stmt: sa.Select[Any], block_bytes: int = 4 << 20) -> Iterator[bytes]:
    """PostgreSQL: `COPY (stmt) TO STDOUT` of a one-column statement, as runs of whole lines of about
    `block_bytes` (each line ends with a newline), still in COPY's text escaping (see `unescape`).

    No Python object per row: libpq's COPY messages are read in a tight loop (psycopg's `Copy` costs
    several microseconds a row), by a thread that reads the next runs while the caller parses this one
    (the server formats rows meanwhile). JIT is off: compiling a scan that streams costs more than it
    saves."""
    import psycopg

    with engine.connect() as conn:
        conn.exec_driver_sql("SET LOCAL jit = off")
        dbapi = conn.connection.driver_connection
        assert isinstance(dbapi, psycopg.Connection)
        compiled = stmt.compile(dialect=engine.dialect)
        sql = psycopg.ClientCursor(dbapi).mogrify(f"COPY ({compiled}) TO STDOUT", compiled.params)
        runs: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=3)
        stop = threading.Event()
        reader = threading.Thread(target=_copy_out, args=(dbapi.pgconn, sql, block_bytes, runs, stop))
        reader.start()
        finished = False
        try:
            while (run := runs.get()) is not None:
                if isinstance(run, BaseException):
                    raise run
                yield run
            finished = True
        finally:
            stop.set()
            while reader.is_alive():  # unblock a full queue
                with contextlib.suppress(queue.Empty):
                    runs.get(timeout=0.05)
            if not finished:
                conn.invalidate()  # a COPY left half read: the connection cannot be reused


def _copy_out(
    pgconn: Any, sql: str, block_bytes: int, runs: queue.Queue[bytes | BaseException | None], stop: Any
) -> None:
    import psycopg
    from psycopg import pq

    def readable() -> None:
        select.select([pgconn.socket], [], [])
        pgconn.consume_input()

    try:
        pgconn.send_query(sql.encode())
        while pgconn.is_busy():
            readable()
        result = pgconn.get_result()
        if result.status != pq.ExecStatus.COPY_OUT:
            raise psycopg.errors.error_from_result(result, encoding="utf-8")
        buffer = bytearray()
        get = pgconn.get_copy_data
        while not stop.is_set():
            nbytes, row = get(1)
            if nbytes > 0:
                buffer += row
                if len(buffer) >= block_bytes:
                    runs.put(bytes(buffer))
                    buffer.clear()
            elif nbytes == 0:
                readable()
            else:
                break
        else:
            return
        while pgconn.is_busy():
            readable()
        result = pgconn.get_result()
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(result, encoding="utf-8")
        while pgconn.get_result() is not None:
            pass
        if buffer:
            runs.put(bytes(buffer))
        runs.put(None)
    except BaseException as exc:  # handed to the reading side, which raises it
        runs.put(exc)


def unescape(run: bytes) -> bytes | None:
    """A run of COPY text-format lines -> the column's text; None when it holds an escape other than a
    doubled backslash (a control character in the text: a JSON text never has one, it escapes them)."""
    if b"\\" not in run:
        return run
    if b"\\" in run.replace(b"\\\\", b""):
        return None
    return run.replace(b"\\\\", b"\\")
