"""Row blocks as a chain over the commit sequence: block k+1 is the N rows after block k's last `seq`.

Drift blocks chain over the version's predictions (`predictions.seq`), performance blocks over its labeled
predictions in label arrival order (`feedback.seq`). Blocks are cut only among the rows at or below the
settled watermark (monitor/settled.py), which no transaction can still change, so the N rows after a
sequence number are final once N are there. Chaining from the last checked block (its `last_seq` is
stored in its run) rather than counting positions from the version's first row keeps the blocks right when
retention deletes rows of checked windows: the next block starts after the last row checked, whatever was
deleted before it. Without deletions the chain is the positions k*N .. (k+1)*N-1, which is how runs stored
before `seq` existed (no `last_seq`) are continued.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson
import sqlalchemy as sa

from service.db.tables import DriftRun
from service.monitor.windows import (
    Window,
    base_from,
    count_rows,
    edge_seqs,
    row_block,
    seq_column,
    version_filter,
)

R = DriftRun.__table__  # type: ignore[attr-defined]
_CHUNK = 500
_RECENT_RUNS = 50  # where a cold start looks for the newest checked block


@dataclass(frozen=True)
class Due:
    windows: list[Window]  # to check now, oldest first
    backlog: int  # complete windows after these that may still be unchecked (left for later ticks)


def _runs(conn: sa.Connection, keys: dict[str, int]) -> dict[int, dict[str, Any]]:
    """index -> stored `summary.window` of the blocks among `keys` that have a run."""
    stmt = sa.select(R.c.window_key, R.c.summary).where(R.c.window_key.in_(list(keys)))
    return {keys[k]: orjson.loads(s).get("window") or {} for k, s in conn.execute(stmt)}


def _last_seq(conn: sa.Connection, stored: dict[str, Any], block: Window) -> int:
    last = stored.get("last_seq")
    if isinstance(last, int):
        return last
    # a run from before `seq`: its block was positions offset .. offset+limit-1 (nothing was deleted then)
    pos = (block.offset or 0) + (block.limit or 0) - 1
    found = edge_seqs(conn, block.kind, version_filter(block.model_name, block.model_version), [pos])
    return found[0] if found else 0


def _newest_checked(conn: sa.Connection, kind: str, name: str, version: str, rows: int) -> tuple[int, int]:
    """(next block index, last seq of the block before it) from the newest checked block, else (0, 0)."""
    stmt = (
        sa.select(R.c.window_key, R.c.summary)
        .where(R.c.model_name == name, R.c.model_version == version, R.c.kind == kind)
        .where(R.c.trigger == "schedule")
        .order_by(R.c.id.desc())
        .limit(_RECENT_RUNS)
    )
    for key, summary in conn.execute(stmt):
        stored = orjson.loads(summary).get("window") or {}
        index = stored.get("index")
        if stored.get("mode") == "rows" and isinstance(index, int):
            block = row_block(kind, name, version, rows, index)
            if block.key == key:
                return index + 1, _last_seq(conn, stored, block)
    # none recently (another window size was checked since): look for this size's blocks by key
    newest: tuple[int, int] = (0, 0)
    last = count_rows(conn, kind, name, version) // rows - 1
    for start in range(0, last + 1, _CHUNK):
        part = range(start, min(start + _CHUNK, last + 1))
        found = _runs(conn, {row_block(kind, name, version, rows, i).key: i for i in part})
        if found:
            i = max(found)
            newest = (i + 1, _last_seq(conn, found[i], row_block(kind, name, version, rows, i)))
    return newest


def _after(kind: str, name: str, version: str, anchor: int, upto: int) -> sa.ColumnElement[bool]:
    seq = seq_column(kind)
    return sa.and_(version_filter(name, version), seq > anchor, seq <= upto)


def chained_blocks(
    conn: sa.Connection,
    *,
    kind: str,
    model_name: str,
    model_version: str,
    rows: int,
    limit: int,
    latest: int | None,
    frontiers: dict[str, int],
    upto: int,
) -> Due:
    """The next complete blocks after the last checked one (at most `limit`), or with `latest` = M the
    newest min(M, limit) of them, the first recording how many it skipped; resolved to `seq` ranges.
    Only rows with `seq` <= `upto` (the settled watermark) are counted and cut."""
    series = f"chain:{row_block(kind, model_name, model_version, rows, 0).key}"
    if series in frontiers:
        index, anchor = frontiers[series], frontiers[series + ":seq"]
    else:
        index, anchor = _newest_checked(conn, kind, model_name, model_version, rows)
    while True:  # step past blocks checked since (by this monitor, or by another scheduler)
        part = range(index, index + _CHUNK)
        blocks = {row_block(kind, model_name, model_version, rows, i).key: i for i in part}
        found = _runs(conn, blocks)
        while index in found:
            anchor = _last_seq(conn, found[index], row_block(kind, model_name, model_version, rows, index))
            index += 1
        if index < part.stop:
            break
    after = _after(kind, model_name, model_version, anchor, upto)
    count = sa.select(sa.func.count()).select_from(base_from(kind)).where(after)
    complete = int(conn.execute(count).scalar_one()) // rows
    n = min(limit, complete) if latest is None else min(latest, limit, complete)
    start = index if latest is None else index + complete - n
    skip = (start - index) * rows  # only the blocks' edges are read (windows.edge_seqs)
    seqs = edge_seqs(conn, kind, after, [skip + j * rows + e for j in range(n) for e in (0, rows - 1)])
    due = [
        replace(
            row_block(kind, model_name, model_version, rows, start + j),
            first_seq=seqs[2 * j],
            last_seq=seqs[2 * j + 1],
        )
        for j in range(n)
    ]
    if due and start > index:
        due[0] = replace(due[0], skipped=start - index)
        index, anchor = start, seqs[0] - 1  # the skipped blocks are given up, not checked later
    frontiers[series], frontiers[series + ":seq"] = index, anchor
    return Due(due, complete - n if latest is None else 0)
