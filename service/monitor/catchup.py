"""Which scheduled windows to check now: every complete window, oldest first, a bounded number per tick.

Everything is cut below the settled watermark (monitor/settled.py): row blocks (drift and performance)
follow each other in commit order (monitor/chain.py) among the settled rows; a time bucket is due once
the settled time has passed its end. For time buckets:
a series is the windows of one (kind, model, version, mode, size); a window is checked when its
deterministic key is in `drift_runs`. The monitor keeps a frontier per series (every window below it is
checked), so a tick reads only the keys from there on. A cold frontier starts at the first window of the
series this store ever checked (older ones predate the monitor and are not back-filled), else at the
first window. `window_backlog=latest` is the opt-in to sampling: the newest `breach_m` unchecked windows
are checked, and the first of them records in its run how many were skipped before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa

from service.db.tables import DriftRun
from service.monitor.chain import Due, chained_blocks
from service.monitor.settled import settled
from service.monitor.windows import (
    Window,
    base_from,
    make_key,
    max_seq,
    time_bucket,
    time_column,
    version_filter,
)

R = DriftRun.__table__  # type: ignore[attr-defined]
_CHUNK = 500  # keys per IN (...) lookup


def checked_keys(conn: sa.Connection, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), _CHUNK):
        stmt = sa.select(R.c.window_key).where(R.c.window_key.in_(keys[i : i + _CHUNK]))
        found.update(conn.execute(stmt).scalars())
    return found


def _first_time(conn: sa.Connection, kind: str, model_name: str, model_version: str) -> datetime | None:
    stmt = (
        sa.select(sa.func.min(time_column(kind)))
        .select_from(base_from(kind))
        .where(version_filter(model_name, model_version))
    )
    value: datetime | None = conn.execute(stmt).scalar_one_or_none()
    return value


def _chunks(lo: int, hi: int, *, down: bool = False) -> list[range]:
    """[lo, hi] in ranges of _CHUNK, ascending (or from the top down)."""
    parts = [range(i, min(i + _CHUNK, hi + 1)) for i in range(lo, hi + 1, _CHUNK)]
    return parts[::-1] if down else parts


def due_windows(
    conn: sa.Connection,
    *,
    kind: str,
    model_name: str,
    model_version: str,
    mode: str,
    rows: int,
    seconds: float,
    now: datetime,
    limit: int,
    latest: int | None,
    frontiers: dict[str, int],
) -> Due:
    """The complete windows to check now: the oldest `limit` unchecked ones, or with `latest` = M the
    newest min(M, limit) after the last checked one. Row blocks come resolved to their `seq` range, time
    buckets with the `seq_horizon` visible once their end settled. `now` bounds time buckets too (the
    settled time of the database clock may run ahead of this process's clock)."""
    mark = settled(
        conn, kind=kind, model_name=model_name, model_version=model_version, state=frontiers,
        times=mode != "rows",
    )  # fmt: skip
    if mode == "rows":
        return chained_blocks(
            conn, kind=kind, model_name=model_name, model_version=model_version, rows=rows, limit=limit,
            latest=latest, frontiers=frontiers, upto=mark.seq,
        )  # fmt: skip
    t0 = _first_time(conn, kind, model_name, model_version)
    if t0 is None:
        return Due([], 0)
    first = math.floor(t0.timestamp() / seconds)
    # bucket i is [i*s, (i+1)*s): final once every row stamped before its end is (monitor/settled.py)
    last = math.floor(min(mark.until, now).timestamp() / seconds) - 1
    size = seconds

    def make(i: int) -> Window:
        return time_bucket(kind, model_name, model_version, seconds, i)

    if last < first:
        return Due([], 0)
    series = make_key(kind, model_name, model_version, mode, size)
    lo = frontiers.get(series)
    if lo is None:  # cold: from the first window this store checked, else from the first window
        lo = next(
            (i for part in _chunks(first, last) for i in _present(conn, make, part)),
            first,
        )
    if latest is None:
        unchecked: list[int] = []
        for part in _chunks(lo, last):
            done = set(_present(conn, make, part))
            unchecked += [i for i in part if i not in done]
            if len(unchecked) >= limit:
                break
        picked = unchecked[:limit]
        frontiers[series] = picked[0] if picked else last + 1
        skipped = 0
    else:
        newest_checked = next(
            (max(found) for part in _chunks(lo, last, down=True) if (found := _present(conn, make, part))),
            lo - 1,
        )
        start = max(newest_checked + 1, last - min(latest, limit) + 1)
        picked = list(range(start, last + 1))
        frontiers[series] = start
        skipped = start - (newest_checked + 1)
    due = [make(i) for i in picked]
    if due and skipped:
        due[0] = replace(due[0], skipped=skipped)
    if due:  # every row of these buckets is visible now: rows given an old time later are left out
        horizon = max_seq(conn, kind, model_name, model_version)
        due = [replace(w, seq_horizon=horizon) for w in due]
    backlog = last - picked[-1] if picked else 0
    return Due(due, backlog)


def _present(conn: sa.Connection, make: Callable[[int], Window], part: range) -> list[int]:
    """The indices in `part` whose window has a run."""
    keys = {make(i).key: i for i in part}
    return sorted(keys[k] for k in checked_keys(conn, list(keys)))
