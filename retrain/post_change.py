"""Training data after a change: rows from the change point on, so the challenger learns only the new concept.

The change point is the start of the episode's first breaching window. The holdout is the most recent part
of the same post-change rows (never rows of the old concept, on which the champion would look good). With
too few post-change rows the split falls back to the recent window and says so, for the job record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from retrain.errors import InvalidSetting
from retrain.evaluate import split_by_time


@dataclass(frozen=True)
class TrainingData:
    """Train and holdout rows and where they came from: ``post_change`` is True when both lie after
    ``change_at``; ``reason`` says in words which rows were used (and why, on a fallback)."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    post_change: bool
    n_post_change: int
    change_at: Any
    reason: str


def post_change_split(
    rows: pd.DataFrame,
    *,
    time_column: str,
    change_at: Any = None,
    holdout_fraction: float = 0.3,
    min_rows: int = 200,
) -> TrainingData:
    """Split ``rows`` into train / holdout using only rows at or after ``change_at`` when there are at
    least ``min_rows`` of them; otherwise (or without a change point) all of ``rows``, the recent window.

    ``change_at`` is compared with ``time_column`` (a timestamp or a sequence number, as that column holds).

    Examples
    --------
    >>> df = pd.DataFrame({"seq": range(10), "y": [0] * 6 + [1] * 4})
    >>> data = post_change_split(df, time_column="seq", change_at=6, holdout_fraction=0.25, min_rows=4)
    >>> data.post_change, list(data.train["seq"]), list(data.holdout["seq"])
    (True, [6, 7, 8], [9])
    >>> post_change_split(df, time_column="seq", change_at=8, min_rows=4).reason
    'only 2 labeled rows since the change at 8 (fewer than 4): fell back to the most recent 10 labeled rows'
    """
    if time_column not in rows.columns:
        raise InvalidSetting(f"time column {time_column!r} not in data columns {list(rows.columns)}")
    if change_at is None:
        train, holdout = split_by_time(rows, time_column=time_column, holdout_fraction=holdout_fraction)
        reason = f"no change point: the most recent {len(rows)} labeled rows"
        return TrainingData(train, holdout, False, 0, None, reason)
    after = rows.loc[rows[time_column] >= _comparable(change_at, rows[time_column])]
    if len(after) >= max(min_rows, 2):
        train, holdout = split_by_time(after, time_column=time_column, holdout_fraction=holdout_fraction)
        reason = (
            f"the {len(after)} labeled rows since the change at {change_at} "
            f"(holdout: the newest {len(holdout)} of them)"
        )
        return TrainingData(train, holdout, True, len(after), change_at, reason)
    train, holdout = split_by_time(rows, time_column=time_column, holdout_fraction=holdout_fraction)
    reason = (
        f"only {len(after)} labeled rows since the change at {change_at} (fewer than {min_rows}): "
        f"fell back to the most recent {len(rows)} labeled rows"
    )
    return TrainingData(train, holdout, False, len(after), change_at, reason)


def _comparable(change_at: Any, column: pd.Series) -> Any:
    """A timestamp in the column's own timezone handling (aware vs naive), else the value as given."""
    if not pd.api.types.is_datetime64_any_dtype(column):
        return change_at
    stamp = pd.Timestamp(change_at)
    aware = getattr(column.dt, "tz", None) is not None
    if aware and stamp.tzinfo is None:
        return stamp.tz_localize("UTC")
    if not aware and stamp.tzinfo is not None:
        return stamp.tz_convert("UTC").tz_localize(None)
    return stamp
